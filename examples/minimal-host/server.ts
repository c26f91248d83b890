// The smallest real host of fastify-two-factor: its own users table (drizzle on postgres.js),
// a scrypt password check, a login page, sign-out, a page for signed-in users and one
// step-up route. Build with `npx tsc -p .`, run with `node dist/server.js`. The README's
// Quick start is this file, shortened (run.sh checks that every line of it is here).
//
// Environment: DATABASE_URL, TWO_FACTOR_KEYS ("k1:<base64 of 32 random bytes>"), SESSION_SECRET
// (≥ 32 characters), PORT (3000), EXAMPLE_USER / EXAMPLE_PASSWORD (the seeded user),
// INSECURE_COOKIES=1 to send cookies over plain http://localhost (never in production).
import Fastify, { type FastifyRequest } from 'fastify'
import twoFactor from 'fastify-two-factor'
import { drizzle } from 'drizzle-orm/postgres-js'
import { eq, sql } from 'drizzle-orm'
import { pgTable, text } from 'drizzle-orm/pg-core'
import postgres from 'postgres'
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'

function env (name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback
  if (value === undefined || value === '') throw new Error(`set ${name}`)
  return value
}

const client = postgres(env('DATABASE_URL'), { onnotice: () => {} })
const db = drizzle(client)

// ---- the app's own users ---------------------------------------------------------------------

const users = pgTable('example_users', {
  id: text('id').primaryKey(),
  username: text('username').notNull().unique(),
  email: text('email').notNull(),
  passwordHash: text('password_hash').notNull()
})
type User = typeof users.$inferSelect

await db.execute(sql`create table if not exists example_users (
  id text primary key,
  username text not null unique,
  email text not null,
  password_hash text not null
)`)

// Passwords: scrypt with a random salt, stored as "scrypt:<salt>:<key>" (base64).
function derive (password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 64, { N: 16384, r: 8, p: 1 }, (error, key) => error ? reject(error) : resolve(key))
  })
}
async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  return `scrypt:${salt.toString('base64')}:${(await derive(password, salt)).toString('base64')}`
}
async function passwordMatches (password: string, stored: string): Promise<boolean> {
  const [, salt = '', key = ''] = stored.split(':')
  const expected = Buffer.from(key, 'base64')
  const actual = await derive(password, Buffer.from(salt, 'base64'))
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}
// An unknown username is checked against this, so it costs as long as a wrong password.
const standInHash = await hashPassword(randomBytes(16).toString('hex'))

async function findUser (id: string): Promise<User | undefined> {
  return (await db.select().from(users).where(eq(users.id, id)).limit(1))[0]
}
async function checkLogin (username: string, password: string): Promise<User | undefined> {
  const user = (await db.select().from(users).where(eq(users.username, username)).limit(1))[0]
  const right = await passwordMatches(password, user?.passwordHash ?? standInHash)
  return right ? user : undefined
}

// One seeded user (its password follows the environment at each start).
const seedName = env('EXAMPLE_USER', 'alice')
await db.insert(users)
  .values({ id: seedName, username: seedName, email: `${seedName}@example.com`, passwordHash: await hashPassword(env('EXAMPLE_PASSWORD', 'correct horse battery staple, twice')) })
  .onConflictDoUpdate({ target: users.username, set: { passwordHash: sql`excluded.password_hash` } })

// ---- the app ---------------------------------------------------------------------------------

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })

await app.register(twoFactor, {
  database: db,
  keys: env('TWO_FACTOR_KEYS'), // "k1:<base64 of 32 random bytes>"
  // Cookies are `Secure` (and `__Host-`) unless told otherwise: over plain http they never stick.
  session: { secret: env('SESSION_SECRET'), ...(process.env.INSECURE_COOKIES === '1' ? { secure: false } : {}) },
  issuer: 'Minimal Host',
  requireSignIn: true,
  accounts: {
    findUser,
    userId: (user: User) => user.id,
    label: (user: User) => user.email,
    verifyPassword: async (id, password) => {
      const user = await findUser(id)
      return user !== undefined && await passwordMatches(password, user.passwordHash)
    }
  }
})

