// Self-service changes: turning 2FA off and new recovery codes, both behind the account
// password, so a session left open on a shared computer can't quietly weaken the account.
import type { AccountsStore } from '../db/accounts-store.ts'
import type { UnitOfWork } from '../db/unit-of-work.ts'
import type { Audit } from './audit.ts'
import type { AuditContext } from './context.ts'
import type { ReauthInput, ReauthRefusal, Reauthentication } from './reauthentication.ts'
import type { RecoveryCodes } from './recovery-codes.ts'
import type { Sessions } from './sessions.ts'
import type { Status, TwoFactorStatus } from './status.ts'

export type SettingsRefusal = { reason: 'not_allowed_by_policy' | 'not_enrolled' } | ReauthRefusal

export type SettingsOutcome<T> = { ok: true, value: T, status: TwoFactorStatus } | { ok: false, refusal: SettingsRefusal, status: TwoFactorStatus }

export class Settings {
  constructor (private readonly deps: {
    reauthentication: Reauthentication
    accounts: AccountsStore
    status: Status
    recoveryCodes: RecoveryCodes
    sessions: Sessions
    unitOfWork: UnitOfWork
    audit: Audit
    clock: () => number
  }) {}

  /** Turns 2FA off: refused while the policy requires it; ends the account's other sessions. */
  async disable (userId: string, proof: ReauthInput, context: AuditContext & { sessionId: string }): Promise<SettingsOutcome<null>> {
    const status = await this.deps.status.of(userId)
    if (status.required) return { ok: false, refusal: { reason: 'not_allowed_by_policy' }, status }
    const refused = await this.deps.reauthentication.check(userId, proof, context, false)
    if (refused !== null) return { ok: false, refusal: refused, status }
    const { events } = await this.deps.unitOfWork.run(async (work) => {
      const { browsersForgotten } = await this.deps.accounts.clearEnrolment(work.tx, userId, new Date(this.deps.clock()))
      await this.deps.audit.recordIn(work, 'disabled', { userId, context })
      await this.deps.audit.recordTrustEnded(work, userId, browsersForgotten, 'disabled', context)
    })
    await this.deps.audit.publish(events)
    await this.deps.sessions.endOthers(userId, context.sessionId, context, 'disabled')
    return { ok: true, value: null, status: await this.deps.status.of(userId) }
  }

  async regenerateRecoveryCodes (userId: string, proof: ReauthInput, context: AuditContext & { sessionId: string }): Promise<SettingsOutcome<string[]>> {
    const status = await this.deps.status.of(userId)
    if (!status.enabled) return { ok: false, refusal: { reason: 'not_enrolled' }, status }
    const refused = await this.deps.reauthentication.check(userId, proof, context, false)
    if (refused !== null) return { ok: false, refusal: refused, status }
    const codes = await this.deps.recoveryCodes.regenerate(userId, context)
    return { ok: true, value: codes, status: await this.deps.status.of(userId) }
  }
}
