// The core the CLI works through: the same one the plugin builds (so a reset from
// the CLI clears the same rows, ends the same sessions and writes the same audit event), built
// from the database alone. Inside it users are their ids, and the CLI reports what the plugin's
// tables know: the host's adapter (from the config file) only turns a login name into an id
// beforehand, so an account the app has since deleted can still be reset or exempted here.
import type { FastifyBaseLogger } from 'fastify'
import { KeyringError, type Keyring } from '../core/keyring.ts'
import type { TwoFactorDatabase } from '../db/database.ts'
import { PgSessionStore, type TwoFactorSessionStore } from '../db/session-store.ts'
import { DEFAULTS, type AccountsAdapter } from '../options.ts'
import type { AuditContext } from '../services/context.ts'
import { createCore, type Core } from '../services/core.ts'

export const CLI_ACTOR = 'cli'

/** What the CLI's changes are attributed to. */
export const CLI_CONTEXT: AuditContext = { actor: CLI_ACTOR, ip: null, userAgent: null }

/** Users as bare ids: the CLI checks the plugin's row itself before acting on one. */
const idOnlyAccounts: AccountsAdapter<{ id: string }> = {
  findUser: (id) => ({ id }),
  userId: (user) => user.id,
  label: (user) => user.id
}

/**
 * Stands in for the key ring in commands that never open a secret (everything but
 * rotate-keys): any use fails loudly rather than sealing with a made-up key.
 */
function keyringNotLoaded (): Keyring {
  return new Proxy({}, {
    get () { throw new KeyringError('This command needs TWO_FACTOR_KEYS.', 'configuration') }
  }) as Keyring
}

export function createCliCore (db: TwoFactorDatabase, keyring: Keyring | null, log: FastifyBaseLogger, sessions: TwoFactorSessionStore | null = null): Core {
  const clock = Date.now
  return createCore({
    database: db,
    keyring: keyring ?? keyringNotLoaded(),
    accounts: idOnlyAccounts,
    sessions: sessions ?? new PgSessionStore(db, clock, log),
    totp: { algorithm: DEFAULTS.algorithm, digits: DEFAULTS.digits, period: DEFAULTS.period, window: DEFAULTS.window },
    lockout: { threshold: DEFAULTS.lockoutThreshold, baseMs: DEFAULTS.lockoutBaseMs, maxMs: DEFAULTS.lockoutMaxMs },
    enrolmentTtlMs: DEFAULTS.enrolmentTtlMs,
    allowSkip: DEFAULTS.allowSkip,
    trustedDevice: DEFAULTS.trustedDevice,
    alertThreshold: DEFAULTS.alertThreshold,
    alertWindowMs: DEFAULTS.alertWindowMs,
    clock,
    log
  })
}

/** A logger for the few warnings the service may give: one JSON line each on stderr. */
export function stderrLogger (write: (line: string) => void): FastifyBaseLogger {
  const at = (level: string) => (object: unknown, message?: string) => {
    write(JSON.stringify({ level, msg: typeof object === 'string' ? object : message, ...(typeof object === 'object' ? object : {}) }))
  }
  const noop = () => {}
  const logger = {
    level: 'warn',
    fatal: at('fatal'),
    error: at('error'),
    warn: at('warn'),
    info: noop,
    debug: noop,
    trace: noop,
    silent: noop,
    child: () => logger
  }
  return logger as unknown as FastifyBaseLogger
}
