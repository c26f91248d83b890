// Where the sign-in state lives: `request.session.twoFactor`. The state machine decides what it
// becomes; this module only reads it and stores what a transition returned, with a new session
// id when a sign-in starts or completes. Nothing else writes it.
//
// What it holds: which user, which state, until when, and references (a challenge id, an
// enrolment id). Never a secret, a code or a password: those live in the database (sealed or
// digested) or nowhere.
import type { FastifyRequest } from 'fastify'
import { current, needsNewSessionId, type SignInState, type Transition } from './core/sign-in.ts'

declare module 'fastify' {
  interface Session {
    twoFactor?: SignInState
  }
}

/** The session's sign-in state, or null (nobody, or a half-finished sign-in that lapsed). */
export function readState (request: FastifyRequest, now: number): SignInState | null {
  const session = request.session as FastifyRequest['session'] | null | undefined
  return current(session?.twoFactor, now)
}

/**
 * Stores the state a transition left the session in (a refusal may have moved it too). `restart`:
 * a new sign-in began (the password step), which always gets a new session id.
 */
export async function storeState (request: FastifyRequest, before: SignInState | null, transition: Transition, restart = false): Promise<void> {
  const next = transition.next
  if (next === before) return
  if (restart || needsNewSessionId(before, next)) await request.session.regenerate()
  request.session.twoFactor = next ?? undefined
}
