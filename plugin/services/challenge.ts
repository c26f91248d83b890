// One code or recovery code, checked for a sign-in or a step-up. Every way of failing (wrong,
// replayed, malformed, missing) counts against the account's lockout; while the account is
// locked the code is not even looked at, so a right code and a wrong one get the same answer.
import type { Keyring } from '../core/keyring.ts'
import { normaliseRecoveryCode, recoveryDigest, UNMATCHABLE_CODE } from '../core/recovery.ts'
import { findClockDrift, parseTotpInput, verifyTotp, type TotpParams } from '../core/totp.ts'
import type { AccountRow, AccountsStore } from '../db/accounts-store.ts'
import type { ChallengesStore, CountedAttempt } from '../db/challenges-store.ts'
import type { RecoveryStore } from '../db/recovery-store.ts'
import type { Audit } from './audit.ts'
import type { AuditContext } from './context.ts'
import { isEnrolled } from './sign-in.ts'
import type { Sessions } from './sessions.ts'

export type Purpose = 'sign-in' | 'step-up'

export type FailureReason = 'invalid_code' | 'invalid_input' | 'replayed' | 'wrong_password'

export type VerifyOutcome =
  /** `enrolmentId`: the enrolment whose code (or recovery code) was just proven. */
  | { ok: true, method: 'totp' | 'recovery', recoveryCodesLeft: number | null, enrolmentId: string | null }
  | { ok: false, reason: FailureReason, driftMinutes: number | null }
  | { ok: false, reason: 'locked', lockedUntil: Date }

export interface CodeInput {
  code?: unknown
  recoveryCode?: unknown
}

export interface ChallengeDeps {
  keyring: Keyring
  accounts: AccountsStore
  recovery: RecoveryStore
  challenges: ChallengesStore
  audit: Audit
  sessions: Sessions
  totp: TotpParams
  clock: () => number
}

/** The code parameters an account's secret was made with (older secrets: the options). */
export function paramsOf (account: AccountRow, defaults: TotpParams): TotpParams {
  return {
    algorithm: (account.algorithm as TotpParams['algorithm'] | null) ?? defaults.algorithm,
    digits: account.digits ?? defaults.digits,
    period: account.period ?? defaults.period,
    window: defaults.window
  }
}

export class Challenge {
  constructor (private readonly deps: ChallengeDeps) {}

  /**
   * Counts one attempt at the code prompt `challengeId`: how many it has had, and the account
   * as it was read with the count (for `verify`, which then need not read it again).
   */
  async countAttempt (challengeId: string, userId: string, expiresAt: number): Promise<CountedAttempt> {
    return await this.deps.challenges.countAttempt(challengeId, userId, new Date(expiresAt))
  }

  async attemptsUsed (challengeId: string): Promise<number> {
    return await this.deps.challenges.attempts(challengeId)
  }

  /** When the account's lockout ends; null when it is not locked now. */
  async lockedUntil (userId: string): Promise<Date | null> {
    const account = await this.deps.accounts.find(userId)
    const until = account?.lockedUntil ?? null
    return until !== null && until.getTime() > this.deps.clock() ? until : null
  }

  /** The account as this request already read it (with the attempt's count), else read now. */
  private async accountOf (userId: string, read: { account: AccountRow | undefined } | undefined): Promise<AccountRow | undefined> {
    return read !== undefined ? read.account : await this.deps.accounts.find(userId)
  }

  /** The digits the account's codes have (the prompt says how many to type); `read` as for `verify`. */
  async digitsFor (userId: string, read?: { account: AccountRow | undefined }): Promise<number> {
    const account = await this.accountOf(userId, read)
    return account === undefined ? this.deps.totp.digits : paramsOf(account, this.deps.totp).digits
  }

