// A user's two-factor status, as the settings page, the admin API and the CLI report it.
import { requirementParts, type RequirementPart } from '../core/policy.ts'
import { describeRequirement, englishMessages } from '../views/messages.ts'
import type { AccountsStore } from '../db/accounts-store.ts'
import type { RecoveryStore } from '../db/recovery-store.ts'
import type { Policy } from './policy.ts'
import type { Profiles } from './profiles.ts'
import { isEnrolled } from './sign-in.ts'

export interface TwoFactorStatus {
  userId: string
  enabled: boolean
  enabledAt: Date | null
  recoveryCodesLeft: number
  required: boolean
  /** The rule in words, in English ("required: role admin"), or "not required". */
  requiredBy: string
  /** The same, for a page to put in its own language. */
  requiredByParts: RequirementPart[]
  /** An admin's exemption from every rule, while it lasts. */
  exemptUntil: Date | null
  exemptReason: string | null
  canSkip: boolean
  graceDaysLeft: number | null
  lockedUntil: Date | null
}

export class Status {
  constructor (private readonly deps: { profiles: Profiles, accounts: AccountsStore, recovery: RecoveryStore, policy: Policy, clock: () => number }) {}

  async of (userId: string): Promise<TwoFactorStatus> {
    const profile = await this.deps.profiles.require(userId)
    const [account, settings, recoveryCodesLeft] = await Promise.all([
      this.deps.accounts.find(userId), this.deps.policy.current(), this.deps.recovery.remaining(userId)
    ])
    const now = new Date(this.deps.clock())
    const requirement = this.deps.policy.requirement(profile, account, settings, now)
    const lockedUntil = account?.lockedUntil ?? null
    return {
      userId,
      enabled: isEnrolled(account),
      enabledAt: isEnrolled(account) ? account.enabledAt : null,
      recoveryCodesLeft,
      required: requirement.required,
      requiredBy: describeRequirement(englishMessages(), requirementParts(requirement, now)),
      requiredByParts: requirementParts(requirement, now),
      exemptUntil: requirement.exemptUntil,
      exemptReason: requirement.exemptUntil === null ? null : account?.exemptReason ?? null,
      canSkip: requirement.canSkip,
      graceDaysLeft: requirement.graceDaysLeft,
      lockedUntil: lockedUntil !== null && lockedUntil > now ? lockedUntil : null
    }
  }
}
