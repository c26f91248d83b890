// The sign-in state machine: every state a session can be in and every way between them, as a
// pure function of (state now, what happened, the account as read at this moment). No I/O: the
// routes read the account, call `transition` and store what it returns; nothing else writes
// sign-in state. Being small and pure, its table is tested exhaustively (test/core/sign-in).
//
// The rule it exists for: a session becomes signed-in for an account only
//   1. at the password, when the account is neither enrolled nor required;
//   2. by a code or recovery code of that account verified in this very session;
//   3. by "Skip for now", when the policy allows it and the account is still not enrolled;
//   4. by finishing a wizard whose confirm step succeeded in this very session, for the secret
//      the account still has;
//   5. by a trusted-browser token of that account (never counted as a fresh code).
// Each is decided on the account as it is now, never on what the session remembers of it, so
// nothing a second session does can sign this one in.

/** A pending secret this session started (its row id) and, once confirmed here, when. */
export interface EnrolmentRef {
  id: string
  confirmedAt?: number
}

export type SignInState =
  /** Password accepted; waiting for a code. `challengeId` names the attempts counter. */
  | { state: 'pending', userId: string, expiresAt: number, returnTo?: string, challengeId: string }
  /** Password accepted; the account must enrol first (the wizard). */
  | { state: 'pending-setup', userId: string, expiresAt: number, returnTo?: string, enrolment?: EnrolmentRef }
  /** Signed in; `verifiedAt` is when a second factor was last proven in this session. */
  | { state: 'signed-in', userId: string, verifiedAt?: number, enrolment?: EnrolmentRef }

export type SignInStateName = SignInState['state']
/** What a request is, as the host sees it: a sign-in state or nobody. */
export type RequestStateName = SignInStateName | 'anonymous'

/** The account, read at the moment of the transition. */
export interface AccountNow {
  enrolled: boolean
  /** The enrolment whose secret is the account's active one (null when not enrolled). */
  enrolmentId: string | null
  required: boolean
  /** Whether "Skip for now" is allowed for it now (only meaningful while not enrolled). */
  canSkip: boolean
}

export interface Lifetimes {
  /** How long the code prompt waits, ms. */
  pendingMs: number
  /** How long a forced setup waits, ms. */
  setupMs: number
}

export type SignInEvent =
  /** The host checked the password (startLogin). `challengeId` is used if the result is pending. */
  | { type: 'password', userId: string, returnTo?: string, now: number, challengeId: string, lifetimes: Lifetimes }
  /** A code or recovery code of the session's account was verified in this request. */
  | { type: 'factor-verified', now: number }
  /** A wrong code at the prompt; `exhausted` when it was the last attempt this prompt allows. */
  | { type: 'attempt-failed', exhausted: boolean }
  | { type: 'skip', now: number, challengeId: string, lifetimes: Lifetimes }
  /**
   * The wizard is opened; with `enrolmentId`, the session now holds that pending secret (a new
   * one, when its own had expired). Without it, the question is only whether it may open.
   */
  | { type: 'wizard-opened', enrolmentId?: string, now: number, challengeId: string, lifetimes: Lifetimes }
  /** The account's pending secret `enrolmentId` was confirmed in this request. */
  | { type: 'enrolment-confirmed', enrolmentId: string, now: number }
  | { type: 'finish', now: number, challengeId: string, lifetimes: Lifetimes }
  /** A trusted-browser token of the pending account was accepted. */
  | { type: 'trusted-device', now: number }
  | { type: 'logout' }

export type Refusal =
  /** Nothing to act on: no sign-in, or a state this event does not apply to. */
  | 'no_sign_in'
  /** The policy requires the second factor and does not allow skipping it. */
  | 'not_allowed_by_policy'
  /** The session's pending secret is not the one named (or there is none). */
  | 'no_enrolment'
  /** The wizard's confirm step has not succeeded in this session yet. */
  | 'not_confirmed'

export type Transition =
  | { ok: true, next: SignInState | null }
  | { ok: false, refusal: Refusal, /** Where the session stands instead (it may have moved, e.g. to the code prompt). */ next: SignInState | null }

const to = (next: SignInState | null): Transition => ({ ok: true, next })
const refuse = (refusal: Refusal, next: SignInState | null): Transition => ({ ok: false, refusal, next })

/** The code prompt for a user whose password was accepted (also where a wizard goes once the account is enrolled elsewhere). */
function codePrompt (userId: string, returnTo: string | undefined, now: number, challengeId: string, lifetimes: Lifetimes): SignInState {
  return { state: 'pending', userId, expiresAt: now + lifetimes.pendingMs, challengeId, ...(returnTo !== undefined ? { returnTo } : {}) }
}

function signedIn (userId: string, verifiedAt?: number): SignInState {
  return { state: 'signed-in', userId, ...(verifiedAt !== undefined ? { verifiedAt } : {}) }
}

