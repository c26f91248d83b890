// A benchmarked app in its own process, so the load generator and the app under test don't
// share one event loop. The parent (bench/run.ts) forks this file, reads the port from the
// first IPC message, and may ask for the process's memory. The drizzle database runs on
// postgres.js, or on node-postgres with BENCH_DRIVER=pg, with the same pool size.
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js'
import pg from 'pg'
import postgres from 'postgres'
import type { TwoFactorDatabase } from '../plugin/index.ts'
import { buildBaselineApp, buildPluginApp } from './apps.ts'
import { POOL_SIZE, type Driver } from './lib/server-process.ts'

export type AppVariant = 'plugin' | 'plugin-headers' | 'baseline' | 'baseline-headers'

export type ServerMessage =
  | { type: 'listening', port: number }
  | { type: 'memory', rss: number, heapUsed: number }
  | { type: 'cpu', micros: number }

const variant = process.env.BENCH_VARIANT as AppVariant
const driver = (process.env.BENCH_DRIVER ?? 'postgres-js') as Driver
// Idle connections close after 2 s: the gate benchmark keeps a dozen apps up, one busy at a time,
// and ten open connections each would exceed the server's max_connections (100 by default).
function connect (): { db: TwoFactorDatabase, end: () => Promise<void> } {
  const url = process.env.BENCH_DATABASE_URL!
  if (driver === 'pg') {
    const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, idleTimeoutMillis: 2000 })
    // The bench drops its database at the end, which ends connections a pool may still hold.
    pool.on('error', () => {})
    return { db: drizzleNodePg(pool) as unknown as TwoFactorDatabase, end: async () => await pool.end() }
  }
  const sql = postgres(url, { max: POOL_SIZE, idle_timeout: 2, onnotice: () => {} })
  return { db: drizzlePostgresJs(sql) as unknown as TwoFactorDatabase, end: async () => await sql.end({ timeout: 2 }) }
}
const database = connect()
const config = {
  db: database.db,
  keys: process.env.BENCH_KEYS!,
  sessionSecret: process.env.BENCH_SESSION_SECRET!,
  twoFactor: process.env.BENCH_PLUGIN_OPTIONS === undefined ? undefined : JSON.parse(process.env.BENCH_PLUGIN_OPTIONS) as Record<string, unknown>
}
const securityHeaders = variant.endsWith('-headers')
const app = variant.startsWith('plugin') ? await buildPluginApp(config, { securityHeaders }) : await buildBaselineApp(config, { securityHeaders })
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
const send = (message: ServerMessage) => process.send!(message)
send({ type: 'listening', port: typeof address === 'object' && address !== null ? address.port : 0 })

process.on('message', (message: { type: string }) => {
  if (message.type === 'memory') {
    // Collect first, so the figure is what the process keeps, not garbage not yet collected.
    (globalThis as { gc?: () => void }).gc?.()
    const usage = process.memoryUsage()
    send({ type: 'memory', rss: usage.rss, heapUsed: usage.heapUsed })
  } else if (message.type === 'cpu') {
    const usage = process.cpuUsage()
    send({ type: 'cpu', micros: usage.user + usage.system })
  } else if (message.type === 'stop') {
    void app.close().then(async () => await database.end()).then(() => process.exit(0))
  }
})
process.on('disconnect', () => process.exit(0))
