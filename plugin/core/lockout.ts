// How guessing is bounded: the per-account lockout and the per-prompt attempts. The numbers
// live in the options; the arithmetic on them lives here (the lock's length, which doubles with
// each lockout up to the maximum, is worked out by the failure counter's own UPDATE, in
// db/accounts-store.ts, so that concurrent failures can't disagree about it).

export interface LockoutRule {
  /** Consecutive failures that start a lockout. */
  threshold: number
  /** Length of the first lockout, ms; each further lockout doubles it. */
  baseMs: number
  /** The longest a lockout can be, ms. */
  maxMs: number
}

/** Attempts a code prompt has left after `used` of `allowed`. */
export function attemptsLeft (allowed: number, used: number): number {
  return Math.max(0, allowed - used)
}

/**
 * Whether the prompt should say how many attempts are left: once some are used, and while any
 * remain (before the first try it would only be noise).
 */
export function showAttemptsLeft (allowed: number, left: number): boolean {
  return left > 0 && left < allowed
}

/** Whole seconds until `until` (at least 1), for `Retry-After`. */
export function retryAfterSeconds (until: Date, now: number): number {
  return Math.max(1, Math.ceil((until.getTime() - now) / 1000))
}

/** Whole minutes until `until` (at least 1), for the message. */
export function minutesUntil (until: Date, now: number): number {
  return Math.max(1, Math.ceil((until.getTime() - now) / 60_000))
}
