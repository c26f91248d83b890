// What a sign-in step needs to know about the account right now, read fresh at every step:
// the state machine (core/sign-in.ts) decides on this, never on what a session remembers.
import type { AccountNow } from '../core/sign-in.ts'
import type { Requirement } from '../core/policy.ts'
import type { AccountRow, AccountsStore } from '../db/accounts-store.ts'
import type { Audit } from './audit.ts'
import type { AuditContext } from './context.ts'
import type { Policy } from './policy.ts'
import type { Profiles, UserProfile } from './profiles.ts'

export interface AccountReading {
  profile: UserProfile
  account: AccountRow
  requirement: Requirement
  now: AccountNow
}

export function isEnrolled (account: AccountRow | undefined): account is AccountRow & { secret: string, enabledAt: Date } {
  return account !== undefined && account.secret !== null && account.enabledAt !== null
}

export class SignIn {
  constructor (private readonly deps: {
    profiles: Profiles
    accounts: AccountsStore
    policy: Policy
    audit: Audit
    clock: () => number
  }) {}

  /** The account as a transition needs it. New admins are required by default: applied here, at their first sign-in, if nobody decided. */
  async read (userId: string): Promise<AccountReading> {
    const { profiles, accounts, policy } = this.deps
    const profile = await profiles.require(userId)
    let account = await accounts.ensure(userId)
    const now = new Date(this.deps.clock())
    if (account.required === null && profile.isAdmin) {
      await accounts.applyDefaultRequired(userId, now)
      account = { ...account, required: true }
    }
    const requirement = policy.requirement(profile, account, await policy.current(), now)
    return {
      profile,
      account,
      requirement,
      now: {
        enrolled: isEnrolled(account),
        enrolmentId: isEnrolled(account) ? account.enrolmentId : null,
        required: requirement.required,
        canSkip: requirement.canSkip
      }
    }
  }

  async wizardShown (userId: string, context: AuditContext): Promise<void> {
    await this.deps.audit.record('wizard.shown', { userId, context })
  }

  async skipped (userId: string, requirement: Requirement, context: AuditContext): Promise<void> {
    await this.deps.audit.record('wizard.skipped', { userId, details: { graceDaysLeft: requirement.graceDaysLeft }, context })
  }
}
