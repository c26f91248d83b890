// The sign-in state machine (plugin/core/sign-in.ts), tested over its whole table: every
// representative session state × every event (and its variants) × every consistent reading of
// the account. The rule the machine exists for — a session becomes signed-in for an account only
// in five named ways — is written out below as a small reference of its own (`permittedWay`),
// not derived from the implementation, and every transition is checked against it, together with
// the rule's consequences: refusals never sign in, logout forgets, a setup whose account got
// enrolled elsewhere goes to the code prompt, a code prompt never holds a secret, `verifiedAt`
// comes only from a proven code, the user never changes, and the session id is renewed whenever
// a sign-in starts or completes. Violations are counted per category and each count must be 0;
// the assertion message names the first few counterexamples. The small helpers `current` and
// `isFresh` are checked over their own tables at the end.
import t, { type Test } from 'tap'
import { isDeepStrictEqual } from 'node:util'
import {
  current,
  isFresh,
  needsNewSessionId,
  transition,
  type AccountNow,
  type Lifetimes,
  type SignInEvent,
  type SignInState,
  type Transition
} from '../../plugin/core/sign-in.ts'

const NOW = 1_800_000_000_000
const LIFETIMES: Lifetimes = { pendingMs: 5 * 60_000, setupMs: 15 * 60_000 }
/** When the states below say a code was last proven, or a secret was confirmed. */
const VERIFIED_AT = NOW - 60 * 60_000
const CONFIRMED_AT = NOW - 30_000
/** The challenge id carried by the pending state below, and the fresh one events offer. */
const OLD_CHALLENGE = 'c-old'
const NEW_CHALLENGE = 'c-new'

// ── The table's three axes ─────────────────────────────────────────────────────────────────────

/** Deep-frozen, so a transition that mutated its input would throw instead of passing. */
function frozen<T> (value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) frozen(inner)
    Object.freeze(value)
  }
  return value
}

const STATES: Record<string, SignInState | null> = frozen({
  nobody: null,
  pending: { state: 'pending', userId: 'alice', expiresAt: NOW + 60_000, returnTo: '/reports', challengeId: OLD_CHALLENGE },
  'setup, no secret': { state: 'pending-setup', userId: 'alice', expiresAt: NOW + 60_000, returnTo: '/reports' },
  'setup, e1 unconfirmed': { state: 'pending-setup', userId: 'alice', expiresAt: NOW + 60_000, enrolment: { id: 'e1' } },
  'setup, e1 confirmed': { state: 'pending-setup', userId: 'alice', expiresAt: NOW + 60_000, returnTo: '/reports', enrolment: { id: 'e1', confirmedAt: CONFIRMED_AT } },
  'signed-in': { state: 'signed-in', userId: 'alice' },
  'signed-in, verified': { state: 'signed-in', userId: 'alice', verifiedAt: VERIFIED_AT },
  'signed-in, e1 unconfirmed': { state: 'signed-in', userId: 'alice', enrolment: { id: 'e1' } },
  'signed-in, e1 confirmed': { state: 'signed-in', userId: 'alice', enrolment: { id: 'e1', confirmedAt: CONFIRMED_AT } },
  'signed-in, verified, e1 confirmed': { state: 'signed-in', userId: 'alice', verifiedAt: VERIFIED_AT, enrolment: { id: 'e1', confirmedAt: CONFIRMED_AT } }
})

const EVENTS: Record<string, SignInEvent> = frozen({
  'password alice': { type: 'password', userId: 'alice', now: NOW, challengeId: NEW_CHALLENGE, lifetimes: LIFETIMES },
  'password alice, returnTo': { type: 'password', userId: 'alice', returnTo: '/billing', now: NOW, challengeId: NEW_CHALLENGE, lifetimes: LIFETIMES },
  'password bob': { type: 'password', userId: 'bob', now: NOW, challengeId: NEW_CHALLENGE, lifetimes: LIFETIMES },
  'factor-verified': { type: 'factor-verified', now: NOW },
  'attempt-failed': { type: 'attempt-failed', exhausted: false },
  'attempt-failed, exhausted': { type: 'attempt-failed', exhausted: true },
  skip: { type: 'skip', now: NOW, challengeId: NEW_CHALLENGE, lifetimes: LIFETIMES },
  'wizard-opened': { type: 'wizard-opened', now: NOW, challengeId: NEW_CHALLENGE, lifetimes: LIFETIMES },
  'wizard-opened e1': { type: 'wizard-opened', enrolmentId: 'e1', now: NOW, challengeId: NEW_CHALLENGE, lifetimes: LIFETIMES },
  'wizard-opened e2': { type: 'wizard-opened', enrolmentId: 'e2', now: NOW, challengeId: NEW_CHALLENGE, lifetimes: LIFETIMES },
  'enrolment-confirmed e1': { type: 'enrolment-confirmed', enrolmentId: 'e1', now: NOW },
  'enrolment-confirmed e2': { type: 'enrolment-confirmed', enrolmentId: 'e2', now: NOW },
  finish: { type: 'finish', now: NOW, challengeId: NEW_CHALLENGE, lifetimes: LIFETIMES },
  'trusted-device': { type: 'trusted-device', now: NOW },
  logout: { type: 'logout' }
})

