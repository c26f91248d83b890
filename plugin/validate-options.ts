// The one check of the host's options, at register time: a bad option fails `app.ready()` with a
// message naming it, and the rest of the plugin reads only the resolved, complete options.
import { driverOf } from './db/database.ts'
import { missingIndexMethods } from './db/session-store.ts'
import { parseDuration } from './core/duration.ts'
import { isFolder } from './views/eta.ts'
import { shippedLocales } from './views/messages.ts'
import { DEFAULTS, type AccountsAdapter, type ResolvedOptions, type TwoFactorOptions } from './options.ts'

/** A hundred years: longer is "forever", which is leaving the option out. */
const MAX_RETENTION_DAYS = 36_500

export class OptionsError extends Error {
  constructor (option: string, problem: string) {
    super(`fastify-two-factor: option "${option}" ${problem}`)
    this.name = 'OptionsError'
  }
}

const isFn = (v: unknown): v is (...args: any[]) => unknown => typeof v === 'function'

function positiveInt (name: string, value: unknown, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new OptionsError(name, `must be an integer between ${min} and ${max}`)
  }
  return value
}

function localPath (name: string, value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//')) {
    throw new OptionsError(name, 'must be a path starting with a single "/"')
  }
  return value
}

export function validateOptions (options: TwoFactorOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new OptionsError('options', 'must be an object')
  const o = options as Partial<TwoFactorOptions>

  const driver = driverOf(o.database)
  if ('got' in driver) {
    throw new OptionsError('database', `must be a drizzle database on postgres.js (drizzle-orm/postgres-js), node-postgres (drizzle-orm/node-postgres) or PGlite (drizzle-orm/pglite); it is ${driver.got}`)
  }

  const accounts = o.accounts as Partial<AccountsAdapter> | undefined
  if (accounts === undefined || accounts === null || typeof accounts !== 'object') {
    throw new OptionsError('accounts', 'must be an adapter object with findUser, userId and label')
  }
  for (const required of ['findUser', 'userId', 'label'] as const) {
    if (!isFn(accounts[required])) throw new OptionsError(`accounts.${required}`, 'must be a function')
  }
  for (const optional of ['verifyPassword', 'isAdmin', 'roles', 'createdAt', 'listUsers', 'usersQuery', 'findUsers', 'findByLogin', 'onSignedIn'] as const) {
    if (accounts[optional] !== undefined && !isFn(accounts[optional])) throw new OptionsError(`accounts.${optional}`, 'must be a function when given')
  }

  const session = o.session
  if (session === undefined || session === null || typeof session !== 'object') {
    throw new OptionsError('session', 'must be an object with a secret')
  }
  const secrets = Array.isArray(session.secret) ? session.secret : [session.secret]
  if (secrets.length === 0 || secrets.some((s) => typeof s !== 'string' || s.length < 32)) {
    throw new OptionsError('session.secret', 'must be a string (or array of strings) of at least 32 characters')
  }
  if (session.secure !== undefined && typeof session.secure !== 'boolean') throw new OptionsError('session.secure', 'must be a boolean')
  if (session.store !== undefined) {
    const missing = missingIndexMethods(session.store)
    if (missing.length > 0) {
      throw new OptionsError('session.store', `must list and end an account's sessions, or turning 2FA off, a reset, a lockout and "sign out everywhere" would leave other sessions signed in; it lacks ${missing.join(', ')} (the plugin's Postgres store, the default, has them)`)
    }
  }
  if (session.cookieName !== undefined && (typeof session.cookieName !== 'string' || !/^[\w.-]{1,64}$/.test(session.cookieName))) {
    throw new OptionsError('session.cookieName', 'must be a cookie-safe name')
  }

  const prefix = o.prefix === undefined ? DEFAULTS.prefix : localPath('prefix', o.prefix)
  if (prefix.endsWith('/')) throw new OptionsError('prefix', 'must not end with "/"')

  if (o.issuer !== undefined && !isFn(o.issuer) && (typeof o.issuer !== 'string' || o.issuer.trim() === '' || o.issuer.includes(':'))) {
    throw new OptionsError('issuer', 'must be a non-empty string without ":" or a function of the request')
  }
  const algorithm = o.algorithm ?? DEFAULTS.algorithm
  if (!['SHA1', 'SHA256', 'SHA512'].includes(algorithm)) throw new OptionsError('algorithm', 'must be SHA1, SHA256 or SHA512')
  const digits = o.digits === undefined ? DEFAULTS.digits : positiveInt('digits', o.digits, 6, 8)
  const period = o.period === undefined ? DEFAULTS.period : positiveInt('period', o.period, 15, 120)
  const window = o.window === undefined ? DEFAULTS.window : positiveInt('window', o.window, 0, 5)

  if (o.keys !== undefined && typeof o.keys !== 'string') throw new OptionsError('keys', 'must be a string "id:base64key,..."')
  for (const hook of ['onEvent', 'alert', 'clock'] as const) {
    if (o[hook] !== undefined && !isFn(o[hook])) throw new OptionsError(hook, 'must be a function')
  }
  if (o.helmet !== undefined && o.helmet !== 'app' && typeof o.helmet !== 'boolean') throw new OptionsError('helmet', "must be true, false or 'app'")
  for (const flag of ['allowSkip', 'migrate', 'requireSignIn'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') throw new OptionsError(flag, 'must be a boolean')
  }
  if (o.templatesDir !== undefined && (typeof o.templatesDir !== 'string' || !isFolder(o.templatesDir))) {
    throw new OptionsError('templatesDir', `must be a folder that exists; ${JSON.stringify(o.templatesDir)} is not one`)
  }

  let rateLimit: ResolvedOptions['rateLimit'] = false
  if (o.rateLimit !== false) {
    const rl = o.rateLimit ?? {}
    if (typeof rl !== 'object' || rl === null) throw new OptionsError('rateLimit', 'must be an object or false')
    rateLimit = {
      max: rl.max === undefined ? DEFAULTS.rateLimit.max : positiveInt('rateLimit.max', rl.max),
      timeWindowMs: rl.timeWindowMs === undefined ? DEFAULTS.rateLimit.timeWindowMs : positiveInt('rateLimit.timeWindowMs', rl.timeWindowMs, 1000),
      redis: rl.redis
    }
  }

  let trustedDevice: { days: number } | false = DEFAULTS.trustedDevice
  if (o.trustedDevice === false) trustedDevice = false
  else if (o.trustedDevice !== undefined) {
    if (o.trustedDevice === null || typeof o.trustedDevice !== 'object') throw new OptionsError('trustedDevice', 'must be { days } or false')
    trustedDevice = { days: positiveInt('trustedDevice.days', o.trustedDevice.days, 1, 365) }
  }
  if (o.locale !== undefined && !isFn(o.locale) && !(typeof o.locale === 'string' && shippedLocales().includes(o.locale))) {
    throw new OptionsError('locale', `must be one of ${shippedLocales().join(', ')} or a function of the request`)
  }
  const adminFreshWithinMs = parseDuration(o.adminFreshWithin ?? DEFAULTS.adminFreshWithin)
  if (adminFreshWithinMs === null) throw new OptionsError('adminFreshWithin', 'must look like "30s", "10m" or "1h"')

  const development = process.env.NODE_ENV === 'development'
  return {
    database: o.database!,
    accounts: accounts as AccountsAdapter,
    keys: o.keys,
    session: {
      secret: session.secret,
      secure: session.secure ?? !development,
      cookieName: session.cookieName ?? DEFAULTS.cookieName,
      maxAgeMs: session.maxAgeMs === undefined ? DEFAULTS.sessionMaxAgeMs : positiveInt('session.maxAgeMs', session.maxAgeMs, 60_000),
      store: session.store
    },
    prefix,
    issuer: o.issuer ?? DEFAULTS.issuer,
    algorithm,
    digits,
    period,
    window,
    pendingTtlMs: o.pendingTtlMs === undefined ? DEFAULTS.pendingTtlMs : positiveInt('pendingTtlMs', o.pendingTtlMs, 10_000),
    pendingAttempts: o.pendingAttempts === undefined ? DEFAULTS.pendingAttempts : positiveInt('pendingAttempts', o.pendingAttempts, 1, 100),
    enrolmentTtlMs: o.enrolmentTtlMs === undefined ? DEFAULTS.enrolmentTtlMs : positiveInt('enrolmentTtlMs', o.enrolmentTtlMs, 60_000),
    lockoutThreshold: o.lockoutThreshold === undefined ? DEFAULTS.lockoutThreshold : positiveInt('lockoutThreshold', o.lockoutThreshold, 1, 100),
    lockoutBaseMs: o.lockoutBaseMs === undefined ? DEFAULTS.lockoutBaseMs : positiveInt('lockoutBaseMs', o.lockoutBaseMs, 1000),
    lockoutMaxMs: o.lockoutMaxMs === undefined ? DEFAULTS.lockoutMaxMs : positiveInt('lockoutMaxMs', o.lockoutMaxMs, 1000),
    allowSkip: o.allowSkip ?? DEFAULTS.allowSkip,
    signedInRedirect: o.signedInRedirect === undefined ? DEFAULTS.signedInRedirect : localPath('signedInRedirect', o.signedInRedirect),
    loginPath: o.loginPath === undefined ? DEFAULTS.loginPath : localPath('loginPath', o.loginPath),
    requireSignIn: o.requireSignIn ?? DEFAULTS.requireSignIn,
    trustedDevice,
    adminFreshWithinMs,
    migrate: o.migrate ?? DEFAULTS.migrate,
    rateLimit,
    helmet: o.helmet ?? DEFAULTS.helmet,
    templatesDir: o.templatesDir,
    onEvent: o.onEvent,
    alert: o.alert,
    alertThreshold: o.alertThreshold === undefined ? DEFAULTS.alertThreshold : positiveInt('alertThreshold', o.alertThreshold),
    alertWindowMs: o.alertWindowMs === undefined ? DEFAULTS.alertWindowMs : positiveInt('alertWindowMs', o.alertWindowMs, 1000),
    auditRetentionDays: o.auditRetentionDays === undefined ? undefined : positiveInt('auditRetentionDays', o.auditRetentionDays, 1, MAX_RETENTION_DAYS),
    clock: o.clock ?? Date.now,
    locale: o.locale
  }
}
