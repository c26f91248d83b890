// What every route module is given, and the few steps they share: turning a request into the
// plain context services take, and moving the session's sign-in state through the machine.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, onRequestHookHandler, preHandlerHookHandler, RouteShorthandOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { transition, type AccountNow, type Lifetimes, type SignInEvent, type SignInState, type Transition } from '../core/sign-in.ts'
import { findUnsafeText } from '../core/text.ts'
import { fail } from '../errors.ts'
import type { ResolvedOptions } from '../options.ts'
import type { Core } from '../services/core.ts'
import type { AuditContext } from '../services/context.ts'
import type { AccountReading } from '../services/sign-in.ts'
import { readState, storeState } from '../sign-in-session.ts'
import type { Renderer } from '../views/renderer.ts'
import type { Translate } from '../views/messages.ts'

export interface RouteContext {
  options: ResolvedOptions
  core: Core
  renderer: Renderer
  /** The messages for this request's language. */
  t: (request: FastifyRequest) => Translate
  /** Route options for state-changing routes: CSRF, the per-IP rate limit. */
  post: RouteShorthandOptions
  /** The sign-in steps: reachable by a half-signed-in session (the gate lets them through). */
  signInStep: RouteShorthandOptions
  /** A POST among the sign-in steps. */
  signInPost: RouteShorthandOptions
  /** The `freshWithin` (ms) of the GET route at exactly this path, if it has one. */
  freshWithinOf: (path: string) => number | undefined
}

/** The route scope with TypeBox types for bodies, queries and params. */
export type Typed = ReturnType<typeof typed>
export function typed (app: FastifyInstance) {
  return app.withTypeProvider<TypeBoxTypeProvider>()
}

/** What services are told about the request: where it came from, never the request itself. */
export function auditContextOf (request: FastifyRequest, actor?: string): AuditContext & { sessionId: string } {
  const userAgent = request.headers['user-agent']
  return {
    ip: request.ip ?? null,
    userAgent: typeof userAgent === 'string' ? userAgent : null,
    ...(actor !== undefined ? { actor } : {}),
    sessionId: request.session.sessionId
  }
}

/** The user of a signed-in session; anything else is refused with the way to the login page. */
export function signedInUserOf (request: FastifyRequest, options: ResolvedOptions): string {
  const state = readState(request, options.clock())
  const { loginPath } = options
  if (state?.state !== 'signed-in') throw fail('sign_in_required', { message: 'setup.sign_in_first', next: loginPath, link: { href: loginPath, text: 'link.sign_in' } })
  return state.userId
}

/** A fresh id for a code prompt's attempts counter. */
export function newChallengeId (): string {
  return randomBytes(16).toString('base64url')
}

export function lifetimesOf (options: ResolvedOptions): Lifetimes {
  return { pendingMs: options.pendingTtlMs, setupMs: options.enrolmentTtlMs }
}

export interface Step {
  before: SignInState | null
  transition: Transition
  reading: AccountReading
}

/**
 * One move of the sign-in state machine for this request: read the account now, ask the machine,
 * store what it says. When the move signs the session in, the host's `onSignedIn` runs (it
 * clears the host's own password lockout); if that fails, the answer is an error and the
 * session must not stay signed in by it, so the state is dropped before the error goes on.
 */
export async function step (ctx: RouteContext, request: FastifyRequest, userId: string, event: SignInEvent, reading?: AccountReading): Promise<Step> {
  reading ??= await ctx.core.services.signIn.read(userId)
  return { ...await move(ctx, request, userId, event, reading.now), reading }
}

/**
 * The move after a code (or recovery code) of the account was verified in this request: the
 * verification itself read the account and proved it enrolled with `enrolmentId`, which is all
 * this move depends on, so nothing is read again (three statements fewer per sign-in).
 */
export async function stepVerified (ctx: RouteContext, request: FastifyRequest, userId: string, enrolmentId: string | null): Promise<Omit<Step, 'reading'>> {
  const now: AccountNow = { enrolled: true, enrolmentId, required: true, canSkip: false }
  return await move(ctx, request, userId, { type: 'factor-verified', now: ctx.options.clock() }, now)
}

async function move (ctx: RouteContext, request: FastifyRequest, userId: string, event: SignInEvent, account: AccountNow): Promise<Omit<Step, 'reading'>> {
  const before = readState(request, ctx.options.clock())
  const result = transition(before, event, account)
  await storeState(request, before, result, ctx.options.clock(), event.type === 'password')
  const signedInNow = result.next?.state === 'signed-in' && before?.state !== 'signed-in'
  if (signedInNow) {
    try {
      await ctx.options.accounts.onSignedIn?.(userId, request)
    } catch (error) {
      request.session.twoFactor = undefined
      throw error
    }
  }
  return { before, transition: result }
}

/**
 * Refuses text that can't be stored or shown (NUL, other C0 controls, DEL, lone surrogates)
 * anywhere in the path parameters, the query or the body, before anything reads it.
 */
export const refuseUnsafeText: preHandlerHookHandler = function refuseUnsafeText (request, _reply, done) {
  if (findUnsafeText(request.params) !== null || findUnsafeText(request.query) !== null || findUnsafeText(request.body) !== null) {
    done(fail('invalid_input', { message: 'error.unsafe_text' }))
    return
  }
  done()
}

/** A form or JSON post without a body is an empty one (a route's schema then says what is missing). */
export const emptyBodyIsEmptyObject: preHandlerHookHandler = function emptyBodyIsEmptyObject (request, _reply, done) {
  if (request.body === undefined) request.body = {}
  done()
}

/**
 * Refuses cross-site requests before the token check: browsers say where a request came from
 * in `Sec-Fetch-Site`, which a forged form can't change.
 */
export const refuseCrossSite: onRequestHookHandler = function refuseCrossSite (request, _reply, done) {
  if (request.headers['sec-fetch-site'] === 'cross-site') {
    done(fail('csrf'))
    return
  }
  done()
}

export const csrfCheck: preHandlerHookHandler = function csrfCheck (request, reply, done) {
  request.server.csrfProtection(request, reply, done)
}
