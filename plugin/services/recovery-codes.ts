// Recovery codes: ten at a time, shown once, stored as digests under the current key's pepper.
import type { Keyring } from '../core/keyring.ts'
import { generateRecoveryCodes, normaliseRecoveryCode, recoveryDigest } from '../core/recovery.ts'
import type { RecoveryStore, StoredDigest } from '../db/recovery-store.ts'
import type { UnitOfWork } from '../db/unit-of-work.ts'
import type { Audit } from './audit.ts'
import type { AuditContext } from './context.ts'

export class RecoveryCodes {
  constructor (private readonly deps: {
    keyring: Keyring
    recovery: RecoveryStore
    unitOfWork: UnitOfWork
    audit: Audit
    clock: () => number
  }) {}

  /** A fresh ten and their digests (stored by the caller's transaction). */
  issue (userId: string): { codes: string[], digests: StoredDigest[] } {
    const codes = generateRecoveryCodes()
    const [current] = this.deps.keyring.recoveryPeppers()
    const digests = codes.map((code) => ({ digest: recoveryDigest(current!.pepper, userId, normaliseRecoveryCode(code)!), keyId: current!.keyId }))
    return { codes, digests }
  }

  /** A fresh ten; the old set stops working in the same transaction as the event that says so. */
  async regenerate (userId: string, context: AuditContext): Promise<string[]> {
    const { codes, digests } = this.issue(userId)
    const { events } = await this.deps.unitOfWork.run(async (work) => {
      await this.deps.recovery.replace(work.tx, userId, digests, new Date(this.deps.clock()))
      await this.deps.audit.recordIn(work, 'recovery.regenerated', { userId, context })
    })
    await this.deps.audit.publish(events)
    return codes
  }

  async remaining (userId: string): Promise<number> {
    return await this.deps.recovery.remaining(userId)
  }
}
