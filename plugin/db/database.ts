// The database handle the plugin accepts: a drizzle Postgres database on postgres.js or
// node-postgres for a real server, or PGlite embedded (`driverOf` tells them apart). Everything the plugin runs goes through
// drizzle's query builder or `sql`, so the same statements run on every driver.
import { entityKind, sql } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TwoFactorDatabase = PgDatabase<PgQueryResultHKT, any>

/** The drivers the plugin runs on, by the name drizzle gives each one's session. */
const DRIVERS = { PostgresJsSession: 'postgres.js', NodePgSession: 'node-postgres', PgliteSession: 'PGlite' } as const
export type DriverName = typeof DRIVERS[keyof typeof DRIVERS]

const kindOf = (value: unknown): string | undefined => {
  const kind = (value as { constructor?: Record<symbol, unknown> } | null | undefined)?.constructor?.[entityKind]
  return typeof kind === 'string' ? kind : undefined
}

/**
 * Which driver a drizzle database runs on, or what it is instead (for the error that says so):
 * `{ driver }`, or `{ got }` naming the drizzle database, dialect or value it was given.
 */
export function driverOf (database: unknown): { driver: DriverName } | { got: string } {
  const db = database as { session?: unknown, dialect?: unknown } | null | undefined
  if (db === null || typeof db !== 'object') return { got: db === null ? 'null' : typeof db }
  const session = kindOf(db.session)
  if (session !== undefined && session in DRIVERS && kindOf(db.dialect) === 'PgDialect') return { driver: DRIVERS[session as keyof typeof DRIVERS] }
  return { got: kindOf(db) ?? session ?? kindOf(db.dialect) ?? 'an object that is not a drizzle database' }
}

/** The database or a transaction on it: what a store's changes run on. */
export type Executor = TwoFactorDatabase

/** Rows of `db.execute()` differ per driver: postgres.js returns an array, PGlite and pg `{ rows }`. */
export function rowsOf<T> (result: unknown): T[] {
  if (Array.isArray(result)) return result as T[]
  const rows = (result as { rows?: unknown }).rows
  return Array.isArray(rows) ? (rows as T[]) : []
}

/** The database server's clock (`now()`), to compare with the app's. */
export async function databaseTime (db: TwoFactorDatabase): Promise<Date> {
  const value = rowsOf<{ now: Date | string }>(await db.execute(sql`select now() as now`))[0]?.now
  return value instanceof Date ? value : new Date(String(value))
}
