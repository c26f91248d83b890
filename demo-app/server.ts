// `npm start`: the demo app on embedded PGlite (or DATABASE_URL), with the keys and session
// secret generated once and kept under .data/ so restarts and several instances share them.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { eq } from 'drizzle-orm'
import { Keyring } from '../plugin/core/keyring.ts'
import { openDatabase } from './database.ts'
import { demoUsers } from './schema.ts'

const dataDir = resolve(process.env.DEMO_DATA_DIR ?? '.data')
mkdirSync(dataDir, { recursive: true, mode: 0o700 })

/** Reads a value from the environment, else from a file under .data/, else makes and keeps one. */
function persistent (envName: string, file: string, generate: () => string): string {
  const fromEnv = process.env[envName]
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  const path = join(dataDir, file)
  if (existsSync(path)) return readFileSync(path, 'utf8').trim()
  const value = generate()
  writeFileSync(path, value + '\n', { mode: 0o600 })
  console.log(`Generated ${envName} and saved it in ${path} (set ${envName} to use your own).`)
  return value
}

const keys = persistent('TWO_FACTOR_KEYS', 'two-factor-keys', () => Keyring.generateSpec('k1'))
const sessionSecret = persistent('SESSION_SECRET', 'session-secret', () => randomBytes(32).toString('base64url'))
const port = Number(process.env.PORT ?? 3000)
const rateLimitPerMinute = Number(process.env.RATE_LIMIT_PER_MINUTE ?? 60)

// The database opens while the app's modules load: PGlite compiles its WebAssembly off the
// main thread, which the imports (Fastify, the plugin, its templates) would otherwise wait for.
const opening = openDatabase(process.env.DATABASE_URL, join(dataDir, 'pglite'), { emptyCluster: process.env.DEMO_EMPTY_CLUSTER !== 'off' })
const [{ buildDemoApp, createDemoUser }, database] = await Promise.all([import('./app.ts'), opening])
const secureCookies = process.env.NODE_ENV === 'production'
const app = await buildDemoApp({
  database: database.db,
  keys,
  sessionSecret,
  secureCookies,
  rateLimitPerMinute,
  logger: { level: process.env.LOG_LEVEL ?? 'info' }
})
await app.ready()

// First run: seed an admin (2FA required by default) and a normal user.
for (const seed of [
  { username: 'admin', role: 'admin', envName: 'DEMO_ADMIN_PASSWORD' },
  { username: 'alice', role: 'user', envName: 'DEMO_USER_PASSWORD' }
]) {
  const existing = await database.db.select({ id: demoUsers.id }).from(demoUsers).where(eq(demoUsers.username, seed.username)).limit(1)
  if (existing.length > 0) continue
  const given = process.env[seed.envName]
  const password = given !== undefined && given !== '' ? given : randomBytes(9).toString('base64url')
  await createDemoUser(database.db, { username: seed.username, password, role: seed.role })
  await app.twoFactor.onUserCreated(seed.username)
  console.log(given ? `Created user "${seed.username}" with the password from ${seed.envName}.` : `Created user "${seed.username}" with password: ${password}   (shown once; set ${seed.envName} to choose it)`)
}

const close = async () => {
  await app.close()
  await database.close()
  process.exit(0)
}
process.on('SIGINT', close)
process.on('SIGTERM', close)

await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' })
console.log(`Demo app on http://localhost:${port}/login, database: ${database.description}`)
console.log(secureCookies
  ? 'Cookies are Secure (NODE_ENV=production): serve the demo over HTTPS, or sign-in will not stick.'
  : 'Cookies are not Secure (plain HTTP, for local use); NODE_ENV=production makes them Secure with the __Host- prefix.')
