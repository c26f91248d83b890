// The demo's first start begins from the empty PGlite cluster the repository ships, instead of
// running PGlite's initdb: the snapshot must exist for the PGlite version installed (else the
// demo falls back to initdb, seconds slower), open as a working database, and never replace
// anything already in the data folder.
import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { openDatabase } from '../../demo-app/database.ts'
import { pgliteVersion, restoreEmptyCluster, snapshotFile } from '../../demo-app/empty-cluster.ts'
import { packDirectory, unpackInto } from '../../demo-app/tar.ts'

function scratch (t: { teardown (fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tf-empty-cluster-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function listing (root: string, relative = ''): string[] {
  return readdirSync(join(root, relative), { withFileTypes: true }).flatMap((entry) => {
    const path = relative === '' ? entry.name : `${relative}/${entry.name}`
    return entry.isDirectory() ? [`${path}/`, ...listing(root, path)] : [`${path} ${readFileSync(join(root, path)).toString('base64')}`]
  }).sort()
}

t.test('the tar writer and reader round-trip folders and files of any size', async (t) => {
  const root = scratch(t)
  const source = join(root, 'source')
  mkdirSync(join(source, 'base', '1'), { recursive: true })
  mkdirSync(join(source, 'empty-folder'))
  writeFileSync(join(source, 'PG_VERSION'), '17\n')
  writeFileSync(join(source, 'empty-file'), '')
  writeFileSync(join(source, 'base', '1', 'block'), Buffer.alloc(8192, 7))
  writeFileSync(join(source, 'base', '1', 'odd'), Buffer.alloc(513, 1))
  const archive = packDirectory(source)
  t.equal(archive.length % 512, 0, 'whole blocks')
  t.same(packDirectory(source), archive, 'the same folder makes the same archive')
  unpackInto(archive, join(root, 'copy'))
  t.same(listing(join(root, 'copy')), listing(source))
})

t.test('the reader refuses an entry that points outside its folder', async (t) => {
  const root = scratch(t)
  mkdirSync(join(root, 'source'))
  writeFileSync(join(root, 'source', 'xx'), 'x')
  const archive = packDirectory(join(root, 'source'))
  archive.write('..', 0, 'latin1') // the name field of the first header: `xx` becomes `..`
  t.throws(() => unpackInto(archive, join(root, 'copy')), /outside its folder/)
  t.notOk(existsSync(join(root, 'x')), 'nothing written beside it')
})

t.test(`an empty cluster is shipped for the installed PGlite (${pgliteVersion()}); run npm run demo:empty-cluster after an upgrade`, async (t) => {
  t.ok(existsSync(snapshotFile()), snapshotFile())
})

t.test('a fresh folder starts from it: PGlite opens it as a working database', async (t) => {
  const dir = join(scratch(t), 'pglite')
  t.ok(restoreEmptyCluster(dir), 'restored')
  t.ok(existsSync(join(dir, 'PG_VERSION')))
  t.same(readdirSync(join(dir, '..')), ['pglite'], 'nothing left beside it')
  const client = new PGlite(dir)
  await client.waitReady
  await client.exec('create table kept (n int); insert into kept values (42)')
  await client.close()
  // Opened again, as the demo's next start does: the table is there.
  const again = new PGlite(dir)
  t.same((await again.query<{ n: number }>('select n from kept')).rows, [{ n: 42 }])
  await again.close()
  t.notOk(restoreEmptyCluster(dir), 'a folder holding a cluster is left alone')
})

t.test('a folder with anything in it is never replaced', async (t) => {
  const dir = join(scratch(t), 'pglite')
  mkdirSync(dir)
  writeFileSync(join(dir, 'something'), 'mine')
  t.notOk(restoreEmptyCluster(dir))
  t.same(readdirSync(dir), ['something'])
})

t.test('the demo opens a fresh folder from it and says so', async (t) => {
  const dir = join(scratch(t), 'pglite')
  const database = await openDatabase(undefined, dir)
  t.teardown(() => database.close())
  t.match(database.description, /from the empty cluster/)
  t.ok(existsSync(join(dir, 'PG_VERSION')))
})
