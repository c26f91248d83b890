// Who the benchmark's users are. Users are `u000001` … `u100000`; each benchmark draws on its
// own range so that no figure is measured on accounts another one has used (a TOTP step is
// single-use, a recovery code is single-use, failures count towards a lockout).
import { createHmac } from 'node:crypto'
import { hotp, timeStep } from '../../plugin/core/totp.ts'

export type Range = readonly [first: number, last: number]

export const SMALL_POPULATION = 1000
export const LARGE_POPULATION = 100_000

export const POOLS = {
  /** Recovery-code checks, the same users in the 1 000-user and the 100 000-user database. */
  recovery: [1, 300],
  /** One valid code each through POST /2fa/challenge: 1 500 of the app's sign-ins. */
  challengeValid: [2001, 3500],
  /** Wrong codes through POST /2fa/challenge, at most WRONG_CODES_PER_USER each. */
  challengeWrong: [3501, 3900],
  /** The single-use UPDATE alone, on a bare route (the challenge baseline). */
  bareUpdate: [4001, 5500],
  /** Sign-ins in the runner's own app whose SQL statements are counted (bench/statements.ts). */
  statements: [5501, 5520],
  /** The rest of the app's 10 000 complete sign-ins (password, then code) for the memory figure. */
  signIns: [6001, 14600],
  /**
   * Sustained load (bench/sustained.ts): users added after the population, by that section, once
   * the others have run; each run on a driver signs each in at most once (both drivers use them).
   */
  sustained: [LARGE_POPULATION + 1, LARGE_POPULATION + 150_000]
} as const satisfies Record<string, Range>

/** Users up to here are enrolled with a real secret; the rest are filler in a status mix. */
export const REAL_SECRETS_UP_TO = 14600

/** Complete sign-ins the plugin app has served when its memory is measured again. */
export const SIGN_INS_FOR_MEMORY = 10_000

/** Below both the pending sign-in's 5 attempts and the account's 5-failure lockout. */
export const WRONG_CODES_PER_USER = 4

export const ADMIN_USER = 'bench-admin'
/** Not enrolled, not required: signed in by the password alone (the gate's signed-in session). */
export const GATE_USER = 'bench-gate'
export const PASSWORD = 'bench-password-0123'

export const userId = (n: number): string => `u${String(n).padStart(6, '0')}`

export function* idsOf (range: Range): Generator<string> {
  for (let n = range[0]; n <= range[1]; n++) yield userId(n)
}

export const sizeOf = (range: Range): number => range[1] - range[0] + 1

const SECRET_SEED = 'fastify-two-factor benchmark secrets'

/** Each bench user's TOTP secret, derived so the load generator can compute codes. */
export function secretOf (id: string): Buffer {
  return createHmac('sha256', SECRET_SEED).update(id).digest().subarray(0, 20)
}

/** The code the user's authenticator shows now (offset in steps). */
export function codeOf (id: string, offsetSteps = 0, nowMs = Date.now()): string {
  return hotp(secretOf(id), timeStep(nowMs, 30) + offsetSteps, 'SHA1', 6)
}

/** A code that is wrong now and in the drift window, so it costs the full failure path. */
export function wrongCodeOf (id: string, nowMs = Date.now()): string {
  const nearby = new Set<string>()
  for (let offset = -21; offset <= 21; offset++) nearby.add(codeOf(id, offset, nowMs))
  for (let candidate = 0; ; candidate++) {
    const code = String((Number(codeOf(id, 0, nowMs)) + 500_000 + candidate) % 1_000_000).padStart(6, '0')
    if (!nearby.has(code)) return code
  }
}
