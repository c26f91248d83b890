// An app that keeps its sessions somewhere else than the plugin's Postgres table (Redis, say)
// names its store in two-factor.config: the CLI's reset, lifted requirement and the like then
// end the user's sessions there. A store without the per-account index is refused, by name.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { PGlite } from '@electric-sql/pglite'
import { drizzle } from 'drizzle-orm/pglite'
import { Keyring, type TwoFactorDatabase } from '../../plugin/index.ts'
import { migrate } from '../../plugin/db/migrate.ts'
import { accounts } from '../../plugin/db/schema.ts'
import { main } from '../../plugin/cli/main.ts'
import { createTestDatabase, usingPostgres } from '../helpers/db.ts'

const KEYS = Keyring.generateSpec('k1')
const ended: string[] = []
;(globalThis as { endedByTestStore?: string[] }).endedByTestStore = ended

async function folder (t: Test, store: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'two-factor-cli-store-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let db: TwoFactorDatabase
  let done = async (): Promise<void> => {}
  let database: string
  if (usingPostgres()) {
    const test = await createTestDatabase(t)
    db = test.db
    database = `databaseUrl: ${JSON.stringify(test.url)}`
  } else {
    const client = new PGlite(join(dir, 'pglite'))
    await client.waitReady
    db = drizzle(client) as unknown as TwoFactorDatabase
    done = async () => { await client.close() }
    database = "dataDir: './pglite'"
  }
  await migrate(db)
  await db.insert(accounts).values({ userId: 'u-1', secret: Keyring.fromEnv(KEYS).seal(Buffer.from('12345678901234567890'), 'u-1'), enabledAt: new Date() })
  await done()
  writeFileSync(join(dir, 'two-factor.config.mjs'), `export default {
  ${database},
  keys: ${JSON.stringify(KEYS)},
  sessionStore: ${store}
}
`)
  return dir
}

async function cli (cwd: string, args: string[]) {
  let stdout = ''
  let stderr = ''
  const code = await main(args, { env: {}, cwd, stdout: (text) => { stdout += text }, stderr: (text) => { stderr += text } })
  return { code, stdout, stderr }
}

t.test('a reset from the CLI ends the sessions in the store the config names', async (t) => {
  const dir = await folder(t, `{
    get (id, cb) { cb(null, null) }, set (id, s, cb) { cb() }, destroy (id, cb) { cb() },
    async endAccountSessions (userId) { globalThis.endedByTestStore.push(userId); return 2 },
    async listAccountSessions () { return [] },
    async endAccountSession () { return false }
  }`)
  const reset = await cli(dir, ['reset', 'u-1', '--reason', 'lost phone'])
  t.equal(reset.code, 0, reset.stderr)
  t.same(ended, ['u-1'], 'the named store was asked to end u-1\'s sessions')
})

t.test('a store without the per-account index is refused, naming what it lacks', async (t) => {
  const dir = await folder(t, `{ get (id, cb) { cb(null, null) }, set (id, s, cb) { cb() }, destroy (id, cb) { cb() } }`)
  const reset = await cli(dir, ['reset', 'u-1', '--reason', 'lost phone'])
  t.equal(reset.code, 1)
  t.match(reset.stderr, /"sessionStore" lacks endAccountSessions, listAccountSessions, endAccountSession/)
})
