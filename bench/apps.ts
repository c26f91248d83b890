// The two host apps the benchmarks compare, built the same way except for the plugin:
//
//   plugin    the demo app (its users table, login, dashboard) with the plugin registered with
//             its defaults, plus a trivial gated route; a variant is the demo as shipped, with
//             the plugin's security headers on every route (`helmet: 'app'`);
//   baseline  the same Fastify, the same @fastify/session options and the same Postgres
//             session store (PgSessionStore), the demo's own hook and error handler, without
//             the plugin: what a host pays anyway for database-backed sessions. Its bare
//             routes are the baselines of the other figures (`/bench/bare`, with no session
//             at all, the baseline of a signed-in request end to end). A variant also sends the
//             plugin's security headers.
import { randomBytes } from 'node:crypto'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import session from '@fastify/session'
import { and, count, eq, isNull, lt, or, sql } from 'drizzle-orm'
import Fastify, { type FastifyInstance } from 'fastify'
import { usernameMatching } from '../demo-app/admin.ts'
import { buildDemoApp } from '../demo-app/app.ts'
import { answerDemoError, refuseCrossSiteWrites } from '../demo-app/errors.ts'
import { demoUsers } from '../demo-app/schema.ts'
import { PgSessionStore, type TwoFactorDatabase, type TwoFactorOptions } from '../plugin/index.ts'
import { accounts } from '../plugin/db/schema.ts'
import { DEFAULTS } from '../plugin/options.ts'
import { securityHeadersHook } from '../plugin/security-headers.ts'

export interface AppConfig {
  db: TwoFactorDatabase
  keys: string
  sessionSecret: string
  /** Plugin options to try a variant (e.g. `{ "helmet": false }`), from BENCH_PLUGIN_OPTIONS. */
  twoFactor?: Partial<TwoFactorOptions>
}

/** Rate limits would cap the measurement itself; the limiter still runs on every POST. */
const UNLIMITED = 1_000_000_000

/**
 * `securityHeaders`: the demo as shipped, with the plugin's security headers on every route
 * (`helmet: 'app'`); otherwise the plugin's default, headers on its own pages only.
 */
export async function buildPluginApp (config: AppConfig, { securityHeaders = false } = {}): Promise<FastifyInstance> {
  const app = await buildDemoApp({
    database: config.db,
    keys: config.keys,
    sessionSecret: config.sessionSecret,
    secureCookies: false,
    rateLimitPerMinute: UNLIMITED,
    twoFactor: { ...config.twoFactor, helmet: securityHeaders ? 'app' : true }
  })
  // The trivial gated route: everything it costs beyond the baseline's twin is the plugin.
  app.get('/bench/ping', async (request) => ({ userId: request.twoFactor.userId }))
  return app
}

/**
 * `securityHeaders`: also send the plugin's security headers (its own hook), as a host that
 * already uses helmet would, to tell the headers' cost from the gate's.
 */
export async function buildBaselineApp (config: AppConfig, { securityHeaders = false } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, trustProxy: false })
  // The demo host's own error handler and cross-site check, which it has with or without the plugin.
  app.setErrorHandler(answerDemoError)
  app.addHook('onRequest', refuseCrossSiteWrites)
  if (securityHeaders) app.addHook('onRequest', securityHeadersHook(false))
  await app.register(cookie)
  // The options the plugin gives @fastify/session (plugin/index.ts, registerWebPlumbing).
  await app.register(session, {
    secret: config.sessionSecret,
    cookieName: DEFAULTS.cookieName,
    cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false, maxAge: DEFAULTS.sessionMaxAgeMs },
    saveUninitialized: false,
    rolling: false,
    store: new PgSessionStore(config.db) as never
  })
  await app.register(formbody)

  // No session at all: requested without a cookie, so the session store is never read or
  // written (@fastify/session still makes an empty session object, as for any visitor); the
  // baseline of a signed-in request end to end, session read and gate included.
  app.get('/bench/bare', async () => ({ userId: null }))

  app.get('/bench/ping', async (request) => {
    const data = request.session.twoFactor
    return { userId: data?.state === 'signed-in' ? data.userId : null }
  })

  // A signed-in session holding the same data as the plugin app's: the two-factor state, and
  // the CSRF secret its forms (the host's login page among them) keep in the session. The
  // session is read, copied and hashed on every request, so its size is part of the cost.
  app.post('/bench/sign-in', async (request) => {
    const { userId } = request.body as { userId: string }
    await request.session.regenerate()
    request.session.twoFactor = { state: 'signed-in', userId }
    const data = request.session as unknown as Record<string, unknown>
    data._csrf = randomBytes(18).toString('base64url')
    return { ok: true }
  })

  // The single-use guard alone: the one conditional UPDATE a valid code costs.
  const consumeStep = config.db.update(accounts).set({ lastUsedStep: sql`${sql.placeholder('step')}::bigint` })
    .where(and(eq(accounts.userId, sql.placeholder('userId')), or(isNull(accounts.lastUsedStep), lt(accounts.lastUsedStep, sql`${sql.placeholder('step')}::bigint`))))
    .returning({ userId: accounts.userId }).prepare('bench_consume_step')
  app.post('/bench/consume-step', async (request, reply) => {
    const { userId, step } = request.body as { userId: string, step: string }
    const ok = (await consumeStep.execute({ userId, step: Number(step) })).length === 1
    return reply.code(ok ? 200 : 409).send({ ok })
  })

  // The host's own users query, as the demo's `listUsers` adapter runs it (demo-app/app.ts).
  app.get('/bench/users', async (request) => {
    const query = request.query as { q?: string, page?: string }
    const q = query.q ?? ''
    const offset = (Number(query.page ?? 1) - 1) * 25
    const where = usernameMatching(q)
    const [users, total] = await Promise.all([
      config.db.select().from(demoUsers).where(where).orderBy(demoUsers.username).offset(offset).limit(25),
      config.db.select({ n: count() }).from(demoUsers).where(where)
    ])
    return { users: users.map((u) => ({ id: u.id, label: u.username })), total: Number(total[0]?.n ?? 0) }
  })

  return app
}
