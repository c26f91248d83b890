// The database handle the plugin accepts: any drizzle Postgres database (postgres.js for a real
// server, PGlite embedded). Everything the plugin runs goes through drizzle's query builder or
// `sql`, so the same statements run on both drivers.
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TwoFactorDatabase = PgDatabase<PgQueryResultHKT, any>

/** Rows of `db.execute()` differ per driver: postgres.js returns an array, PGlite `{ rows }`. */
export function rowsOf<T> (result: unknown): T[] {
  if (Array.isArray(result)) return result as T[]
  const rows = (result as { rows?: unknown }).rows
  return Array.isArray(rows) ? (rows as T[]) : []
}
