// The wizard's secret: made for one session, shown to it, and made the account's only when
// that same session confirms it with a current code. Another session of the account (another
// browser, or someone who has only the password) gets a secret of its own and can never see or
// confirm this one. Replacing an active authenticator asks for the password (or, for hosts
// without passwords, a code of the current authenticator) in the confirm request itself.
import { randomBytes } from 'node:crypto'
import { base32Encode, groupBy4 } from '../core/base32.ts'
import type { Keyring } from '../core/keyring.ts'
import { findClockDrift, generateSecret, otpauthUri, parseTotpInput, verifyTotp, type TotpParams } from '../core/totp.ts'
import type { AccountsStore } from '../db/accounts-store.ts'
import type { EnrolmentRow, EnrolmentsStore } from '../db/enrolments-store.ts'
import type { RecoveryStore } from '../db/recovery-store.ts'
import type { TrustedDevicesStore } from '../db/trusted-devices-store.ts'
import type { UnitOfWork } from '../db/unit-of-work.ts'
import type { Audit } from './audit.ts'
import type { ReauthInput, Reauthentication } from './reauthentication.ts'
import type { AuditContext } from './context.ts'
import type { Profiles } from './profiles.ts'
import type { RecoveryCodes } from './recovery-codes.ts'
import type { Sessions } from './sessions.ts'
import { isEnrolled } from './sign-in.ts'

export interface EnrolmentView {
  enrolmentId: string
  issuer: string
  account: string
  manualKey: string
  otpauthUri: string
  digits: number
  expiresAt: Date
}


export type ConfirmOutcome =
  | { ok: true, recoveryCodes: string[], replaced: boolean }
  | { ok: false, reason: 'expired' }
  | { ok: false, reason: 'invalid_input' | 'invalid_code', driftMinutes: number | null }
  /** Replacing: the password (or current code) is missing or wrong; counted as a failure. */
  | { ok: false, reason: 'wrong_password' | 'wrong_current_code' }
  | { ok: false, reason: 'locked', lockedUntil: Date }

export interface EnrolmentDeps {
  keyring: Keyring
  profiles: Profiles
  accounts: AccountsStore
  enrolments: EnrolmentsStore
  trustedDevices: TrustedDevicesStore
  recovery: RecoveryStore
  recoveryCodes: RecoveryCodes
  reauthentication: Reauthentication
  sessions: Sessions
  unitOfWork: UnitOfWork
  audit: Audit
  totp: TotpParams
  ttlMs: number
  clock: () => number
}

export class Enrolment {
  constructor (private readonly deps: EnrolmentDeps) {}

  /**
   * The session's pending secret while it is fresh (opening the wizard again does not extend
   * its life), else a new one. `existingId` is what the session holds, if anything.
   */
  async open (userId: string, existingId: string | undefined, issuer: string, context: AuditContext): Promise<EnrolmentView> {
    const { keyring, enrolments } = this.deps
    const profile = await this.deps.profiles.require(userId)
    const now = new Date(this.deps.clock())
    let row = existingId === undefined ? undefined : await enrolments.find(existingId, userId, now)
    if (row === undefined) {
      const { algorithm, digits, period } = this.deps.totp
      row = {
        id: randomBytes(16).toString('base64url'),
        userId,
        secret: keyring.seal(generateSecret(), userId),
        algorithm,
        digits,
        period,
        createdAt: now,
        expiresAt: new Date(now.getTime() + this.deps.ttlMs)
      }
      await enrolments.create(row)
      await this.deps.audit.record('enrolment.started', { userId, context })
    }
    const secret = keyring.open(row.secret, userId)
    return {
      enrolmentId: row.id,
      issuer,
      account: profile.label,
      manualKey: groupBy4(base32Encode(secret)),
      otpauthUri: otpauthUri({ issuer, account: profile.label, secret, params: paramsOfRow(row, this.deps.totp.window) }),
      digits: row.digits,
      expiresAt: row.expiresAt
    }
  }

  /** Confirms this session's pending secret with a current code; see ConfirmOutcome. */
  async confirm (input: { userId: string, enrolmentId: string, code: unknown, reauth: ReauthInput, context: AuditContext, sessionId: string }): Promise<ConfirmOutcome> {
    const { userId, enrolmentId, context } = input
    const now = new Date(this.deps.clock())
    const row = await this.deps.enrolments.find(enrolmentId, userId, now)
    if (row === undefined) return { ok: false, reason: 'expired' }
    const params = paramsOfRow(row, this.deps.totp.window)
    const code = parseTotpInput(input.code, params.digits)
    if (code === null) return { ok: false, reason: 'invalid_input', driftMinutes: null }
    const secret = this.deps.keyring.open(row.secret, userId)
    const match = verifyTotp(secret, code, now.getTime(), params)
    if (match === null) return { ok: false, reason: 'invalid_code', driftMinutes: findClockDrift(secret, code, now.getTime(), params, { direction: 'both' }) }

    const account = await this.deps.accounts.find(userId)
    const replacing = isEnrolled(account)
    if (replacing) {
      const refused = await this.deps.reauthentication.check(userId, input.reauth, { ...context, sessionId: input.sessionId }, true)
      if (refused !== null) return { ok: false, ...refused }
    }

    const { codes, digests } = this.deps.recoveryCodes.issue(userId)
    const { audit } = this.deps
    const { result: confirmed, events } = await this.deps.unitOfWork.run(async (work) => {
      // Taking the row decides races: of concurrent confirmations exactly one finds it.
      const taken = await this.deps.enrolments.take(work.tx, enrolmentId, userId, now)
      if (taken === undefined) return false
      await this.deps.accounts.activate(work.tx, userId, { id: taken.id, secret: taken.secret, params }, match.step, now)
      await this.deps.enrolments.deleteOthers(work.tx, userId, taken.id)
      await this.deps.recovery.replace(work.tx, userId, digests, now)
      // Trust given under the old authenticator does not carry over to the new one.
      const browsersForgotten = replacing ? await this.deps.trustedDevices.forgetAll(userId, work.tx) : 0
      await audit.recordIn(work, 'enrolment.completed', { userId, context })
      if (replacing) await audit.recordIn(work, 'authenticator.replaced', { userId, context })
      await audit.recordTrustEnded(work, userId, browsersForgotten, 'replaced', context)
      return true
    })
    if (!confirmed) return { ok: false, reason: 'expired' }
    await audit.publish(events)
    // Other sessions were signed in without this factor (or with the old one): they end.
    await this.deps.sessions.endOthers(userId, input.sessionId, context, replacing ? 'replaced' : 'enrolled')
    return { ok: true, recoveryCodes: codes, replaced: replacing }
  }

}

function paramsOfRow (row: EnrolmentRow, window: number): TotpParams {
  return { algorithm: row.algorithm as TotpParams['algorithm'], digits: row.digits, period: row.period, window }
}

