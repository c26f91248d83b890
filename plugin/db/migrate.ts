// Applies the committed drizzle-kit migrations in `drizzle/`.
//
// drizzle's own migrator creates its bookkeeping table (and schema) before the first migration
// runs, which collides with our first migration creating the `two_factor` schema, and it takes
// no lock, so two instances starting together could both apply a migration. This runner reads
// the same journal with drizzle's reader, then applies everything in one transaction under an
// advisory lock: instances starting at once wait for each other, and a failure leaves nothing.
import { fileURLToPath } from 'node:url'
import { sql } from 'drizzle-orm'
import { readMigrationFiles } from 'drizzle-orm/migrator'
import { rowsOf, type TwoFactorDatabase } from './database.ts'
import { MIGRATIONS_TABLE, SCHEMA_NAME } from './schema.ts'

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url))

// An arbitrary constant that names "two-factor migrations" among advisory locks.
const MIGRATION_LOCK_KEY = 720_417_331

export async function migrate (db: TwoFactorDatabase): Promise<{ applied: number }> {
  const migrations = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER })
  const table = migrationsTable()

  return await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`)
    const lastApplied = await lastAppliedMillis(tx)

    let applied = 0
    for (const migration of migrations) {
      if (migration.folderMillis <= lastApplied) continue
      for (const statement of migration.sql) {
        if (statement.trim() !== '') await tx.execute(sql.raw(statement))
      }
      // The first migration creates the schema, so the bookkeeping table can only follow it.
      await tx.execute(sql`create table if not exists ${table} (
        id serial primary key, hash text not null, created_at bigint)`)
      await tx.execute(sql`insert into ${table} (hash, created_at)
        values (${migration.hash}, ${migration.folderMillis})`)
      applied++
    }
    return { applied }
  })
}

export interface MigrationStatus {
  /** Migrations this version of the plugin ships. */
  known: number
  /** Of those, applied to the database. */
  applied: number
  /** Applied by a newer version of the plugin than this one (its migrations are not here). */
  newer: boolean
}

/** Which of the shipped migrations the database has, without changing anything. */
export async function migrationStatus (db: TwoFactorDatabase): Promise<MigrationStatus> {
  const migrations = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER })
  const lastApplied = await lastAppliedMillis(db)
  return {
    known: migrations.length,
    applied: migrations.filter((m) => m.folderMillis <= lastApplied).length,
    newer: lastApplied > Math.max(-1, ...migrations.map((m) => m.folderMillis))
  }
}

function migrationsTable () {
  return sql`${sql.identifier(SCHEMA_NAME)}.${sql.identifier(MIGRATIONS_TABLE)}`
}

/** The newest applied migration's folder time, -1 before the first (no bookkeeping table yet). */
async function lastAppliedMillis (db: TwoFactorDatabase): Promise<number> {
  const exists = rowsOf<{ name: string | null }>(await db.execute(
    sql`select to_regclass(${`${SCHEMA_NAME}.${MIGRATIONS_TABLE}`})::text as name`
  ))[0]?.name != null
  if (!exists) return -1
  const last = rowsOf<{ created_at: string | number | null }>(await db.execute(
    sql`select max(created_at) as created_at from ${migrationsTable()}`
  ))[0]?.created_at
  return last == null ? -1 : Number(last)
}
