// The benchmark's own database on the machine's real Postgres: created fresh for each run and
// dropped at the end, so numbers never depend on what an earlier run left behind.
import { drizzle } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import type { TwoFactorDatabase } from '../../plugin/index.ts'

export const DEFAULT_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres'
/** BENCH_DATABASE names another, so two runs on one server don't drop each other's. */
export const BENCH_DATABASE = process.env.BENCH_DATABASE ?? 'tf_bench'
/** A second, small database: the recovery-code checks compare 1 000 users with 100 000. */
export const SMALL_BENCH_DATABASE = `${BENCH_DATABASE}_small`

export interface BenchDatabase {
  url: string
  db: TwoFactorDatabase
  sql: postgres.Sql
  drop (): Promise<void>
}

/** The server to use: DATABASE_URL (any database on it), else the local default. */
export function serverUrl (): string {
  const fromEnv = process.env.DATABASE_URL
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_SERVER_URL
}

export async function createBenchDatabase (name = BENCH_DATABASE): Promise<BenchDatabase> {
  const adminUrl = serverUrl()
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 })
  try {
    await admin`select 1`
  } catch (error) {
    await admin.end({ timeout: 1 }).catch(() => {})
    const where = new URL(adminUrl)
    throw new Error(`The benchmarks need a running Postgres at ${where.host} (set DATABASE_URL to use another): ${(error as Error).message}`)
  }
  await admin.unsafe(`drop database if exists ${name} with (force)`)
  await admin.unsafe(`create database ${name}`)

  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const sql = postgres(url.toString(), { max: 10, onnotice: () => {} })
  return {
    url: url.toString(),
    db: drizzle(sql) as unknown as TwoFactorDatabase,
    sql,
    drop: async () => {
      await sql.end({ timeout: 5 })
      await admin.unsafe(`drop database if exists ${name} with (force)`)
      await admin.end({ timeout: 5 })
    }
  }
}
