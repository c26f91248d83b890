// The demo host app: its own users table with scrypt passwords and its own
// password-lockout counter, a login page, a dashboard and an admin page, using the plugin the
// way an app owner would.
import Fastify, { type FastifyInstance, type FastifyServerOptions, type RouteOptions } from 'fastify'
import { and, eq, sql } from 'drizzle-orm'
import twoFactor, { type TwoFactorDatabase, type TwoFactorOptions } from '../plugin/index.ts'
import { randomBytes } from 'node:crypto'
import { DEFAULT_COST, hashPassword, verifyPassword } from './passwords.ts'
import { CREATE_DEMO_USERS, CREATE_DEMO_USERS_SEARCH, demoUsers, type DemoUser } from './schema.ts'
import { demoAccounts } from './accounts.ts'
import { demoAdminRoutes } from './admin.ts'
import { answerDemoError, refuseCrossSiteWrites } from './errors.ts'
import { escapeHtml, loginForm, page } from './views.ts'

export interface DemoAppOptions {
  database: TwoFactorDatabase
  keys: string
  sessionSecret: string
  /** Send cookies only over HTTPS (`__Host-` prefix). @default false for the local demo */
  secureCookies?: boolean
  rateLimitPerMinute?: number
  rateLimitRedis?: unknown
  clock?: () => number
  logger?: FastifyServerOptions['logger']
  /** Extra plugin options (tests use them for hooks). */
  twoFactor?: Partial<TwoFactorOptions>
  /** Sees every route as it is registered, the plugin's included (the gate-bypass test lists them). */
  onRoute?: (route: RouteOptions) => void
  /** scrypt cost of new password hashes, and of the stand-in hash an unknown username is checked against. @default 16384 */
  passwordCost?: number
}

/** The host's own password lockout: 10 wrong passwords lock the password for 15 minutes. */
const PASSWORD_LOCKOUT = { threshold: 10, minutes: 15 }

export async function ensureDemoSchema (db: TwoFactorDatabase): Promise<void> {
  await db.execute(sql.raw(CREATE_DEMO_USERS))
  try {
    for (const statement of CREATE_DEMO_USERS_SEARCH) await db.execute(sql.raw(statement))
  } catch {
    // Only a speed-up: without pg_trgm (PGlite here, or a server without the contrib modules) the search reads the table.
  }
}

/** `createdAt`: the app's clock (the database's own `now()` otherwise), which starts a new user's grace period. */
export async function createDemoUser (db: TwoFactorDatabase, input: { id?: string, username: string, password: string, role?: string, passwordCost?: number, createdAt?: Date }): Promise<DemoUser> {
  const rows = await db.insert(demoUsers).values({
    id: input.id ?? input.username,
    username: input.username,
    passwordHash: await hashPassword(input.password, input.passwordCost),
    role: input.role ?? 'user',
    ...(input.createdAt !== undefined ? { createdAt: input.createdAt } : {})
  }).returning()
  return rows[0]!
}

