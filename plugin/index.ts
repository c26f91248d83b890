// fastify-two-factor: one `register` gives a Fastify 5 app TOTP two-factor sign-in.
//
// This entry checks the options once, prepares the database, wires the web plumbing the pages
// need (cookies, sessions, forms, CSRF, security headers, rate limits) unless the host already
// did, decorates `fastify.twoFactor` and `request.twoFactor`, installs the gate at the root and
// registers the pages under the prefix.
import cookie from '@fastify/cookie'
import csrf from '@fastify/csrf-protection'
import formbody from '@fastify/formbody'
import rateLimit from '@fastify/rate-limit'
import session from '@fastify/session'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify'
import fp from 'fastify-plugin'
import { AdminUsers } from './admin-users.ts'
import { Audit } from './audit.ts'
import { Keyring } from './core/keyring.ts'
import { AccountsStore } from './db/accounts-store.ts'
import { AdminStore } from './db/admin-store.ts'
import { EventsStore } from './db/events-store.ts'
import { migrate } from './db/migrate.ts'
import { checkKeysOpenStoredSecrets } from './key-check.ts'
import { RecoveryStore } from './db/recovery-store.ts'
import { PgSessionStore } from './db/session-store.ts'
import { SettingsStore } from './db/settings-store.ts'
import { toPublicError } from './errors.ts'
import { createGate } from './gate.ts'
import { validateOptions, type TwoFactorOptions } from './options.ts'
import { createEta, Renderer, wantsJson } from './render.ts'
import { RequestTwoFactor } from './request-context.ts'
import { securityHeadersHook } from './security-headers.ts'
import { assetPaths, assetRoutes, loadAssets } from './routes/assets.ts'
import { challengeRoutes } from './routes/challenge.ts'
import { crossSiteGuard, csrfPreHandler, refuseNulCharacters, type RouteContext } from './routes/context.ts'
import { adminRoutes } from './routes/admin.ts'
import { settingsRoutes } from './routes/settings.ts'
import { setupRoutes } from './routes/setup.ts'
import { TwoFactorService } from './service.ts'
import './types.ts'

export type { TwoFactorOptions, AccountsAdapter, SessionOptions, RateLimitOptions } from './options.ts'
export type { TwoFactorEvent, TwoFactorAlert, EventType } from './audit.ts'
export type { TwoFactorStatus, UserProfile } from './service.ts'
export type { PolicySettings } from './core/policy.ts'
export type { RequestTwoFactor, StartLoginResult } from './request-context.ts'
export type { TwoFactorDatabase } from './db/database.ts'
export { Keyring, KeyringError } from './core/keyring.ts'
export { PgSessionStore } from './db/session-store.ts'
export { migrate } from './db/migrate.ts'
export { OptionsError } from './options.ts'

/** `fastify.twoFactor`: the service API for host apps and the CLI (SPEC §11). */
export type TwoFactorApi = Pick<TwoFactorService,
  'status' | 'setRequired' | 'reset' | 'unlock' | 'onUserCreated' | 'policy' | 'setPolicy'> & {
  /** The session store the plugin uses (to end a user's sessions, or prune expired ones). */
  sessionStore: PgSessionStore | null
  /** The rate-limit settings of the plugin's POST routes, for the host's own sign-in route. */
  rateLimitConfig: { max: number, timeWindow: number } | false
}

