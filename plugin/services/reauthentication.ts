// "Prove it's you" before a change to the second factor (replacing the authenticator, turning it
// off, new recovery codes): the account password, or, for hosts without passwords (no
// `verifyPassword`, e.g. SSO), a code of the current authenticator or an unused recovery code.
// Replacing the authenticator counts a wrong password against the lockout like a wrong code (a
// stolen session can't guess the password there at leisure); a code is always counted.
import type { AccountsAdapter } from '../options.ts'
import type { Challenge } from './challenge.ts'
import type { AuditContext } from './context.ts'

export const MAX_PASSWORD_LENGTH = 1024

export interface ReauthInput {
  password?: unknown
  /** A code of the current authenticator, or an unused recovery code. */
  currentCode?: unknown
}

export type ReauthRefusal =
  | { reason: 'wrong_password' | 'wrong_current_code' }
  | { reason: 'locked', lockedUntil: Date }

export class Reauthentication {
  constructor (private readonly adapter: AccountsAdapter, private readonly challenge: Challenge) {}

  /** True when the host checks passwords (else a current code is asked). */
  get asksPassword (): boolean {
    return typeof this.adapter.verifyPassword === 'function'
  }

  /** Null when the owner proved it; otherwise why not. `countWrongPassword`: a wrong password counts as a failed code. */
  async check (userId: string, input: ReauthInput, context: AuditContext & { sessionId: string }, countWrongPassword: boolean): Promise<ReauthRefusal | null> {
    if (this.asksPassword) {
      // Where a wrong password counts, a locked account is refused before the password is even
      // looked at: the same answer for right and wrong, so the lock can't be used as an oracle.
      if (countWrongPassword) {
        const lockedUntil = await this.challenge.lockedUntil(userId)
        if (lockedUntil !== null) return { reason: 'locked', lockedUntil }
      }
      const { password } = input
      const ok = typeof password === 'string' && password.length > 0 && password.length <= MAX_PASSWORD_LENGTH &&
        await this.adapter.verifyPassword!(userId, password) === true
      if (ok) return null
      if (!countWrongPassword) return { reason: 'wrong_password' }
      const failed = await this.challenge.fail(userId, 'wrong_password', null, context)
      return !failed.ok && failed.reason === 'locked' ? failed : { reason: 'wrong_password' }
    }
    const given = looksLikeRecoveryCode(input.currentCode) ? { recoveryCode: input.currentCode } : { code: input.currentCode }
    const outcome = await this.challenge.verify(userId, given, context, 'step-up')
    if (outcome.ok) return null
    return outcome.reason === 'locked' ? outcome : { reason: 'wrong_current_code' }
  }
}

/** A current code is digits; anything with letters is taken as a recovery code. */
function looksLikeRecoveryCode (value: unknown): boolean {
  return typeof value === 'string' && /[A-Za-z]/.test(value)
}
