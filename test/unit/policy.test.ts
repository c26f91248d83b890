// as a table: every combination of the rule that names the user × enrolled × where we
// are in the "require for everyone" grace period × exempt role × allowSkip, checked against the
// spec's words, which are written out plainly below rather than copied from the implementation.
import t from 'tap'
import {
  DEFAULT_POLICY,
  evaluatePolicy,
  requirementParts,
  normalisePolicy,
  type PolicySettings,
  type PolicySubject,
  type Requirement
} from '../../plugin/core/policy.ts'
import { transition, type AccountNow } from '../../plugin/core/sign-in.ts'
import { describeRequirement as describeParts, englishMessages } from '../../plugin/views/messages.ts'

const describeRequirement = (requirement: Requirement, now: Date): string => describeParts(englishMessages(), requirementParts(requirement, now))

const LIFETIMES = { pendingMs: 300_000, setupMs: 900_000 }

/** Where the sign-in state machine takes a password sign-in of an account with this requirement. */
function signInStep (requirement: Requirement, enrolled: boolean): string | undefined {
  const account: AccountNow = { enrolled, enrolmentId: enrolled ? 'e1' : null, required: requirement.required, canSkip: requirement.canSkip }
  return transition(null, { type: 'password', userId: 'u', now: NOW.getTime(), challengeId: 'c', lifetimes: LIFETIMES }, account).next?.state
}

/** Whether "Skip for now" signs the forced wizard in. */
function skipOffered (requirement: Requirement, enrolled: boolean): boolean {
  const account: AccountNow = { enrolled, enrolmentId: enrolled ? 'e1' : null, required: requirement.required, canSkip: requirement.canSkip }
  const wizard = { state: 'pending-setup' as const, userId: 'u', expiresAt: NOW.getTime() + 1000 }
  return requirement.required && transition(wizard, { type: 'skip', now: NOW.getTime(), challengeId: 'c', lifetimes: LIFETIMES }, account).ok
}

const DAY = 24 * 60 * 60 * 1000
const NOW = new Date(Date.UTC(2026, 10, 22, 12, 0, 0))
const GRACE_DAYS = 7

/** The rule (other than "everyone") that may apply to the user. */
const RULES = {
  none: { requiredFlag: null, isAdmin: false, roles: ['staff'] },
  'user flag': { requiredFlag: true, isAdmin: false, roles: ['staff'] },
  'admin default': { requiredFlag: null, isAdmin: true, roles: ['staff'] },
  role: { requiredFlag: null, isAdmin: false, roles: ['finance'] },
  // An admin whose requirement an admin turned off: the admin default no longer applies.
  'admin, lifted': { requiredFlag: false, isAdmin: true, roles: ['staff'] }
} satisfies Record<string, Omit<PolicySubject, 'createdAt'>>

/** "Require for everyone": not switched on yet, switched on 3 days ago, switched on 10 days ago. */
const GRACE = {
  before: { requireAll: false, requireAllSince: null },
  during: { requireAll: true, requireAllSince: new Date(NOW.getTime() - 3 * DAY).toISOString() },
  after: { requireAll: true, requireAllSince: new Date(NOW.getTime() - 10 * DAY).toISOString() }
} as const

type RuleName = keyof typeof RULES
type GraceName = keyof typeof GRACE

function expected (rule: RuleName, grace: GraceName, exempt: boolean, enrolled: boolean, allowSkip: boolean) {
  const otherRule = rule === 'user flag' || rule === 'admin default' || rule === 'role'
  const everyone = grace !== 'before' && !exempt
  const required = otherRule || everyone
  // Per-user and per-role requirements may be skipped when allowSkip says so; "everyone" only
  // during its grace period; when several rules apply, each must allow it.
  const canSkip = required && (!otherRule || allowSkip) && (!everyone || grace === 'during')
  return {
    required,
    canSkip,
    graceDaysLeft: canSkip && everyone ? GRACE_DAYS - 3 : null,
    step: enrolled ? 'pending' : required ? 'pending-setup' : 'signed-in',
    skipOffered: !enrolled && canSkip,
    words: [
      ...(rule === 'user flag' ? ['required for this account by an admin'] : []),
      ...(rule === 'admin default' ? ['required: admin account'] : []),
      ...(rule === 'role' ? ['required: role finance'] : []),
      ...(everyone ? [grace === 'during' ? 'required: everyone, 4 days left' : 'required: everyone'] : [])
    ].join('; ') || 'not required'
  }
}

