// Who must use 2FA, for the sign-in, the settings page, the admin list and the CLI alike: the
// one place that turns a user, the plugin's row for them and the stored policy into a
// requirement, so no two screens can disagree about a user.
import { DEFAULT_POLICY, evaluatePolicy, normalisePolicy, type PolicySettings, type Requirement } from '../core/policy.ts'
import type { SettingsStore } from '../db/settings-store.ts'
import type { UserProfile } from './profiles.ts'

export const POLICY_KEY = 'policy'

/** What the plugin's own row adds to a user's requirement. */
export interface RequirementFacts {
  /** The admin flag as stored: null when nobody decided (the admin default may apply). */
  required: boolean | null
  /** When the plugin first saw the user: stands in for the host's creation date. */
  createdAt: Date | null
  /** An admin's break-glass exemption, until then. */
  exemptUntil?: Date | null
}

export class Policy {
  constructor (
    private readonly settings: SettingsStore,
    private readonly defaults: { allowSkip: boolean }
  ) {}

  /** The stored policy, read as it is now (every sign-in reads it: no cache to go stale across instances). */
  async current (): Promise<PolicySettings> {
    return this.parse(await this.settings.get(POLICY_KEY))
  }

  /** A stored (or submitted) value, with the defaults for anything missing or malformed. */
  parse (stored: unknown): PolicySettings {
    return normalisePolicy(stored, { ...DEFAULT_POLICY, allowSkip: this.defaults.allowSkip })
  }

  requirement (profile: UserProfile, facts: RequirementFacts | undefined, settings: PolicySettings, now: Date): Requirement {
    return evaluatePolicy({
      requiredFlag: facts?.required ?? null,
      isAdmin: profile.isAdmin,
      roles: profile.roles,
      createdAt: profile.createdAt ?? facts?.createdAt ?? null,
      exemptUntil: facts?.exemptUntil ?? null
    }, settings, now)
  }
}
