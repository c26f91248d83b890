// The service the CLI works through: the same TwoFactorService the plugin uses (so a reset from
// the CLI clears the same rows, ends the same sessions and writes the same audit event), built
// from the database alone. Without the host app there is no user adapter: users are their ids,
// and the CLI reports what the plugin's tables know.
import type { FastifyBaseLogger } from 'fastify'
import { Audit } from '../audit.ts'
import { KeyringError, type Keyring } from '../core/keyring.ts'
import { AccountsStore } from '../db/accounts-store.ts'
import { AdminStore } from '../db/admin-store.ts'
import type { TwoFactorDatabase } from '../db/database.ts'
import { EventsStore } from '../db/events-store.ts'
import { RecoveryStore } from '../db/recovery-store.ts'
import { PgSessionStore } from '../db/session-store.ts'
import { SettingsStore } from '../db/settings-store.ts'
import { DEFAULTS, type AccountsAdapter } from '../options.ts'
import { TwoFactorService, type ServiceOptions } from '../service.ts'

export const CLI_ACTOR = 'cli'

export interface CliServices {
  service: TwoFactorService
  audit: Audit
  adminStore: AdminStore
  recovery: RecoveryStore
}

/** Users as bare ids: the CLI checks the plugin's row itself before acting on one. */
const idOnlyAccounts: AccountsAdapter<{ id: string }> = {
  findUser: (id) => ({ id }),
  userId: (user) => user.id,
  label: (user) => user.id,
  verifyPassword: () => false
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

export function createCliServices (db: TwoFactorDatabase, keyring: Keyring | null, log: FastifyBaseLogger): CliServices {
  const clock = Date.now
  const options: ServiceOptions = {
    accounts: idOnlyAccounts,
    algorithm: DEFAULTS.algorithm,
    digits: DEFAULTS.digits,
    period: DEFAULTS.period,
    window: DEFAULTS.window,
    lockoutThreshold: DEFAULTS.lockoutThreshold,
    lockoutBaseMs: DEFAULTS.lockoutBaseMs,
    lockoutMaxMs: DEFAULTS.lockoutMaxMs,
    allowSkip: DEFAULTS.allowSkip,
    clock,
    issuer: DEFAULTS.issuer,
    enrolmentTtlMs: DEFAULTS.enrolmentTtlMs
  }
  const audit = new Audit(new EventsStore(db), {
    alertThreshold: DEFAULTS.alertThreshold,
    alertWindowMs: DEFAULTS.alertWindowMs,
    clock,
    log
  })
  const recovery = new RecoveryStore(db)
  const service = new TwoFactorService({
    options,
    db,
    keyring: keyring ?? keyringNotLoaded(),
    accounts: new AccountsStore(db),
    recovery,
    settings: new SettingsStore(db),
    sessions: new PgSessionStore(db, clock),
    audit,
    log
  })
  return { service, audit, adminStore: new AdminStore(db), recovery }
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
