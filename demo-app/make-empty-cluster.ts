// `npm run demo:empty-cluster`: makes the empty cluster the demo's first start begins from
// (see empty-cluster.ts), for the PGlite version installed, and removes those of other
// versions. Run it after upgrading PGlite and commit the file; without one for the installed
// version the demo still starts, running PGlite's initdb itself.
import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { brotliCompressSync, constants } from 'node:zlib'
import { PGlite } from '@electric-sql/pglite'
import { pgliteVersion, snapshotFile } from './empty-cluster.ts'
import { packDirectory } from './tar.ts'

const work = mkdtempSync(join(tmpdir(), 'tf-empty-cluster-'))
try {
  const dir = join(work, 'pglite')
  // Created and closed, so the copy is of a cluster shut down cleanly: opening it needs no recovery.
  const client = new PGlite(dir)
  await client.waitReady
  await client.close()
  const archive = packDirectory(dir)
  // Quality 9 with the largest window: within a few per cent of quality 11, at a tenth of its time.
  const compressed = brotliCompressSync(archive, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 9, [constants.BROTLI_PARAM_LGWIN]: 24, [constants.BROTLI_PARAM_SIZE_HINT]: archive.length }
  })
  const file = snapshotFile()
  mkdirSync(dirname(file), { recursive: true })
  for (const old of readdirSync(dirname(file))) if (old !== basename(file)) rmSync(join(dirname(file), old))
  writeFileSync(file, compressed)
  console.log(`Wrote ${file}: PGlite ${pgliteVersion()}'s empty cluster, ${(archive.length / 1e6).toFixed(1)} MB as ${(compressed.length / 1e6).toFixed(2)} MB.`)
} finally {
  rmSync(work, { recursive: true, force: true })
}
