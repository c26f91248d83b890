// The demo's first start on a fresh data folder. PGlite creates a new cluster with its own
// initdb in WebAssembly: about 3 s of CPU here, most of the demo's cold start. Every new
// cluster of one PGlite version is the same, so the repository ships one, made once by
// `npm run demo:empty-cluster` and kept under demo-app/empty-cluster/ (brotli-compressed: the
// three databases of a cluster are near copies, which its 16 MB window finds; about 1.4 MB).
// Writing it out and opening it costs a fifth of initdb. It is used only when it was made by
// the PGlite version installed; otherwise the demo runs initdb as before and says so.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliDecompressSync } from 'node:zlib'
import { unpackInto } from './tar.ts'

const SNAPSHOTS = fileURLToPath(new URL('./empty-cluster/', import.meta.url))

/** The installed PGlite's version: a cluster is only known to open with the version that made it. */
export function pgliteVersion (): string {
  const file = new URL('../node_modules/@electric-sql/pglite/package.json', import.meta.url)
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
}

export function snapshotFile (version = pgliteVersion()): string {
  return join(SNAPSHOTS, `pglite-${version}.tar.br`)
}

/** True when `dir` holds no cluster yet (PGlite would run initdb there). */
export function isFresh (dir: string): boolean {
  return !existsSync(join(dir, 'PG_VERSION'))
}

/**
 * Puts the shipped empty cluster in `dir` when `dir` is missing or empty and a snapshot of
 * this PGlite version exists; returns whether `dir` now holds it. Written beside `dir` and
 * renamed into place, so a start that dies halfway leaves no half cluster that PGlite would
 * take for a database.
 */
export function restoreEmptyCluster (dir: string): boolean {
  // Anything already there is PGlite's to open (or to refuse): never overwritten.
  if (existsSync(dir) && readdirSync(dir).length > 0) return false
  const file = snapshotFile()
  if (!existsSync(file)) return false
  const partial = `${dir}.partial-${process.pid}`
  rmSync(partial, { recursive: true, force: true })
  mkdirSync(dirname(dir), { recursive: true })
  try {
    unpackInto(brotliDecompressSync(readFileSync(file)), partial)
    if (existsSync(dir)) rmdirSync(dir) // empty (checked above); fails if another start filled it since
    renameSync(partial, dir)
  } catch (error) {
    rmSync(partial, { recursive: true, force: true })
    // Another instance started on the same fresh folder may have put its copy there first.
    if (!isFresh(dir)) return true
    throw error
  }
  return true
}