/** Every consistent account: an active enrolment id only when enrolled (enrolled with none is kept too). */
function accounts (): Array<[string, AccountNow]> {
  const out: Array<[string, AccountNow]> = []
  const enrolments: Array<[boolean, string | null]> = [[false, null], [true, null], [true, 'e1'], [true, 'e2']]
  for (const [enrolled, enrolmentId] of enrolments) {
    for (const required of [false, true]) {
      for (const canSkip of [false, true]) {
        const name = `${enrolled ? `enrolled(${enrolmentId ?? '?'})` : 'not enrolled'}, ${required ? 'required' : 'optional'}, ${canSkip ? 'can skip' : 'no skip'}`
        out.push([name, frozen({ enrolled, enrolmentId, required, canSkip })])
      }
    }
  }
  return out
}
const ACCOUNTS = accounts()

// ── The rule, written out on its own ──────────────────────────────────────────────────────────

type Way = 'password' | 'code' | 'skip' | 'finish' | 'trusted-device'

/**
 * Which of the five ways, if any, lets this event sign this session in, judged on the account as
 * it is now. A code can only be "of that account" while the account is enrolled.
 */
function permittedWay (state: SignInState | null, event: SignInEvent, account: AccountNow): Way | null {
  switch (event.type) {
    case 'password':
      return !account.enrolled && !account.required ? 'password' : null
    case 'factor-verified':
      return state?.state === 'pending' && account.enrolled ? 'code' : null
    case 'skip':
      return state?.state === 'pending-setup' && !account.enrolled && (!account.required || account.canSkip) ? 'skip' : null
    case 'finish':
      return state?.state === 'pending-setup' &&
        state.enrolment?.confirmedAt !== undefined &&
        account.enrolled &&
        account.enrolmentId === state.enrolment.id
        ? 'finish'
        : null
    case 'trusted-device':
      return state?.state === 'pending' && account.enrolled ? 'trusted-device' : null
    default:
      return null
  }
}

/** Whether `next` is a sign-in that `before` did not already hold (a password always starts afresh). */
function newlySignedIn (before: SignInState | null, event: SignInEvent, next: SignInState | null): next is Extract<SignInState, { state: 'signed-in' }> {
  if (next?.state !== 'signed-in') return false
  if (event.type === 'password') return true
  return before?.state !== 'signed-in' || before.userId !== next.userId
}

/** Already signed in as that user before the event (so a signed-in result is nothing new). */
function wasSignedInAs (before: SignInState | null, userId: string): boolean {
  return before?.state === 'signed-in' && before.userId === userId
}

/** The pending secret a session holds (a code prompt holds none). */
function heldSecret (state: SignInState | null): { id: string, confirmedAt?: number } | undefined {
  return state === null || state.state === 'pending' ? undefined : state.enrolment
}

// ── Bookkeeping ───────────────────────────────────────────────────────────────────────────────

const SHOWN = 5

class Violations {
  private readonly found = new Map<string, string[]>()
  constructor (readonly categories: Record<string, string>) {
    for (const name of Object.keys(categories)) this.found.set(name, [])
  }

  add (category: string, where: string, detail: string): void {
    const list = this.found.get(category)
    if (list === undefined) throw new Error(`unknown category ${category}`)
    list.push(`${where}: ${detail}`)
  }

  assertNone (t: Test): void {
    for (const [name, list] of this.found) {
      const shown = list.slice(0, SHOWN).map((line) => `\n    ${line}`).join('')
      const more = list.length > SHOWN ? `\n    … and ${list.length - SHOWN} more` : ''
      t.equal(list.length, 0, `${this.categories[name]}${shown}${more}`)
    }
  }
}

