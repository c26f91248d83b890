// How the CLI words an account: its status as the plugin's own row decides it, the note that roles
// and "require for everyone" are the app's to decide, and the answer for an id it has never seen.
import type { AccountFacts, UserStatus } from '../db/admin-store.ts'
import type { PolicySettings } from '../core/policy.ts'
import { CliFailure } from './errors.ts'
import { terminalText } from './terminal-text.ts'

export const STATUS_TEXT: Record<UserStatus, string> = {
  enrolled: 'enrolled',
  awaiting: 'awaiting setup',
  'not-required': 'not required',
  locked: 'locked'
}

/** The status as the plugin's own row decides it (roles and "everyone" need the app). */
export function statusOfFacts (facts: AccountFacts, now: Date): UserStatus {
  if (facts.lockedUntil !== null && facts.lockedUntil > now) return 'locked'
  if (facts.enrolled) return 'enrolled'
  return facts.required === true ? 'awaiting' : 'not-required'
}

export function policyNote (policy: PolicySettings): string | null {
  const rules: string[] = []
  const roles = (names: readonly string[]) => names.map(terminalText).join(', ')
  if (policy.requireAll) rules.push('"require for everyone"' + (policy.exemptRoles.length > 0 ? ` (exempt: ${roles(policy.exemptRoles)})` : ''))
  if (policy.requiredRoles.length > 0) rules.push(`roles ${roles(policy.requiredRoles)}`)
  if (rules.length === 0) return null
  return `Note: the policy also requires 2FA by ${rules.join(' and ')}; that depends on the app's user data, so the admin panel shows it, not this list.`
}

export function unknownUser (userId: string): CliFailure {
  return new CliFailure(`The two-factor tables have no record of user "${userId}". Give the user id as the app stores it (or, with a two-factor.config.ts whose adapter has findByLogin, a login name); "two-factor list" shows the ids it knows.`)
}