export function transition (current: SignInState | null, event: SignInEvent, account: AccountNow): Transition {
  if (event.type === 'logout') return to(null)
  if (event.type === 'password') return afterPassword(event, account)
  if (current === null) return refuse('no_sign_in', null)

  switch (event.type) {
    case 'factor-verified':
      // Way 2: the code was checked against this account in this request.
      if (current.state === 'pending' && account.enrolled) return to(signedIn(current.userId, event.now))
      if (current.state === 'signed-in' && account.enrolled) return to({ ...current, verifiedAt: event.now })
      return refuse('no_sign_in', current)

    case 'attempt-failed':
      if (current.state !== 'pending') return refuse('no_sign_in', current)
      return to(event.exhausted ? null : current)

    case 'trusted-device':
      // Way 5: skips the code at sign-in; it proves no fresh factor, so no `verifiedAt`.
      if (current.state === 'pending' && account.enrolled) return to(signedIn(current.userId))
      return refuse('no_sign_in', current)

    case 'skip':
      if (current.state !== 'pending-setup') return refuse('no_sign_in', current)
      // Enrolled meanwhile (in another browser): the code is asked now, whatever the policy.
      if (account.enrolled) return refuse('no_sign_in', codePrompt(current.userId, current.returnTo, event.now, event.challengeId, event.lifetimes))
      // Way 3: skipping is decided on the policy as it is now.
      if (!account.required || account.canSkip) return to(signedIn(current.userId))
      return refuse('not_allowed_by_policy', current)

    case 'wizard-opened':
      if (current.state === 'pending') return refuse('no_sign_in', current) // a code prompt never gets a secret
      if (current.state === 'pending-setup' && account.enrolled) {
        return refuse('no_sign_in', codePrompt(current.userId, current.returnTo, event.now, event.challengeId, event.lifetimes))
      }
      if (event.enrolmentId === undefined || current.enrolment?.id === event.enrolmentId) return to(current)
      return to({ ...current, enrolment: { id: event.enrolmentId } })

    case 'enrolment-confirmed':
      if (current.state === 'pending') return refuse('no_sign_in', current)
      if (current.enrolment?.id !== event.enrolmentId || account.enrolmentId !== event.enrolmentId) return refuse('no_enrolment', current)
      // A signed-in session has just proven a code of the new secret: that counts as fresh.
      if (current.state === 'signed-in') return to({ ...current, verifiedAt: event.now, enrolment: { id: event.enrolmentId, confirmedAt: event.now } })
      return to({ ...current, enrolment: { id: event.enrolmentId, confirmedAt: event.now } })

    case 'finish': {
      if (current.state === 'pending') return refuse('no_sign_in', current)
      const confirmedHere = current.enrolment?.confirmedAt !== undefined && account.enrolled && account.enrolmentId === current.enrolment.id
      if (current.state === 'signed-in') {
        const { enrolment: _done, ...rest } = current
        return confirmedHere ? to(rest) : refuse('not_confirmed', current)
      }
      // Way 4, for the secret the account still has.
      if (confirmedHere) return to(signedIn(current.userId, current.enrolment!.confirmedAt))
      if (account.enrolled) return refuse('no_sign_in', codePrompt(current.userId, current.returnTo, event.now, event.challengeId, event.lifetimes))
      return refuse('not_confirmed', current)
    }
  }
}

function afterPassword (event: Extract<SignInEvent, { type: 'password' }>, account: AccountNow): Transition {
  const { userId, returnTo, now, challengeId, lifetimes } = event
  if (account.enrolled) return to(codePrompt(userId, returnTo, now, challengeId, lifetimes))
  if (account.required) {
    return to({ state: 'pending-setup', userId, expiresAt: now + lifetimes.setupMs, ...(returnTo !== undefined ? { returnTo } : {}) })
  }
  return to(signedIn(userId)) // way 1
}

/**
 * A new session id whenever a session starts a sign-in or completes one (no fixation: an id
 * known before the password, or before the code, is worth nothing after it).
 */
export function needsNewSessionId (before: SignInState | null, after: SignInState | null): boolean {
  if (after === null) return false
  if (after.state === 'signed-in') return before?.state !== 'signed-in' || before.userId !== after.userId
  return before === null || before.state !== after.state || before.userId !== after.userId
}

/** The state, or nothing once a half-finished sign-in has lapsed. */
export function current (state: SignInState | null | undefined, now: number): SignInState | null {
  if (state === null || state === undefined) return null
  if (state.state !== 'signed-in' && !(state.expiresAt > now)) return null
  return state
}

/** Whether a second factor was proven in this session within `withinMs`. */
export function isFresh (state: SignInState | null, now: number, withinMs: number): boolean {
  return state?.state === 'signed-in' && state.verifiedAt !== undefined && now - state.verifiedAt <= withinMs
}