const show = (value: unknown): string => JSON.stringify(value) ?? 'undefined'
const showResult = (result: Transition): string => `${result.ok ? 'ok' : `refused(${result.refusal})`} → ${show(result.next)}`

// ── The table ─────────────────────────────────────────────────────────────────────────────────

t.test('every state × event × account obeys the sign-in rule', async (t) => {
  const v = new Violations({
    unauthorised: 'no session becomes signed-in except in one of the five ways',
    missed: 'each of the five ways, when its conditions hold, signs the session in (as the right user)',
    shape: 'a new sign-in carries verifiedAt exactly as its way says (code: now; finish: the confirm time; password, skip, trusted browser: none)',
    refresh: 'a code verified in a signed-in session only refreshes verifiedAt (and a refused one changes nothing)',
    refusal: 'a refusal never leaves the session signed-in when it was not before',
    logout: 'logout always gives null',
    elsewhere: 'a setup whose account got enrolled elsewhere goes to the code prompt on skip, finish and wizard-opened',
    prompt: 'a code prompt never holds a secret: wizard-opened and enrolment-confirmed are refused for it',
    attempts: 'a failed attempt keeps the prompt, the last one ends it',
    verifiedAt: 'verifiedAt is only set by a verified code, a confirm of the session’s secret, or finish (the confirm time)',
    user: 'no event but password changes the user of a session',
    rotation: 'a new session id whenever a sign-in starts (pending, pending-setup) or completes (signed-in)',
    needless: 'no new session id when the state did not change'
  })

  let cases = 0
  for (const [stateName, state] of Object.entries(STATES)) {
    for (const [eventName, event] of Object.entries(EVENTS)) {
      for (const [accountName, account] of ACCOUNTS) {
        cases++
        const where = `[${stateName}] + ${eventName} / ${accountName}`
        const result = transition(state, event, account)
        const { next } = result
        const got = showResult(result)
        const way = permittedWay(state, event, account)
        const fresh = newlySignedIn(state, event, next)

        // Ways 1–5: only these sign a session in, and each of them does.
        if (fresh && way === null) v.add('unauthorised', where, got)
        if (way !== null) {
          const userId = event.type === 'password' ? event.userId : state?.userId
          if (!fresh || next.userId !== userId || !result.ok) v.add('missed', where, `way "${way}" applies, got ${got}`)
        }
        if (fresh && way !== null) {
          const want = way === 'code'
            ? NOW
            : way === 'finish' && state?.state === 'pending-setup' ? state.enrolment?.confirmedAt : undefined
          if (want === undefined ? 'verifiedAt' in next : next.verifiedAt !== want) v.add('shape', where, `way "${way}" wants verifiedAt ${show(want)}, got ${got}`)
        }
        if (event.type === 'factor-verified' && state?.state === 'signed-in') {
          // Accepted: the same session with verifiedAt moved to now. Refused: left as it was.
          const want = result.ok ? { ...state, verifiedAt: NOW } : state
          if (!isDeepStrictEqual(next, want)) v.add('refresh', where, `want ${show(want)}, got ${got}`)
        }

        // Refusals and logout.
        if (!result.ok && next?.state === 'signed-in' && !wasSignedInAs(state, next.userId)) v.add('refusal', where, got)
        if (event.type === 'logout' && (next !== null || !result.ok)) v.add('logout', where, got)

        // A setup overtaken by an enrolment made elsewhere (not the secret confirmed in this session).
        if (state?.state === 'pending-setup' && account.enrolled && (event.type === 'skip' || event.type === 'finish' || event.type === 'wizard-opened')) {
          const confirmedHere = state.enrolment?.confirmedAt !== undefined && account.enrolmentId === state.enrolment.id
          if (!confirmedHere) {
            const movedToPrompt = next?.state === 'pending' &&
              next.userId === state.userId &&
              next.challengeId === NEW_CHALLENGE &&
              next.expiresAt > NOW &&
              next.returnTo === state.returnTo
            if (!movedToPrompt) v.add('elsewhere', where, `want the code prompt for ${state.userId}, got ${got}`)
          }
        }

        // A code prompt and secrets.
        if (next?.state === 'pending' && 'enrolment' in next) v.add('prompt', where, `a pending state holds a secret: ${got}`)
        if (state?.state === 'pending' && (event.type === 'wizard-opened' || event.type === 'enrolment-confirmed')) {
          if (result.ok || !isDeepStrictEqual(next, state)) v.add('prompt', where, `want refused and unchanged, got ${got}`)
        }

        if (state?.state === 'pending' && event.type === 'attempt-failed') {
          const want = event.exhausted ? null : state
          if (!isDeepStrictEqual(next, want)) v.add('attempts', where, `want ${show(want)}, got ${got}`)
        }

        // Where verifiedAt may come from.
        if (next?.state === 'signed-in') {
          const carried = event.type !== 'password' && state?.state === 'signed-in' && state.userId === next.userId && state.verifiedAt === next.verifiedAt
          if (next.verifiedAt !== undefined && !carried) {
            const setter =
              (event.type === 'factor-verified' && next.verifiedAt === event.now) ||
              (event.type === 'enrolment-confirmed' && next.verifiedAt === event.now &&
                heldSecret(state)?.id === event.enrolmentId && account.enrolmentId === event.enrolmentId) ||
              (event.type === 'finish' && state?.state === 'pending-setup' &&
                state.enrolment?.confirmedAt !== undefined && next.verifiedAt === state.enrolment.confirmedAt)
            if (!setter) v.add('verifiedAt', where, got)
          }
          if (event.type === 'trusted-device' && next.verifiedAt !== (state?.state === 'signed-in' ? state.verifiedAt : undefined)) {
            v.add('verifiedAt', where, `a trusted browser set verifiedAt: ${got}`)
          }
        }

        // Whose session it is.
        if (event.type !== 'password' && state !== null && next !== null && next.userId !== state.userId) v.add('user', where, got)
        if (event.type === 'password' && next !== null && next.userId !== event.userId) v.add('user', where, `password names ${event.userId}, got ${got}`)

        // Session id renewal, on what the transition actually produced.
        if (next !== null) {
          const starts = next.state !== 'signed-in' && (state === null || state.state !== next.state || state.userId !== next.userId)
          const completes = next.state === 'signed-in' && !wasSignedInAs(state, next.userId)
          if ((starts || completes) && !needsNewSessionId(state, next)) v.add('rotation', where, `${show(state)} → ${show(next)} keeps the session id`)
          if (isDeepStrictEqual(state, next) && needsNewSessionId(state, next)) v.add('needless', where, `${show(state)} unchanged, yet a new id`)
        }
      }
    }
  }

  t.equal(cases, Object.keys(STATES).length * Object.keys(EVENTS).length * ACCOUNTS.length, 'the whole table was walked')
  t.equal(cases, 10 * 15 * 16, '10 states × 15 events × 16 accounts = 2400 combinations')
  v.assertNone(t)
})