const wantsJson = (request: FastifyRequest) => (request.headers.accept ?? '').includes('application/json')
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const html = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`

function loginPage (csrfToken: string, returnTo: string, error = ''): string {
  return html('Sign in', `<h1>Sign in</h1>${error === '' ? '' : `<p role="alert">${escapeHtml(error)}</p>`}
    <form method="post" action="/login">
      <input type="hidden" name="_csrf" value="${escapeHtml(csrfToken)}">
      <input type="hidden" name="returnTo" value="${escapeHtml(returnTo)}">
      <label>User name <input name="username" autocomplete="username" required></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <button>Sign in</button>
    </form>`)
}

// Your login form posts the plugin's CSRF token: a hidden `_csrf` field holding reply.generateCsrf().
app.get<{ Querystring: { returnTo?: string } }>('/login', { config: { twoFactor: false } }, async (request, reply) => {
  const csrfToken = reply.generateCsrf()
  if (wantsJson(request)) return { state: request.twoFactor.state, csrfToken }
  return reply.type('text/html').send(loginPage(csrfToken, request.query.returnTo ?? '/'))
})

const loginBody = {
  type: 'object',
  properties: {
    username: { type: 'string', maxLength: 200 },
    password: { type: 'string', maxLength: 1024 },
    returnTo: { type: 'string', maxLength: 2048 },
    _csrf: { type: 'string' }
  }
} as const

app.post<{ Body: { username?: string, password?: string, returnTo?: string } }>('/login', {
  schema: { body: loginBody },
  config: { twoFactor: false },
  preHandler: app.csrfProtection
}, async (request, reply) => {
  const { username = '', password = '', returnTo = '/' } = request.body ?? {}
  const user = await checkLogin(username, password)
  if (user === undefined) {
    const message = 'That user name and password don’t match.'
    const csrfToken = reply.generateCsrf()
    if (wantsJson(request)) return reply.code(401).send({ error: 'invalid_credentials', message, csrfToken })
    return reply.code(401).type('text/html').send(loginPage(csrfToken, returnTo, message))
  }
  // The code prompt, the setup wizard, or returnTo. The session got a new id: the next token is its.
  const next = await request.twoFactor.startLogin(user.id, { returnTo })
  if (wantsJson(request)) return { state: next.state, next: next.next, csrfToken: reply.generateCsrf() }
  return reply.redirect(next.next, 303)
})

// Sign-out must work in every state (at the code prompt, in the forced wizard): not gated.
app.post('/logout', { config: { twoFactor: false }, preHandler: app.csrfProtection }, async (request, reply) => {
  await request.twoFactor.logout()
  if (wantsJson(request)) return { state: 'anonymous', next: '/login', csrfToken: reply.generateCsrf() }
  return reply.redirect('/login', 303)
})

// A half-signed-in session never gets here; with `requireSignIn: true`, nor does an anonymous one.
app.get('/', async (request, reply) => {
  const user = await findUser(request.twoFactor.userId ?? '')
  if (user === undefined) return reply.redirect('/login', 303)
  if (wantsJson(request)) return { user: { id: user.id, username: user.username }, csrfToken: reply.generateCsrf() }
  const csrf = `<input type="hidden" name="_csrf" value="${escapeHtml(reply.generateCsrf())}">`
  return reply.type('text/html').send(html('Home', `<h1>Hello ${escapeHtml(user.username)}</h1>
    <p><a href="/2fa/settings">Two-factor settings</a></p>
    <form method="post" action="/transfer">${csrf}<input name="amount" value="10"> <input name="to" value="bob"> <button>Transfer (asks for a fresh code)</button></form>
    <form method="post" action="/logout">${csrf}<button>Sign out</button></form>`))
})

// Step-up: this route also wants a code entered in this session within the last 5 minutes.
app.post<{ Body: { amount?: string | number, to?: string } }>('/transfer', {
  config: { twoFactor: { freshWithin: '5m' } },
  preHandler: app.csrfProtection
}, async (request, reply) => {
  const amount = Number(request.body?.amount ?? 0)
  const to = String(request.body?.to ?? '')
  if (wantsJson(request)) return { transferred: amount, to, by: request.twoFactor.userId, csrfToken: reply.generateCsrf() }
  return reply.type('text/html').send(html('Transferred', `<p>Sent ${amount} to ${escapeHtml(to)}.</p><p><a href="/">Home</a></p>`))
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(async () => await client.end({ timeout: 5 })).then(() => process.exit(0), () => process.exit(1))
  })
}

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