export async function buildDemoApp (options: DemoAppOptions): Promise<FastifyInstance> {
  const db = options.database
  const clock = options.clock ?? Date.now
  const app = Fastify({ logger: options.logger ?? false, trustProxy: false })
  if (options.onRoute !== undefined) app.addHook('onRoute', options.onRoute)
  app.setErrorHandler(answerDemoError)
  await ensureDemoSchema(db)

  const accounts = demoAccounts(db)
  const findUser = accounts.findUser

  // An unknown username is checked against this stand-in hash, so it takes as long as a wrong
  // password: the login's timing doesn't tell which usernames exist.
  const standInHash = hashPassword(randomBytes(16).toString('hex'), options.passwordCost ?? DEFAULT_COST)

  const rateLimitPerMinute = options.rateLimitPerMinute ?? 60
  await app.register(twoFactor, {
    database: db,
    accounts,
    keys: options.keys,
    session: { secret: options.sessionSecret, secure: options.secureCookies ?? false },
    issuer: 'Demo App',
    rateLimit: { max: rateLimitPerMinute, timeWindowMs: 60_000, redis: options.rateLimitRedis },
    clock,
    // The demo's own pages have no inline script either, so the plugin's headers suit them too.
    helmet: 'app',
    ...options.twoFactor
  })
  // After the plugin, so the session is loaded when a refusal is rendered.
  app.addHook('onRequest', refuseCrossSiteWrites)

  const signedInUser = async (request: import('fastify').FastifyRequest) => {
    const id = request.twoFactor.userId
    return id === null ? undefined : await findUser(id)
  }
  const wantsJson = (accept: unknown) => typeof accept === 'string' && accept.includes('application/json') && !accept.startsWith('text/html')
  const loginRateLimit = app.twoFactor.rateLimitConfig === false ? {} : { rateLimit: app.twoFactor.rateLimitConfig }

  app.get('/login', { config: { twoFactor: false } }, async (request, reply) => {
    const returnTo = typeof (request.query as { returnTo?: unknown }).returnTo === 'string' ? (request.query as { returnTo: string }).returnTo : undefined
    const csrfToken = reply.generateCsrf()
    if (wantsJson(request.headers.accept)) return { state: request.twoFactor.state, csrfToken }
    return reply.type('text/html').send(page({ title: 'Sign in', csrfToken, body: loginForm({ csrfToken, returnTo }) }))
  })

  app.post('/login', { config: { twoFactor: false, ...loginRateLimit }, preHandler: app.csrfProtection }, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>
    const username = typeof body.username === 'string' ? body.username.slice(0, 200) : ''
    const password = typeof body.password === 'string' ? body.password.slice(0, 1024) : ''
    const returnTo = typeof body.returnTo === 'string' ? body.returnTo : undefined
    const json = wantsJson(request.headers.accept)
    const refuse = (message: string, status = 401) => {
      const csrfToken = reply.generateCsrf()
      if (json) return reply.code(status).send({ error: status === 423 ? 'locked' : 'invalid_credentials', message })
      return reply.code(status).type('text/html').send(page({ title: 'Sign in', csrfToken, body: loginForm({ csrfToken, error: message, username, returnTo }) }))
    }

    const user = username.includes('\u0000') ? undefined : (await db.select().from(demoUsers).where(eq(demoUsers.username, username)).limit(1))[0]
    const now = new Date(clock())
    if (user?.lockedUntil != null && user.lockedUntil > now) return refuse('Too many wrong passwords. Try again later.', 423)
    const passwordRight = await verifyPassword(password, user?.passwordHash ?? await standInHash)
    if (user === undefined || !passwordRight) {
      if (user !== undefined) {
        await db.update(demoUsers).set({
          failedLogins: sql`${demoUsers.failedLogins} + 1`,
          lockedUntil: sql`case when ${demoUsers.failedLogins} + 1 >= ${PASSWORD_LOCKOUT.threshold} then ${now.toISOString()}::timestamptz + interval '${sql.raw(String(PASSWORD_LOCKOUT.minutes))} minutes' else ${demoUsers.lockedUntil} end`
        }).where(and(eq(demoUsers.id, user.id)))
      }
      return refuse('That username and password don’t match.')
    }

    const next = await request.twoFactor.startLogin(user.id, { returnTo })
    // The session was regenerated: the token for the next step is the new session's.
    if (json) return { state: next.state, next: next.next, csrfToken: reply.generateCsrf() }
    return reply.redirect(next.next, 303)
  })

  // Reachable in every sign-in state: at the code prompt or in the forced wizard, the password
  // step can be undone (on a shared computer, say).
  app.post('/logout', { config: { twoFactor: false }, preHandler: app.csrfProtection }, async (request, reply) => {
    await request.twoFactor.logout()
    if (wantsJson(request.headers.accept)) return { state: 'anonymous', next: '/login', csrfToken: reply.generateCsrf() }
    return reply.redirect('/login', 303)
  })

  // A password change ends the user's other sessions, half-done sign-ins included: a code must
  // not finish a sign-in begun with the old password. (An API route; the demo has no page for it.)
  app.post('/password', { preHandler: app.csrfProtection }, async (request, reply) => {
    const user = await signedInUser(request)
    if (user === undefined) return reply.redirect('/login', 303)
    const body = (request.body ?? {}) as Record<string, unknown>
    const current = typeof body.currentPassword === 'string' ? body.currentPassword.slice(0, 1024) : ''
    const next = typeof body.newPassword === 'string' ? body.newPassword : ''
    if (next.length < 12 || next.length > 1024 || !await verifyPassword(current, user.passwordHash)) {
      return reply.code(422).send({ error: 'invalid_input', message: 'Enter your current password and a new one of at least 12 characters.' })
    }
    await db.update(demoUsers).set({ passwordHash: await hashPassword(next, options.passwordCost) }).where(eq(demoUsers.id, user.id))
    const ended = await request.twoFactor.endOtherSessions()
    return { changed: true, otherSessionsEnded: ended, csrfToken: reply.generateCsrf() }
  })

  // A sensitive page: step-up asks for a code entered in the last 10 minutes.
  app.get('/export', { config: { twoFactor: { freshWithin: '10m' } } }, async (request, reply) => {
    const user = await signedInUser(request)
    if (user === undefined) return reply.redirect('/login', 303)
    if (wantsJson(request.headers.accept)) return { user: { id: user.id, username: user.username, role: user.role, createdAt: user.createdAt } }
    return reply.type('text/html').send(page({
      title: 'Export your data',
      csrfToken: reply.generateCsrf(),
      user,
      body: `<section class="tf-card" aria-labelledby="export-title">
        <h1 id="export-title">Export your data</h1>
        <p>This page asks for a recent two-factor code: ${escapeHtml(user.username)}, role ${escapeHtml(user.role)}.</p>
      </section>`
    }))
  })

  app.get('/', async (request, reply) => {
    const user = await signedInUser(request)
    if (user === undefined) return reply.redirect('/login', 303)
    const status = await app.twoFactor.status(user.id)
    const csrfToken = reply.generateCsrf()
    if (wantsJson(request.headers.accept)) return { user: { id: user.id, username: user.username, role: user.role }, twoFactor: { enabled: status.enabled, notice: request.twoFactor.notice }, csrfToken }
    return reply.type('text/html').send(page({
      title: 'Dashboard',
      csrfToken,
      user,
      banner: await request.twoFactor.banner(reply),
      body: `<section class="tf-card" aria-labelledby="dash-title">
        <h1 id="dash-title">Welcome, ${escapeHtml(user.username)}</h1>
        <p>You are signed in. Two-factor authentication is <strong>${status.enabled ? 'on' : 'off'}</strong>.</p>
        <p><a class="tf-button" href="/2fa/settings">Two-factor settings</a> <a href="/export">Export your data</a> (asks for a fresh code)</p>
      </section>`
    }))
  })

  await demoAdminRoutes(app, { db, findUser, signedInUser, wantsJson, createUser: async (input) => await createDemoUser(db, { ...input, createdAt: new Date(clock()) }) })

  return app
}
