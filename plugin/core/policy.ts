// Who must use 2FA, as a pure function of the user, their roles, the admin's
// settings and the time. The sign-in flow, the settings page and the admin list all ask here,
// so they can never disagree about a user.

export interface PolicySettings {
  /** "Require for everyone". */
  requireAll: boolean
  /** When "require for everyone" was switched on (the grace period starts then, at the earliest). */
  requireAllSince: string | null
  /** Days of grace, during which users may skip enrolment. */
  graceDays: number
  /** Roles whose members must use 2FA. */
  requiredRoles: string[]
  /** Roles exempt from "require for everyone". */
  exemptRoles: string[]
  /** Whether per-user and per-role requirements may be skipped for now. */
  allowSkip: boolean
}

export const DEFAULT_POLICY: PolicySettings = {
  requireAll: false,
  requireAllSince: null,
  graceDays: 7,
  requiredRoles: [],
  exemptRoles: [],
  allowSkip: true
}

export type RequirementRule =
  | { kind: 'user' }
  | { kind: 'admin' }
  | { kind: 'role', role: string }
  | { kind: 'everyone', graceEndsAt: Date }

export interface PolicySubject {
  /** The account's admin flag: true/false when decided, null when never set. */
  requiredFlag: boolean | null
  isAdmin: boolean
  roles: readonly string[]
  createdAt: Date | null
}

export interface Requirement {
  required: boolean
  rules: RequirementRule[]
  /** Whether "Skip for now" may be offered (only meaningful while not enrolled). */
  canSkip: boolean
  /** Whole days of grace left (rounded up) when the only reason is "everyone" in grace. */
  graceDaysLeft: number | null
}

const DAY_MS = 24 * 60 * 60 * 1000

export function evaluatePolicy (subject: PolicySubject, settings: PolicySettings, now: Date): Requirement {
  const rules: RequirementRule[] = []

  // An explicit flag wins over the admin default; null means nobody has decided yet.
  if (subject.requiredFlag === true) rules.push({ kind: 'user' })
  else if (subject.requiredFlag === null && subject.isAdmin) rules.push({ kind: 'admin' })

  for (const role of subject.roles) {
    if (settings.requiredRoles.includes(role)) rules.push({ kind: 'role', role })
  }

  const exempt = subject.roles.some((role) => settings.exemptRoles.includes(role))
  if (settings.requireAll && !exempt) {
    const since = settings.requireAllSince === null ? now : new Date(settings.requireAllSince)
    const start = subject.createdAt !== null && subject.createdAt > since ? subject.createdAt : since
    rules.push({ kind: 'everyone', graceEndsAt: new Date(start.getTime() + settings.graceDays * DAY_MS) })
  }

  // Skipping is allowed only if every rule that applies allows it.
  let graceDaysLeft: number | null = null
  const canSkip = rules.length > 0 && rules.every((rule) => {
    if (rule.kind !== 'everyone') return settings.allowSkip
    const left = rule.graceEndsAt.getTime() - now.getTime()
    if (left <= 0) return false
    graceDaysLeft = Math.ceil(left / DAY_MS)
    return true
  })

  return { required: rules.length > 0, rules, canSkip, graceDaysLeft: canSkip ? graceDaysLeft : null }
}

/** The rule in words, for the settings page and the admin list ("required: role admin"). */
export function describeRequirement (requirement: Requirement, now: Date): string {
  if (!requirement.required) return 'not required'
  return requirement.rules.map((rule) => {
    switch (rule.kind) {
      case 'user': return 'required for this account by an admin'
      case 'admin': return 'required: admin account'
      case 'role': return `required: role ${rule.role}`
      case 'everyone': {
        const left = Math.ceil((rule.graceEndsAt.getTime() - now.getTime()) / DAY_MS)
        return left > 0 ? `required: everyone, ${left} day${left === 1 ? '' : 's'} left` : 'required: everyone'
      }
      default: return 'required'
    }
  }).join('; ')
}

/** Accepts stored or submitted settings, keeping defaults for anything missing or malformed. */
export function normalisePolicy (value: unknown, fallback: PolicySettings = DEFAULT_POLICY): PolicySettings {
  const v = (value !== null && typeof value === 'object' ? value : {}) as Partial<Record<keyof PolicySettings, unknown>>
  const roles = (list: unknown, dflt: string[]) =>
    Array.isArray(list) && list.every((r) => typeof r === 'string') ? [...new Set(list as string[])] : dflt
  return {
    requireAll: typeof v.requireAll === 'boolean' ? v.requireAll : fallback.requireAll,
    requireAllSince: typeof v.requireAllSince === 'string' || v.requireAllSince === null ? v.requireAllSince : fallback.requireAllSince,
    graceDays: typeof v.graceDays === 'number' && Number.isInteger(v.graceDays) && v.graceDays >= 0 && v.graceDays <= 365 ? v.graceDays : fallback.graceDays,
    requiredRoles: roles(v.requiredRoles, fallback.requiredRoles),
    exemptRoles: roles(v.exemptRoles, fallback.exemptRoles),
    allowSkip: typeof v.allowSkip === 'boolean' ? v.allowSkip : fallback.allowSkip
  }
}