async function twoFactor (fastify: FastifyInstance, rawOptions: TwoFactorOptions): Promise<void> {
  const options = validateOptions(rawOptions)
  // A missing or malformed key stops startup here with a message naming TWO_FACTOR_KEYS.
  const keyring = Keyring.fromEnv(options.keys ?? process.env.TWO_FACTOR_KEYS)
  const db = options.database
  if (options.migrate) await migrate(db)
  // Started with a key that did not seal the stored secrets, stop now rather than fail every sign-in.
  await checkKeysOpenStoredSecrets(db, keyring, fastify.log)

  const ownSessionStore = options.session.store === undefined ? new PgSessionStore(db) : null
  await registerWebPlumbing(fastify, options, ownSessionStore)

  const eventsStore = new EventsStore(db)
  const audit = new Audit(eventsStore, {
    onEvent: options.onEvent,
    alert: options.alert,
    alertThreshold: options.alertThreshold,
    alertWindowMs: options.alertWindowMs,
    clock: options.clock,
    log: fastify.log
  })
  const service = new TwoFactorService({
    options,
    db,
    keyring,
    accounts: new AccountsStore(db),
    recovery: new RecoveryStore(db),
    settings: new SettingsStore(db),
    sessions: ownSessionStore,
    audit,
    log: fastify.log
  })
  const adminStore = new AdminStore(db)
  const adminUsers = new AdminUsers({
    store: adminStore,
    adapter: options.accounts,
    profileOf: (user) => service.profileOf(user),
    allowSkip: options.allowSkip,
    clock: options.clock
  })

  const rateLimitConfig = options.rateLimit === false ? false : { max: options.rateLimit.max, timeWindow: options.rateLimit.timeWindowMs }
  const api: TwoFactorApi = {
    status: service.status.bind(service),
    setRequired: service.setRequired.bind(service),
    reset: service.reset.bind(service),
    unlock: service.unlock.bind(service),
    onUserCreated: service.onUserCreated.bind(service),
    policy: service.policy.bind(service),
    setPolicy: service.setPolicy.bind(service),
    sessionStore: ownSessionStore,
    rateLimitConfig
  }
  fastify.decorate('twoFactor', api)
  fastify.decorateRequest('twoFactor', {
    // A small view made on each access rather than kept on the request: it holds no state of
    // its own, and a property added to every request would change the object's shape.
    getter (this: FastifyRequest) {
      return new RequestTwoFactor(this, service, options)
    }
  })
  fastify.addHook('preHandler', createGate({ prefix: options.prefix, clock: options.clock }))
  if (ownSessionStore !== null) pruneSessionsHourly(fastify, ownSessionStore)

  const assets = loadAssets()
  const paths = assetPaths(options.prefix, assets)
  const renderer = new Renderer(createEta(options.templatesDir), (_request, reply) => ({
    prefix: options.prefix,
    csrfToken: reply.generateCsrf(),
    assets: paths
  }))

  const post: RouteShorthandOptions = {
    onRequest: crossSiteGuard(),
    preHandler: csrfPreHandler,
    config: rateLimitConfig === false ? {} : { rateLimit: rateLimitConfig }
  }
  const context: RouteContext = {
    options,
    service,
    renderer,
    post: { ...post, config: { ...post.config, twoFactor: false } },
    open: { config: { twoFactor: false } }
  }
  // Settings and admin routes stay behind the gate; only the sign-in steps are allow-listed.
  const gatedContext: RouteContext = { ...context, post }

  await fastify.register(async (pages) => {
    // The plugin's own pages always carry its headers (unless `helmet: false`): it knows they need
    // no inline script. With `helmet: 'app'` the root hook has set them already.
    if (options.helmet === true) pages.addHook('onRequest', securityHeadersHook(options.session.secure))
    pages.setErrorHandler((error: FastifyError, request, reply) => answerError(error, request, reply, renderer))
    // After the gate (a root hook), so a half-signed-in session is still sent on its way first.
    pages.addHook('preHandler', refuseNulCharacters)
    await challengeRoutes(pages, context)
    await setupRoutes(pages, context)
    await settingsRoutes(pages, gatedContext)
    // Its own scope, so the admins-only guard covers the admin routes and nothing else.
    await pages.register(async (admin) => { await adminRoutes(admin, { ...gatedContext, audit, adminStore, adminUsers }) })
    await assetRoutes(pages, { ...context, assets })
    pages.post('/logout', context.post, async (request, reply) => {
      await request.twoFactor.logout()
      return renderer.redirect(request, reply, options.loginPath, { state: 'anonymous' })
    })
  }, { prefix: options.prefix })
}