t.test('each of the five ways, spelled out once', async (t) => {
  const plain: AccountNow = { enrolled: false, enrolmentId: null, required: false, canSkip: false }
  const enrolledE1: AccountNow = { enrolled: true, enrolmentId: 'e1', required: false, canSkip: false }
  const forced: AccountNow = { enrolled: false, enrolmentId: null, required: true, canSkip: true }
  t.same(transition(null, EVENTS['password alice']!, plain), { ok: true, next: { state: 'signed-in', userId: 'alice' } }, '1. password, neither enrolled nor required')
  t.same(transition(STATES.pending!, EVENTS['factor-verified']!, enrolledE1), { ok: true, next: { state: 'signed-in', userId: 'alice', verifiedAt: NOW } }, '2. a verified code')
  t.same(transition(STATES['setup, no secret']!, EVENTS.skip!, forced), { ok: true, next: { state: 'signed-in', userId: 'alice' } }, '3. skip, allowed by the policy')
  t.same(transition(STATES['setup, e1 confirmed']!, EVENTS.finish!, enrolledE1), { ok: true, next: { state: 'signed-in', userId: 'alice', verifiedAt: CONFIRMED_AT } }, '4. finish after a confirm in this session')
  t.same(transition(STATES.pending!, EVENTS['trusted-device']!, enrolledE1), { ok: true, next: { state: 'signed-in', userId: 'alice' } }, '5. a trusted browser, no verifiedAt')
})

// ── needsNewSessionId over every pair of states ───────────────────────────────────────────────

