// What the plugin keeps in the session: which user, in which state, until when. Never a
// secret, a code or a password: those live in the database (sealed or digested) or nowhere.
import type { FastifyRequest } from 'fastify'

export type SessionStateName = 'pending' | 'pending-setup' | 'signed-in'

export interface TwoFactorSessionData {
  state: SessionStateName
  userId: string
  /** Pending states only: when the half-signed-in state lapses (ms since the epoch). */
  expiresAt?: number
  /** Pending states only: code attempts made in this pending state. */
  attempts?: number
  /** Where to go once signed in (a local path, checked when set). */
  returnTo?: string
  /** When a second factor was last verified in this session (for step-up). */
  verifiedAt?: number
  /** Set while a signed-in user is asked for a fresh code before a sensitive route. */
  stepUpReturnTo?: string
}

declare module 'fastify' {
  interface Session {
    twoFactor?: TwoFactorSessionData
  }
}

/** The session's two-factor state, dropping a pending state that has lapsed. */
export function readState (request: FastifyRequest, now: number): TwoFactorSessionData | null {
  const session = request.session as FastifyRequest['session'] | undefined
  const data = session?.twoFactor
  if (data === undefined || data === null) return null
  if (data.state !== 'signed-in' && (data.expiresAt === undefined || data.expiresAt <= now)) {
    session!.twoFactor = undefined
    return null
  }
  return data
}

/** Accepts only a local path, so a crafted returnTo can't send the user to another site. */
export function safeReturnTo (value: unknown, fallback: string): string {
  if (typeof value !== 'string' || value.length > 2048) return fallback
  if (!value.startsWith('/') || value.startsWith('//') || value.includes('\\')) return fallback
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(value)) return fallback
  return value
}
