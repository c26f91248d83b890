// Where the sign-in state lives: `request.session.twoFactor`. The state machine decides what it
// becomes; this module only reads it and stores what a transition returned, with a new session
// id when a sign-in starts or completes. Nothing else writes it.
//
// What it holds: which user, which state, until when, and references (a challenge id, an
// enrolment id). Never a secret, a code or a password: those live in the database (sealed or
// digested) or nowhere.
import type { FastifyRequest } from 'fastify'
import { current, needsNewSessionId, type SignInState, type Transition } from './core/sign-in.ts'
import { neutralise } from './core/text.ts'
import type { SessionRegenerating } from './db/session-store.ts'

/** What the account's session list shows of this session: when it began and was last seen, and from where. */
export interface SessionMeta {
  createdAt: number
  lastSeenAt: number
  ip: string | null
  userAgent: string | null
}

/** A session signed in by "Skip for now" while a requirement is in grace: when the grace ends. */
export interface GraceNote {
  graceEndsAt: number
}

declare module 'fastify' {
  interface Session {
    twoFactor?: SignInState
    twoFactorMeta?: SessionMeta
    twoFactorGrace?: GraceNote
  }
}

/** "Last seen" is kept to this precision: a signed-in request writes the session at most this often. */
export const LAST_SEEN_EVERY_MS = 5 * 60_000

/** The session's sign-in state, or null (nobody, or a half-finished sign-in that lapsed). */
export function readState (request: FastifyRequest, now: number): SignInState | null {
  const session = request.session as FastifyRequest['session'] | null | undefined
  return current(session?.twoFactor, now)
}

/**
 * Stores the state a transition left the session in (a refusal may have moved it too). `restart`:
 * a new sign-in began (the password step), which always gets a new session id.
 */
export async function storeState (request: FastifyRequest, before: SignInState | null, transition: Transition, now: number, restart = false): Promise<void> {
  const next = transition.next
  if (next === before) return
  if (restart || needsNewSessionId(before, next)) {
    await regenerate(request)
    const userAgent = request.headers['user-agent']
    request.session.twoFactorMeta = {
      createdAt: now,
      lastSeenAt: now,
      ip: request.ip ?? null,
      userAgent: typeof userAgent === 'string' ? neutralise(userAgent, 256) : null
    }
  }
  request.session.twoFactor = next ?? undefined
}

/** A new session id: through the store when it can do it in fewer round trips (the Postgres store). */
async function regenerate (request: FastifyRequest): Promise<void> {
  const store = request.sessionStore as Partial<SessionRegenerating>
  if (typeof store.regenerateSession === 'function') await store.regenerateSession(request)
  else await request.session.regenerate()
}

/**
 * A fresh, empty session in place of this one, whose row is deleted at once (sign-out). After a
 * `regenerate` above in the same request, the row that one was to replace goes too: the new
 * session, empty, is never stored, so its first write would never delete it.
 */
export async function endSession (request: FastifyRequest): Promise<void> {
  const store = request.sessionStore as Partial<SessionRegenerating>
  if (typeof store.dropReplaced === 'function') await store.dropReplaced(request.session)
  await request.session.regenerate()
}

/** Notes that the session was seen now, if the last note is old enough (one write per few minutes). */
export function noteSeen (request: FastifyRequest, now: number): void {
  const meta = request.session.twoFactorMeta
  if (meta !== undefined && now - meta.lastSeenAt >= LAST_SEEN_EVERY_MS) meta.lastSeenAt = now
}

/**
 * The grace left to a session that skipped setup, or null. Only while the session has proven no
 * factor: one that enrolled (here, or elsewhere, which ends this session) has nothing to be told.
 */
export function graceOf (request: FastifyRequest, now: number): GraceNote | null {
  const state = readState(request, now)
  const note = (request.session as FastifyRequest['session'] | null | undefined)?.twoFactorGrace
  if (state?.state !== 'signed-in' || state.verifiedAt !== undefined || note === undefined) return null
  return note.graceEndsAt > now ? note : null
}
