// The database handle the plugin accepts: any drizzle Postgres database (postgres.js or
// node-postgres for a real server, PGlite embedded). Everything the plugin runs goes through
// drizzle's query builder or `sql`, so the same statements run on every driver.
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TwoFactorDatabase = PgDatabase<PgQueryResultHKT, any>

/** The database or a transaction on it: what a store's changes run on. */
export type Executor = TwoFactorDatabase

/** Rows of `db.execute()` differ per driver: postgres.js returns an array, PGlite and pg `{ rows }`. */
export function rowsOf<T> (result: unknown): T[] {
  if (Array.isArray(result)) return result as T[]
  const rows = (result as { rows?: unknown }).rows
  return Array.isArray(rows) ? (rows as T[]) : []
}
