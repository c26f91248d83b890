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
  /** Break-glass: an admin exempted the account from every rule until then. */
  exemptUntil?: Date | null
}

export interface Requirement {
  required: boolean
  rules: RequirementRule[]
  /** Set while an exemption lifts every rule (then nothing is required). */
  exemptUntil: Date | null
  /** Whether "Skip for now" may be offered (only meaningful while not enrolled). */
  canSkip: boolean
  /** Whole days of grace left (rounded up) when the only reason is "everyone" in grace. */
  graceDaysLeft: number | null
}

const DAY_MS = 24 * 60 * 60 * 1000

export function evaluatePolicy (subject: PolicySubject, settings: PolicySettings, now: Date): Requirement {
  // An exemption, while it lasts, lifts every rule; it ends by itself.
  if (subject.exemptUntil != null && subject.exemptUntil > now) {
    return { required: false, rules: [], exemptUntil: subject.exemptUntil, canSkip: false, graceDaysLeft: null }
  }
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

  return { required: rules.length > 0, rules, exemptUntil: null, canSkip, graceDaysLeft: canSkip ? graceDaysLeft : null }
}

/** One reason in a requirement, as a message names it: `requirement.<name>` with its params. */
export interface RequirementPart {
  name: 'user' | 'admin' | 'role' | 'everyone' | 'everyone_left_one' | 'everyone_left_other' | 'not_required' | 'exempt'
  params: Record<string, string | number>
}

/** The reasons of a requirement, for the settings page and the admin list to put in words. */
export function requirementParts (requirement: Requirement, now: Date): RequirementPart[] {
  if (requirement.exemptUntil !== null) return [{ name: 'exempt', params: { until: requirement.exemptUntil.toISOString().slice(0, 16).replace('T', ' ') + ' UTC' } }]
  if (!requirement.required) return [{ name: 'not_required', params: {} }]
  return requirement.rules.map((rule): RequirementPart => {
    switch (rule.kind) {
      case 'user': return { name: 'user', params: {} }
      case 'admin': return { name: 'admin', params: {} }
      case 'role': return { name: 'role', params: { role: rule.role } }
      case 'everyone': {
        const left = Math.ceil((rule.graceEndsAt.getTime() - now.getTime()) / DAY_MS)
        return left > 0 ? { name: left === 1 ? 'everyone_left_one' : 'everyone_left_other', params: { days: left } } : { name: 'everyone', params: {} }
      }
    }
  })
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

/** When the grace of "required for everyone" ends, if that is what lets the user skip now; else null. */
export function graceEndOf (requirement: Requirement): number | null {
  if (!requirement.canSkip) return null
  const everyone = requirement.rules.find((rule) => rule.kind === 'everyone')
  return everyone === undefined ? null : everyone.graceEndsAt.getTime()
}