/**
 * Registers what the pages depend on, skipping anything the host has registered itself so
 * the plugin can join an existing app without "decorator already present" errors.
 */
async function registerWebPlumbing (fastify: FastifyInstance, options: ReturnType<typeof validateOptions>, store: PgSessionStore | null): Promise<void> {
  if (!fastify.hasRequestDecorator('cookies')) await fastify.register(cookie)
  if (!fastify.hasRequestDecorator('session')) {
    const { secure } = options.session
    await fastify.register(session, {
      secret: options.session.secret,
      cookieName: secure ? `__Host-${options.session.cookieName}` : options.session.cookieName,
      cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure, maxAge: options.session.maxAgeMs },
      saveUninitialized: false,
      // Saving only changed sessions keeps the gate free of database writes.
      rolling: false,
      store: (options.session.store ?? store) as never
    })
  }
  if (!fastify.hasContentTypeParser('application/x-www-form-urlencoded')) await fastify.register(formbody)
  if (!fastify.hasDecorator('csrfProtection')) await fastify.register(csrf, { sessionPlugin: '@fastify/session' })
  // App-wide only when asked: the plugin's CSP allows no inline script, which would break a
  // host page that has one, and the host's routes are the host's to decide. A host that has
  // registered @fastify/helmet keeps its own.
  if (options.helmet === 'app' && !fastify.hasReplyDecorator('helmet')) {
    fastify.addHook('onRequest', securityHeadersHook(options.session.secure))
  }
  if (options.rateLimit !== false && !fastify.hasDecorator('rateLimit')) {
    await fastify.register(rateLimit, {
      global: false,
      ...(options.rateLimit.redis !== undefined ? { redis: options.rateLimit.redis as never } : {})
    })
  }
}

/**
 * Expired sessions are never read again (the store checks expiry on read) but would pile up;
 * one DELETE an hour keeps the table small. The timer doesn't keep the process alive.
 */
function pruneSessionsHourly (fastify: FastifyInstance, store: PgSessionStore): void {
  const timer = setInterval(() => {
    store.pruneExpired().catch(() => fastify.log.warn('two-factor: pruning expired sessions failed'))
  }, 60 * 60_000)
  timer.unref()
  fastify.addHook('onClose', async () => clearInterval(timer))
}

function answerError (error: FastifyError, request: FastifyRequest, reply: FastifyReply, renderer: Renderer): FastifyReply {
  const publicError = toPublicError(error)
  if (publicError.statusCode === 400 || publicError.statusCode === 415 || publicError.statusCode === 413) {
    request.log.info({ errorCode: error.code }, 'two-factor request rejected')
  } else if (error.name === 'KeyringError') {
    // A stored secret that won't open: a damaged row, or a key removed from the ring.
    request.log.error({ errorName: error.name, reason: (error as { reason?: string }).reason }, 'two-factor request failed: a stored secret could not be decrypted with TWO_FACTOR_KEYS')
  } else if (publicError.statusCode >= 500) {
    // The name and code say what broke; the message may quote SQL parameters, so it stays out.
    request.log.error({ errorName: error.name, errorCode: error.code, dbCode: (error as { dbCode?: string }).dbCode }, 'two-factor request failed')
  }
  if (wantsJson(request)) {
    // No CSRF token here: the failure may be the session store itself.
    return reply.code(publicError.statusCode).header('Vary', 'Accept, HX-Request, HX-Request-Type').send({ error: publicError.error, message: publicError.message })
  }
  return renderer.message(request, reply, { title: 'Something went wrong', status: publicError.statusCode, error: publicError.error, message: publicError.message })
}

export default fp(twoFactor, {
  name: 'fastify-two-factor',
  fastify: '5.x'
})