  /** `read`: the account as this request already read it (with the attempt's count); else it is read here. */
  async verify (userId: string, input: CodeInput, context: AuditContext & { sessionId: string }, purpose: Purpose, read?: { account: AccountRow | undefined }): Promise<VerifyOutcome> {
    const now = new Date(this.deps.clock())
    const account = await this.accountOf(userId, read)
    if (!isEnrolled(account)) return await this.fail(userId, 'invalid_code', null, context)
    if (account.lockedUntil !== null && account.lockedUntil > now) return { ok: false, reason: 'locked', lockedUntil: account.lockedUntil }
    if (input.recoveryCode !== undefined && input.code === undefined) return await this.verifyRecoveryCode(userId, account.enrolmentId, input.recoveryCode, context, purpose)

    const params = paramsOf(account, this.deps.totp)
    const code = parseTotpInput(input.code, params.digits)
    if (code === null) return await this.fail(userId, 'invalid_input', null, context)
    const secret = this.deps.keyring.open(account.secret, userId)
    const match = verifyTotp(secret, code, now.getTime(), params)
    if (match !== null) {
      const type = purpose === 'sign-in' ? 'challenge.succeeded' : 'stepup.succeeded'
      const stored = await this.deps.accounts.useStep(userId, match.step, this.deps.audit.row(type, { userId, details: { method: 'totp' }, context }))
      if (stored !== null) {
        await this.deps.audit.publish([stored])
        return { ok: true, method: 'totp', recoveryCodesLeft: null, enrolmentId: account.enrolmentId }
      }
      // Right code, step already used (or the account locked in between).
      return await this.fail(userId, 'replayed', null, context)
    }
    const drift = findClockDrift(secret, code, now.getTime(), params, { direction: 'past' })
    return await this.fail(userId, 'invalid_code', drift, context)
  }

  private async verifyRecoveryCode (userId: string, enrolmentId: string | null, raw: unknown, context: AuditContext & { sessionId: string }, purpose: Purpose): Promise<VerifyOutcome> {
    const now = new Date(this.deps.clock())
    // Malformed input still costs one digest per key and one query: same answer, same time.
    const normalised = normaliseRecoveryCode(raw) ?? UNMATCHABLE_CODE
    const digests = this.deps.keyring.recoveryPeppers().map(({ pepper }) => recoveryDigest(pepper, userId, normalised))
    const { audit } = this.deps
    const used = audit.row('recovery.used', { userId, context })
    const succeeded = audit.row(purpose === 'sign-in' ? 'challenge.succeeded' : 'stepup.succeeded', { userId, details: { method: 'recovery' }, context })
    // The code, the cleared counter and both events are one statement: all of them or none.
    const stored = await this.deps.recovery.consume(userId, digests, now, { context: used, used, succeeded })
    if (stored === null) return await this.fail(userId, 'invalid_code', null, context)
    await audit.publish(stored)
    const left = Number(stored[0]!.details.remaining)
    return { ok: true, method: 'recovery', recoveryCodesLeft: left, enrolmentId }
  }

  /** Counts a failure against the account; the one that starts a lockout also ends the account's other sessions. */
  async fail (userId: string, reason: FailureReason, driftMinutes: number | null, context: AuditContext & { sessionId: string }): Promise<VerifyOutcome> {
    const now = new Date(this.deps.clock())
    const { outcome, event } = await this.deps.accounts.recordFailure(userId, now, this.deps.audit.row('challenge.failed', { userId, details: { reason }, context }))
    await this.deps.audit.publish([event])
    if (outcome.lockStarted && outcome.lockedUntil !== null) {
      await this.deps.audit.record('lockout.started', { userId, details: { until: outcome.lockedUntil.toISOString() }, context })
      // Someone with the password is guessing codes: no other session (signed-in or at a
      // prompt) outlasts the lock unnoticed.
      await this.deps.sessions.endOthers(userId, context.sessionId, context, 'lockout')
      return { ok: false, reason: 'locked', lockedUntil: outcome.lockedUntil }
    }
    if (outcome.lockedUntil !== null && outcome.lockedUntil > now) return { ok: false, reason: 'locked', lockedUntil: outcome.lockedUntil }
    return { ok: false, reason, driftMinutes }
  }
}