t.test('needsNewSessionId: every before × after pair, alice and bob', async (t) => {
  const asBob = (state: SignInState | null): SignInState | null => state === null ? null : { ...state, userId: 'bob' }
  const all = Object.entries(STATES).flatMap(([name, state]): Array<[string, SignInState | null]> =>
    state === null ? [[name, null]] : [[`${name} (alice)`, state], [`${name} (bob)`, asBob(state)]])
  const v = new Violations({
    starts: 'moving into pending or pending-setup from another state or user renews the id',
    completes: 'becoming signed-in from a state that was not signed-in as that user renews the id',
    same: 'no renewal for a state that did not change'
  })
  let pairs = 0
  for (const [beforeName, before] of all) {
    for (const [afterName, after] of all) {
      pairs++
      const where = `${beforeName} → ${afterName}`
      const renew = needsNewSessionId(before, after)
      if (after === null) continue
      if (after.state !== 'signed-in' && (before === null || before.state !== after.state || before.userId !== after.userId) && !renew) v.add('starts', where, 'kept')
      if (after.state === 'signed-in' && !wasSignedInAs(before, after.userId) && !renew) v.add('completes', where, 'kept')
      if (before === after && renew) v.add('same', where, 'renewed')
    }
  }
  t.equal(pairs, 19 * 19, 'every pair of the 19 states (nobody, and 9 each for alice and bob)')
  v.assertNone(t)
})

// ── current(): lapsed half-finished sign-ins are dropped, a sign-in never is ──────────────────

t.test('current drops a lapsed pending or pending-setup state, never a signed-in one', async (t) => {
  const v = new Violations({
    lapsed: 'a pending or pending-setup state at or past expiresAt is dropped',
    live: 'a pending or pending-setup state before expiresAt is kept as it is',
    signedIn: 'a signed-in state is kept whatever the time',
    nothing: 'no state is nothing'
  })
  let checks = 0
  for (const [name, state] of Object.entries(STATES)) {
    if (state === null) {
      for (const empty of [null, undefined]) {
        checks++
        if (current(empty, NOW) !== null) v.add('nothing', show(empty), show(current(empty, NOW)))
      }
      continue
    }
    if (state.state === 'signed-in') {
      for (const now of [0, NOW, NOW + 365 * 24 * 60 * 60_000, Number.MAX_SAFE_INTEGER]) {
        checks++
        if (current(state, now) !== state) v.add('signedIn', `${name} at ${now}`, show(current(state, now)))
      }
      continue
    }
    for (const offset of [-60_000, -1, 0, 1, 60_000]) {
      checks++
      const now = state.expiresAt + offset
      const got = current(state, now)
      if (offset >= 0 && got !== null) v.add('lapsed', `${name} at expiresAt${offset >= 0 ? '+' : ''}${offset}`, show(got))
      if (offset < 0 && got !== state) v.add('live', `${name} at expiresAt${offset}`, show(got))
    }
  }
  t.equal(checks, 2 + 4 * 5 + 5 * 4, 'nothing twice, 4 half-finished states at 5 times, 5 signed-in states at 4 times')
  v.assertNone(t)
})

// ── isFresh(): only a signed-in state with a code proven within the window ────────────────────

t.test('isFresh only for signed-in with verifiedAt within the window', async (t) => {
  const WINDOW = 10 * 60_000
  const verifiedStates = Object.entries(STATES).flatMap(([name, state]): Array<[string, SignInState | null]> => {
    if (state?.state !== 'signed-in') return [[name, state]]
    // The same state with a code proven at several ages, and without one.
    const { verifiedAt: _drop, ...bare } = state
    return [
      [`${name}, never verified`, bare],
      ...[0, 1, WINDOW - 1, WINDOW, WINDOW + 1, 24 * 60 * 60_000].map((age): [string, SignInState] => [`${name}, verified ${age} ms ago`, { ...bare, verifiedAt: NOW - age }])
    ]
  })
  const v = new Violations({
    notSignedIn: 'nobody, a code prompt and a setup are never fresh',
    neverVerified: 'a sign-in without a proven code is never fresh',
    stale: 'a code proven longer ago than the window is not fresh',
    within: 'a code proven within the window (age ≤ window) is fresh'
  })
  let checks = 0
  for (const [name, state] of verifiedStates) {
    checks++
    const fresh = isFresh(state, NOW, WINDOW)
    if (state?.state !== 'signed-in') {
      if (fresh) v.add('notSignedIn', name, 'fresh')
    } else if (state.verifiedAt === undefined) {
      if (fresh) v.add('neverVerified', name, 'fresh')
    } else if (NOW - state.verifiedAt > WINDOW) {
      if (fresh) v.add('stale', name, 'fresh')
    } else if (!fresh) {
      v.add('within', name, 'not fresh')
    }
  }
  t.equal(checks, 5 + 5 * 7, '5 states that are not signed in, 5 signed-in states × 7 ages')
  v.assertNone(t)
})
