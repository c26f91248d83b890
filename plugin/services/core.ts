// The one place stores and services are wired together: the plugin and the CLI both build their
// core here, so a reset from the CLI clears the same rows, ends the same sessions and writes the
// same audit event as one from the admin panel.
import type { FastifyBaseLogger } from 'fastify'
import type { Keyring } from '../core/keyring.ts'
import type { LockoutRule } from '../core/lockout.ts'
import type { TotpParams } from '../core/totp.ts'
import { AccountsStore } from '../db/accounts-store.ts'
import { AdminStore } from '../db/admin-store.ts'
import { ChallengesStore } from '../db/challenges-store.ts'
import type { TwoFactorDatabase } from '../db/database.ts'
import { EnrolmentsStore } from '../db/enrolments-store.ts'
import { EventsStore } from '../db/events-store.ts'
import { MarksStore } from '../db/marks-store.ts'
import { RecoveryStore } from '../db/recovery-store.ts'
import type { AccountSessionIndex } from '../db/session-store.ts'
import { SettingsStore } from '../db/settings-store.ts'
import { TrustedDevicesStore } from '../db/trusted-devices-store.ts'
import { UnitOfWork } from '../db/unit-of-work.ts'
import type { AccountsAdapter } from '../options.ts'
import { Admin } from './admin.ts'
import { AdminUsers } from './admin-users.ts'
import { Audit, type TwoFactorAlert, type TwoFactorEvent } from './audit.ts'
import { Challenge } from './challenge.ts'
import { Enrolment } from './enrolment.ts'
import { Policy } from './policy.ts'
import { Profiles } from './profiles.ts'
import { Reauthentication } from './reauthentication.ts'
import { RecoveryCodes } from './recovery-codes.ts'
import { Sessions } from './sessions.ts'
import { Settings } from './settings.ts'
import { SignIn } from './sign-in.ts'
import { Status } from './status.ts'
import { TrustedDevices } from './trusted-devices.ts'

export interface CoreOptions {
  database: TwoFactorDatabase
  keyring: Keyring
  accounts: AccountsAdapter
  /** The session store's per-account index (list and end an account's sessions). */
  sessions: AccountSessionIndex
  /** Parameters of new secrets, and the window every code check accepts. */
  totp: TotpParams
  lockout: LockoutRule
  enrolmentTtlMs: number
  allowSkip: boolean
  /** How long "don't ask again on this browser" lasts, in days; false: not offered. */
  trustedDevice: { days: number } | false
  onEvent?: (event: TwoFactorEvent) => void | Promise<void>
  alert?: (alert: TwoFactorAlert) => void | Promise<void>
  alertThreshold: number
  alertWindowMs: number
  clock: () => number
  log: FastifyBaseLogger
}

export function createCore (options: CoreOptions) {
  const { database: db, keyring, clock } = options
  const stores = {
    accounts: new AccountsStore(db, options.lockout),
    admin: new AdminStore(db),
    challenges: new ChallengesStore(db),
    enrolments: new EnrolmentsStore(db),
    events: new EventsStore(db),
    marks: new MarksStore(db),
    recovery: new RecoveryStore(db),
    settings: new SettingsStore(db),
    trustedDevices: new TrustedDevicesStore(db)
  }
  const unitOfWork = new UnitOfWork(db, stores.events)
  const audit = new Audit(stores.events, stores.marks, {
    onEvent: options.onEvent,
    alert: options.alert,
    alertThreshold: options.alertThreshold,
    alertWindowMs: options.alertWindowMs,
    clock,
    log: options.log
  })
  const profiles = new Profiles(options.accounts)
  const policy = new Policy(stores.settings, { allowSkip: options.allowSkip })
  const sessions = new Sessions(options.sessions, audit)
  const challenge = new Challenge({ keyring, ...pick(stores, 'accounts', 'recovery', 'challenges'), audit, sessions, totp: options.totp, clock })
  const reauthentication = new Reauthentication(options.accounts, challenge)
  const recoveryCodes = new RecoveryCodes({ keyring, recovery: stores.recovery, unitOfWork, audit, clock })
  const status = new Status({ profiles, accounts: stores.accounts, recovery: stores.recovery, policy, clock })
  const services = {
    audit,
    profiles,
    policy,
    sessions,
    status,
    challenge,
    reauthentication,
    recoveryCodes,
    signIn: new SignIn({ profiles, accounts: stores.accounts, policy, audit, clock }),
    enrolment: new Enrolment({
      keyring, profiles, ...pick(stores, 'accounts', 'enrolments', 'recovery', 'trustedDevices'), recoveryCodes, reauthentication, sessions, unitOfWork, audit,
      totp: options.totp, ttlMs: options.enrolmentTtlMs, clock
    }),
    settings: new Settings({ reauthentication, accounts: stores.accounts, status, recoveryCodes, sessions, unitOfWork, audit, clock }),
    admin: new Admin({ profiles, ...pick(stores, 'accounts', 'settings', 'marks', 'events'), policy, sessions, unitOfWork, audit, clock }),
    trustedDevices: new TrustedDevices({ keyring, store: stores.trustedDevices, audit, days: options.trustedDevice === false ? 0 : options.trustedDevice.days, clock }),
    adminUsers: new AdminUsers({ store: stores.admin, adapter: options.accounts, profiles, policy, clock, log: options.log })
  }
  return { stores, services }
}

export type Core = ReturnType<typeof createCore>

function pick<T extends object, K extends keyof T> (object: T, ...keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((key) => [key, object[key]])) as Pick<T, K>
}
