// One database per test file: an in-memory PGlite by default, or a fresh database on the
// real server named by DATABASE_URL (created here, dropped at teardown), reached through
// postgres.js, or through node-postgres with DATABASE_DRIVER=pg.
import { randomBytes } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import pg from 'pg'
import postgres from 'postgres'
import type { Logger } from 'drizzle-orm'
import type { TwoFactorDatabase } from '../../plugin/index.ts'

export interface TestDatabase {
  db: TwoFactorDatabase
  kind: 'pglite' | 'postgres'
  /** The same database through a drizzle that logs every statement (to count them). */
  logged? (logger: Logger): TwoFactorDatabase
  /** Connection string of the per-file database (real server only). */
  url?: string
  close (): Promise<void>
}

interface Teardown { teardown (fn: () => Promise<void> | void): void }

export const usingPostgres = (): boolean => (process.env.DATABASE_URL ?? '') !== ''

export async function createTestDatabase (t: Teardown): Promise<TestDatabase> {
  const database = usingPostgres() ? await createPostgresDatabase() : await createPgliteDatabase()
  t.teardown(() => database.close())
  return database
}

/**
 * A new PGlite spends most of its start (seconds on this machine) creating its cluster; loading
 * an empty cluster made before takes about a second. One is made per PGlite version and kept in
 * the temp folder for every test process (written aside, then renamed: workers may race).
 */
let emptyCluster: Promise<Blob> | undefined
function emptyClusterDump (): Promise<Blob> {
  emptyCluster ??= (async () => {
    const { version } = JSON.parse(await readFile(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8')) as { version: string }
    const file = join(tmpdir(), `fastify-two-factor-pglite-${version}.tar`)
    try {
      return new Blob([await readFile(file)])
    } catch {}
    const fresh = new PGlite()
    await fresh.waitReady
    const dump = await fresh.dumpDataDir('none')
    await fresh.close()
    const aside = `${file}.${process.pid}`
    await writeFile(aside, Buffer.from(await dump.arrayBuffer()))
    await rename(aside, file)
    return dump
  })()
  return emptyCluster
}

async function createPgliteDatabase (): Promise<TestDatabase> {
  const client = new PGlite({ loadDataDir: await emptyClusterDump() })
  await client.waitReady
  return {
    db: drizzlePglite(client) as unknown as TwoFactorDatabase,
    kind: 'pglite',
    logged: (logger) => drizzlePglite({ client, logger }) as unknown as TwoFactorDatabase,
    close: () => client.close()
  }
}

async function createPostgresDatabase (): Promise<TestDatabase> {
  const adminUrl = new URL(process.env.DATABASE_URL!)
  const name = `tf_test_${randomBytes(6).toString('hex')}`
  const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const dropDatabase = async () => {
    await admin.unsafe(`drop database if exists ${name} with (force)`)
    await admin.end({ timeout: 5 })
  }
  if (process.env.DATABASE_DRIVER === 'pg') {
    const pool = new pg.Pool({ connectionString: url.toString(), max: 20 })
    // Dropping the database at teardown ends connections an app still held: not a test failure.
    pool.on('error', () => {})
    return {
      db: drizzleNodePg(pool) as unknown as TwoFactorDatabase,
      kind: 'postgres',
      logged: (logger) => drizzleNodePg({ client: pool, logger }) as unknown as TwoFactorDatabase,
      url: url.toString(),
      close: async () => {
        await pool.end()
        await dropDatabase()
      }
    }
  }
  const client = postgres(url.toString(), { max: 20, onnotice: () => {} })
  return {
    db: drizzlePostgres(client) as unknown as TwoFactorDatabase,
    kind: 'postgres',
    logged: (logger) => drizzlePostgres({ client, logger }) as unknown as TwoFactorDatabase,
    url: url.toString(),
    close: async () => {
      await client.end({ timeout: 5 })
      await dropDatabase()
    }
  }
}
