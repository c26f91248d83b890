// fastify-two-factor: one `register` gives a Fastify 5 app TOTP two-factor sign-in.
//
// This entry checks the options once, prepares the database, builds the core (stores and
// services), wires the web plumbing the pages need (cookies, sessions, forms, CSRF, security
// headers, rate limits) unless the host already did, decorates `fastify.twoFactor` and
// `request.twoFactor`, installs the gate at the root and registers the pages under the prefix.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { keepAuditLogFor } from './audit-retention.ts'
import { Keyring } from './core/keyring.ts'
import { safeLocation } from './core/location.ts'
import { migrate } from './db/migrate.ts'
import { PgSessionStore, type TwoFactorSessionStore } from './db/session-store.ts'
import { createGate } from './gate.ts'
import { checkKeysOpenStoredSecrets } from './key-check.ts'
import type { ResolvedOptions, TwoFactorOptions } from './options.ts'
import { OptionsError, validateOptions } from './validate-options.ts'
import { registerWebPlumbing } from './plumbing.ts'
import { pagesPlugin } from './routes/pages.ts'
import type { RouteContext } from './routes/context.ts'
import { RequestTwoFactor } from './request-context.ts'
import { createCore, type Core } from './services/core.ts'
import { fromActor } from './services/context.ts'
import type { TwoFactorApi } from './public-types.ts'
import { csrfPostOptions } from './routes/pages.ts'
import { sendTrustedCookie } from './routes/trusted-cookie.ts'
import { Messages, negotiateLocale } from './views/messages.ts'
import { Renderer, type RenderTemplate } from './views/renderer.ts'
import { assetPaths, loadAssets } from './routes/assets.ts'
import './public-types.ts'

export * from './public-types.ts'

async function twoFactor (fastify: FastifyInstance, rawOptions: TwoFactorOptions): Promise<void> {
  if (fastify.hasDecorator('twoFactor')) {
    throw new OptionsError('register', 'fastify-two-factor is registered twice in this app; register it once, at the root')
  }
  if (fastify.hasRequestDecorator('session')) {
    throw new OptionsError('session', 'the app registers @fastify/session itself; leave that to fastify-two-factor and pass your store as `session.store` (it must offer the per-account index: endAccountSessions, listAccountSessions), so that turning 2FA off or a reset can end an account\'s other sessions')
  }
  const options = validateOptions(rawOptions)
  // A missing or malformed key stops startup here with a message naming TWO_FACTOR_KEYS.
  const keyring = Keyring.fromEnv(options.keys ?? process.env.TWO_FACTOR_KEYS)
  const db = options.database
  if (options.migrate) await migrate(db)
  // Started with a key that did not seal the stored secrets, stop now rather than fail every sign-in.
  await checkKeysOpenStoredSecrets(db, keyring, fastify.log)

  const sessionStore: TwoFactorSessionStore = options.session.store ?? new PgSessionStore(db, options.clock, fastify.log)
  const core = createCore({
    database: db,
    keyring,
    accounts: options.accounts,
    sessions: sessionStore,
    totp: { algorithm: options.algorithm, digits: options.digits, period: options.period, window: options.window },
    lockout: { threshold: options.lockoutThreshold, baseMs: options.lockoutBaseMs, maxMs: options.lockoutMaxMs },
    enrolmentTtlMs: options.enrolmentTtlMs,
    allowSkip: options.allowSkip,
    trustedDevice: options.trustedDevice,
    onEvent: options.onEvent,
    alert: options.alert,
    alertThreshold: options.alertThreshold,
    alertWindowMs: options.alertWindowMs,
    clock: options.clock,
    log: fastify.log
  })
  await registerWebPlumbing(fastify, options, sessionStore)

  const messages = new Messages(options.templatesDir)
  const localeOf = (request: FastifyRequest): string => {
    const chosen = typeof options.locale === 'function' ? options.locale(request) : options.locale
    return chosen !== undefined && messages.locales.includes(chosen) ? chosen : negotiateLocale(request.headers['accept-language'], messages.locales)
  }
  const t = (request: FastifyRequest) => messages.for(localeOf(request))
  // Templates render through @fastify/view, registered with the pages (see routes/pages.ts).
  let renderTemplate: RenderTemplate = async () => { throw new Error('two-factor: the pages are not registered yet') }
  const assets = loadAssets()
  const paths = assetPaths(options.prefix, assets)
  const renderer = new Renderer(async (reply, template, data) => await renderTemplate(reply, template, data), (request) => {
    const lang = localeOf(request)
    return { prefix: options.prefix, assets: paths, lang, t: messages.for(lang) }
  })

  let askForStepUp: (request: FastifyRequest, reply: FastifyReply, stepUpReturnTo: string | undefined) => Promise<unknown> = async () => {}
  const gate = createGate({
    prefix: options.prefix,
    loginPath: options.loginPath,
    requireSignIn: options.requireSignIn,
    clock: options.clock,
    t,
    isEnrolled: async (userId) => (await core.services.status.of(userId)).enabled,
    askForStepUp: async (request, reply, returnTo) => await askForStepUp(request, reply, returnTo)
  })
  fastify.addHook('onRoute', gate.onRoute)
  fastify.addHook('preHandler', gate.hook)
  const warnSecureCookiesOverHttp = secureCookiesOverHttpWarning(options)
  fastify.addHook('onSend', function beforeSending (request, reply, payload, done) {
    sendTrustedCookie(options, request, reply)
    redirectHeadersSafe(reply)
    warnSecureCookiesOverHttp(request)
    done(null, payload)
  })

  const ctx: RouteContext = {
    options,
    core,
    renderer,
    t,
    ...csrfPostOptions(options),
    freshWithinOf: gate.freshWithinOf
  }
  fastify.decorate('twoFactor', hostApi(core, options, sessionStore))
  fastify.decorateRequest('twoFactor', {
    // A small view made on each access rather than kept on the request: it holds no state of
    // its own, and a property added to every request would change the object's shape.
    getter (this: FastifyRequest) {
      return new RequestTwoFactor(this, ctx)
    }
  })
  pruneHourly(fastify, core, sessionStore, options)
  if (options.auditRetentionDays !== undefined) keepAuditLogFor(fastify, core, options.auditRetentionDays)

  await fastify.register(pagesPlugin, {
    prefix: options.prefix,
    ctx,
    assets,
    onReady: (render: RenderTemplate, stepUp: typeof askForStepUp) => {
      renderTemplate = render
      askForStepUp = stepUp
    }
  })
}