t.test('every combination of rule × enrolled × grace × exempt × allowSkip', async (t) => {
  let cases = 0
  for (const rule of Object.keys(RULES) as RuleName[]) {
    for (const grace of Object.keys(GRACE) as GraceName[]) {
      for (const exempt of [false, true]) {
        for (const enrolled of [false, true]) {
          for (const allowSkip of [true, false]) {
            const subject: PolicySubject = {
              ...RULES[rule],
              roles: exempt ? [...RULES[rule].roles, 'contractor'] : RULES[rule].roles,
              createdAt: new Date(NOW.getTime() - 365 * DAY)
            }
            const settings: PolicySettings = {
              ...DEFAULT_POLICY,
              ...GRACE[grace],
              graceDays: GRACE_DAYS,
              requiredRoles: ['finance'],
              exemptRoles: ['contractor'],
              allowSkip
            }
            const requirement = evaluatePolicy(subject, settings, NOW)
            const want = expected(rule, grace, exempt, enrolled, allowSkip)
            const name = `${rule}, grace ${grace}, ${exempt ? 'exempt' : 'not exempt'}, ${enrolled ? 'enrolled' : 'not enrolled'}, allowSkip ${allowSkip}`
            t.same({
              required: requirement.required,
              canSkip: requirement.canSkip,
              graceDaysLeft: requirement.graceDaysLeft,
              step: signInStep(requirement, enrolled),
              skipOffered: skipOffered(requirement, enrolled),
              words: describeRequirement(requirement, NOW)
            }, want, name)
            cases++
          }
        }
      }
    }
  }
  t.equal(cases, 5 * 3 * 2 * 2 * 2, 'all 120 combinations checked')
})

t.test('grace counts from the later of the switch-on and the user’s creation', async (t) => {
  const settings: PolicySettings = { ...DEFAULT_POLICY, requireAll: true, requireAllSince: new Date(NOW.getTime() - 30 * DAY).toISOString(), graceDays: 7 }
  const newcomer = evaluatePolicy({ requiredFlag: null, isAdmin: false, roles: [], createdAt: new Date(NOW.getTime() - 2 * DAY) }, settings, NOW)
  t.equal(newcomer.canSkip, true, 'a user created 2 days ago still has grace')
  t.equal(newcomer.graceDaysLeft, 5)
  const oldTimer = evaluatePolicy({ requiredFlag: null, isAdmin: false, roles: [], createdAt: new Date(NOW.getTime() - 60 * DAY) }, settings, NOW)
  t.equal(oldTimer.canSkip, false, 'grace ended 23 days after the switch-on for an old account')
  const unknownAge = evaluatePolicy({ requiredFlag: null, isAdmin: false, roles: [], createdAt: null }, settings, NOW)
  t.equal(unknownAge.canSkip, false, 'without a creation date the switch-on decides')
})

t.test('days left round up, and the last instant of grace is the end of it', async (t) => {
  const since = (msAgo: number): PolicySettings => ({ ...DEFAULT_POLICY, requireAll: true, requireAllSince: new Date(NOW.getTime() - msAgo).toISOString(), graceDays: 7 })
  const subject: PolicySubject = { requiredFlag: null, isAdmin: false, roles: [], createdAt: null }
  t.equal(evaluatePolicy(subject, since(6.5 * DAY), NOW).graceDaysLeft, 1, 'half a day left reads "1 day left"')
  t.equal(describeRequirement(evaluatePolicy(subject, since(6.5 * DAY), NOW), NOW), 'required: everyone, 1 day left')
  t.equal(evaluatePolicy(subject, since(7 * DAY), NOW).canSkip, false, 'no skip at the exact end of grace')
  t.equal(evaluatePolicy(subject, since(7 * DAY - 1), NOW).canSkip, true, 'skip one millisecond before it')
  const zeroGrace = { ...since(0), graceDays: 0 }
  t.equal(evaluatePolicy(subject, zeroGrace, NOW).canSkip, false, 'a grace of 0 days means no skip from the start')
})

t.test('several rules: the requirement is their OR, and every one is named', async (t) => {
  const settings: PolicySettings = { ...DEFAULT_POLICY, requiredRoles: ['finance', 'ops'] }
  const r = evaluatePolicy({ requiredFlag: true, isAdmin: true, roles: ['finance', 'ops'], createdAt: null }, settings, NOW)
  t.same(r.rules.map((rule) => rule.kind), ['user', 'role', 'role'], 'an explicit flag replaces the admin default')
  t.equal(describeRequirement(r, NOW), 'required for this account by an admin; required: role finance; required: role ops')
})

t.test('normalisePolicy keeps defaults for anything malformed', async (t) => {
  t.same(normalisePolicy(null), DEFAULT_POLICY)
  t.same(normalisePolicy('junk'), DEFAULT_POLICY)
  const odd = normalisePolicy({ requireAll: 'yes', graceDays: -1, requiredRoles: ['a', 1], exemptRoles: ['x', 'x'], allowSkip: 0 })
  t.same(odd, { ...DEFAULT_POLICY, exemptRoles: ['x'] }, 'wrong types fall back; duplicate roles collapse')
  t.equal(normalisePolicy({ graceDays: 366 }).graceDays, DEFAULT_POLICY.graceDays, 'grace longer than a year is refused')
  t.equal(normalisePolicy({ graceDays: 2.5 }).graceDays, DEFAULT_POLICY.graceDays, 'whole days only')
  const fallback = { ...DEFAULT_POLICY, allowSkip: false }
  t.equal(normalisePolicy({}, fallback).allowSkip, false, 'missing fields keep the fallback')
})
