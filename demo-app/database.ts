// Opens the demo's database: a real Postgres through postgres.js when DATABASE_URL is set,
// otherwise embedded PGlite persisted under the data folder.
import { PGlite } from '@electric-sql/pglite'
import { isFresh, pgliteVersion, restoreEmptyCluster, snapshotFile } from './empty-cluster.ts'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import type { TwoFactorDatabase } from '../plugin/index.ts'

export interface OpenDatabase {
  db: TwoFactorDatabase
  description: string
  close (): Promise<void>
}

/** `emptyCluster: false` makes a new PGlite folder with PGlite's own initdb (the benchmark measures both ways). */
export async function openDatabase (databaseUrl: string | undefined, dataDir: string, { emptyCluster = true } = {}): Promise<OpenDatabase> {
  if (databaseUrl !== undefined && databaseUrl !== '') {
    const client = postgres(databaseUrl, { max: 10, onnotice: () => {} })
    return {
      db: drizzlePostgres(client) as unknown as TwoFactorDatabase,
      description: 'Postgres (DATABASE_URL)',
      close: async () => { await client.end({ timeout: 5 }) }
    }
  }
  let made = ''
  if (isFresh(dataDir)) {
    if (!emptyCluster) made = ' (new, made by PGlite\'s initdb: DEMO_EMPTY_CLUSTER=off)'
    else if (restoreEmptyCluster(dataDir)) made = ' (new, from the empty cluster in demo-app/empty-cluster/)'
    else made = ` (new: no empty cluster for PGlite ${pgliteVersion()} at ${snapshotFile()}, so PGlite's initdb made one; \`npm run demo:empty-cluster\` writes it)`
  }
  const client = new PGlite(dataDir)
  await client.waitReady
  return {
    db: drizzlePglite(client) as unknown as TwoFactorDatabase,
    description: `embedded PGlite in ${dataDir}${made}`,
    close: async () => { await client.close() }
  }
}
