// Opens the demo's database: a real Postgres through postgres.js when DATABASE_URL is set,
// otherwise embedded PGlite persisted under the data folder.
import { PGlite } from '@electric-sql/pglite'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import type { TwoFactorDatabase } from '../plugin/index.ts'

export interface OpenDatabase {
  db: TwoFactorDatabase
  description: string
  close (): Promise<void>
}

export async function openDatabase (databaseUrl: string | undefined, dataDir: string): Promise<OpenDatabase> {
  if (databaseUrl !== undefined && databaseUrl !== '') {
    const client = postgres(databaseUrl, { max: 10, onnotice: () => {} })
    return {
      db: drizzlePostgres(client) as unknown as TwoFactorDatabase,
      description: 'Postgres (DATABASE_URL)',
      close: async () => { await client.end({ timeout: 5 }) }
    }
  }
  const client = new PGlite(dataDir)
  await client.waitReady
  return {
    db: drizzlePglite(client) as unknown as TwoFactorDatabase,
    description: `embedded PGlite in ${dataDir}`,
    close: async () => { await client.close() }
  }
}
