// One app instance for the multi-instance test: the demo app on a real Postgres, with the
// plugin's Postgres session store and @fastify/rate-limit counting in Redis, on its own port.
// Several of these, given the same database, keys, session secret and Redis, are the
// deployment of. It prints one line, `listening <port>`, once it serves.
import { Redis } from 'ioredis'
import { buildDemoApp } from '../../demo-app/app.ts'
import { openDatabase } from '../../demo-app/database.ts'

function required (name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') throw new Error(`${name} must be set`)
  return value
}

const database = await openDatabase(required('DATABASE_URL'), '')
// A prefix per test run keeps its counters apart from any earlier run's within the window.
const redis = new Redis(required('REDIS_URL'), { keyPrefix: process.env.REDIS_PREFIX ?? '', maxRetriesPerRequest: 1 })
const app = await buildDemoApp({
  database: database.db,
  keys: required('TWO_FACTOR_KEYS'),
  sessionSecret: required('SESSION_SECRET'),
  rateLimitPerMinute: Number(process.env.RATE_LIMIT_PER_MINUTE ?? 60),
  rateLimitRedis: redis,
  logger: { level: process.env.LOG_LEVEL ?? 'warn' }
})
const address = await app.listen({ port: Number(required('PORT')), host: '127.0.0.1' })

async function close (): Promise<void> {
  await app.close()
  await database.close()
  redis.disconnect()
  process.exit(0)
}
process.on('SIGTERM', () => { void close() })
process.on('SIGINT', () => { void close() })
console.log(`listening ${new URL(address).port}`)