/** `fastify.twoFactor`: what the host's own code (its admin pages, a password change) and scripts call. */
function hostApi (core: Core, options: ResolvedOptions, sessionStore: TwoFactorSessionStore): TwoFactorApi {
  const { admin, status } = core.services
  return {
    status: async (userId) => await status.of(String(userId)),
    setRequired: async (userId, required, context) => {
      await admin.setRequired(String(userId), required, fromActor(context))
      return await status.of(String(userId))
    },
    reset: async (userId, context) => {
      await admin.reset(String(userId), context.reason, fromActor(context))
      return await status.of(String(userId))
    },
    unlock: async (userId, context) => {
      await admin.unlock(String(userId), fromActor(context))
      return await status.of(String(userId))
    },
    onUserCreated: async (userId) => { await admin.onUserCreated(String(userId)) },
    policy: async () => await admin.policy(),
    setPolicy: async (settings, context) => await admin.setPolicy(settings, fromActor(context)),
    endSessions: async (userId, context) => await core.services.sessions.endOthers(String(userId), undefined, fromActor(context), 'host'),
    sessionStore,
    rateLimitConfig: options.rateLimit === false ? false : { max: options.rateLimit.max, timeWindow: options.rateLimit.timeWindowMs }
  }
}

/**
 * The last line of defence for redirects: a `Location` (or htmx's redirect headers) holding a
 * character a header can't carry would make Node throw while the response is on its way, which
 * can end the process. The plugin builds its own with `safeLocation`; this catches a host's.
 */
function redirectHeadersSafe (reply: FastifyReply): void {
  for (const name of ['location', 'hx-redirect', 'hx-location']) {
    const value = reply.getHeader(name)
    if (typeof value === 'string' && /[^\u0021-\u007e]/.test(value)) reply.header(name, safeLocation(value))
  }
}

/**
 * Dev-mode friendliness: with `session.secure` on (the default outside NODE_ENV=development),
 * @fastify/session sets no cookie on a plain-HTTP request and a browser would drop a `Secure`
 * one anyway, so sign-in silently never sticks. Said once, on the first plain-HTTP request that
 * would have set the session cookie (a changed session). Behind a TLS proxy Fastify's
 * `trustProxy` makes `request.protocol` 'https', and nothing is said.
 */
function secureCookiesOverHttpWarning (options: ResolvedOptions): (request: FastifyRequest) => void {
  let warned = !options.session.secure
  return (request) => {
    if (warned || request.protocol !== 'http') return
    const session = request.session as { isModified?: () => boolean } | undefined
    if (session?.isModified?.() !== true) return
    warned = true
    request.log.warn(
      'two-factor: this app was reached over plain HTTP, but the option `session.secure` is on (the default unless NODE_ENV=development): ' +
      'the session cookie is Secure, so browsers will not keep it and sign-in cannot work. Serve the app over HTTPS ' +
      '(behind a TLS proxy, set Fastify\'s `trustProxy`), or for local development set `session: { secure: false }` or NODE_ENV=development.'
    )
  }
}

/**
 * Expired rows are never read again (every read checks expiry) but would pile up: one pass an
 * hour keeps the tables small. The timer doesn't keep the process alive.
 */
function pruneHourly (fastify: FastifyInstance, core: Core, store: TwoFactorSessionStore, options: ResolvedOptions): void {
  const prune = async () => {
    const now = new Date(options.clock())
    if (store instanceof PgSessionStore) await store.pruneExpired()
    await core.stores.enrolments.pruneExpired(now)
    await core.stores.challenges.pruneExpired(now)
    await core.stores.marks.pruneExpired(now)
  }
  const timer = setInterval(() => {
    prune().catch(() => fastify.log.warn('two-factor: pruning expired rows failed'))
  }, 60 * 60_000)
  timer.unref()
  fastify.addHook('onClose', async () => clearInterval(timer))
}

export default fp(twoFactor, {
  name: 'fastify-two-factor',
  fastify: '5.x'
})
