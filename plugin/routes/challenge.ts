// The code prompt after the password: a code from the authenticator app or a recovery code.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { attemptsLeft, minutesUntil, retryAfterSeconds, showAttemptsLeft } from '../core/lockout.ts'
import type { SignInState } from '../core/sign-in.ts'
import { fail, type TwoFactorError } from '../errors.ts'
import type { VerifyOutcome } from '../services/challenge.ts'
import { readState } from '../sign-in-session.ts'
import type { Translate } from '../views/messages.ts'
import { LOW_RECOVERY_CODES } from './settings.ts'
import { setTrustedCookie } from './trusted-cookie.ts'
import { auditContextOf, step, stepVerified, type Typed, type RouteContext } from './context.ts'
import { answers, body, codeField, csrfToken, next, orMovedOn, recoveryCodeField, redirectAnswer, signInState } from './schemas.ts'

type Method = 'totp' | 'recovery'

const methodQuery = Type.Object({ method: Type.Optional(Type.String({ maxLength: 20, description: '`recovery` shows the recovery-code form.' })) })

/** What the failure message says, in words: the reason, then any clock hint. */
export function failureText (t: Translate, outcome: Extract<VerifyOutcome, { ok: false, reason: 'invalid_code' | 'invalid_input' | 'replayed' | 'wrong_password' }>, method: Method, digits: number): string {
  if (method === 'recovery') return t('challenge.invalid_recovery_code')
  let text = t(outcome.reason === 'invalid_input' ? 'challenge.invalid_input' : outcome.reason === 'replayed' ? 'challenge.replayed' : 'challenge.invalid_code', { digits })
  if (outcome.driftMinutes !== null) text += ' ' + driftText(t, outcome.driftMinutes)
  return text
}

export function driftText (t: Translate, driftMinutes: number): string {
  const minutes = Math.abs(driftMinutes)
  return t(minutes === 1 ? 'code.drift_one' : 'code.drift_other', { minutes })
}

/** The answer to a locked account: the same for a right code and a wrong one (nothing here depends on the code). */
export function lockedError (t: Translate, lockedUntil: Date, now: number, view: TwoFactorError['options']['view'], extra: Record<string, unknown> = {}): TwoFactorError {
  const retryAfter = retryAfterSeconds(lockedUntil, now)
  return fail('locked', {
    text: t(minutesUntil(lockedUntil, now) === 1 ? 'challenge.locked_one' : 'challenge.locked_other', { minutes: minutesUntil(lockedUntil, now) }),
    headers: { 'Retry-After': String(retryAfter) },
    json: { retryAfter, ...extra },
    view
  })
}

export async function challengeRoutes (app: Typed, ctx: RouteContext): Promise<void> {
  const { options, core, renderer } = ctx
  const { prefix, loginPath } = options
  const action = `${prefix}/challenge`

  function promptData (state: Extract<SignInState, { state: 'pending' }>, method: Method, digits: number, extra: { error?: string, left: number | null, restart?: boolean }) {
    return {
      challenge: {
        method,
        error: extra.error,
        attemptsLeft: extra.left,
        showAttemptsLeft: extra.left !== null && showAttemptsLeft(options.pendingAttempts, extra.left),
        digits,
        action,
        totpUrl: action,
        recoveryUrl: `${action}?method=recovery`,
        restart: extra.restart === true,
        trustDays: options.trustedDevice === false ? null : options.trustedDevice.days,
        loginPath,
        userId: state.userId
      }
    }
  }

  function expired (): TwoFactorError {
    return fail('second_factor_required', { message: 'challenge.expired', next: loginPath, link: { href: loginPath, text: 'link.sign_in' } })
  }

  app.get(
    '/challenge',
    {
      ...ctx.signInStep,
      schema: {
        summary: 'The code prompt of a sign-in that waits for a second factor',
        querystring: methodQuery,
        response: answers({
          200: { description: 'The prompt (or, for a session past it, where to go)', schema: orMovedOn(Type.Object({ state: signInState, methods: Type.Array(Type.String()), digits: Type.Integer(), attemptsLeft: Type.Integer(), csrfToken })) },
          303: redirectAnswer
        })
      }
    },
    async (request, reply) => {
      const state = readState(request, options.clock())
      if (state?.state === 'pending-setup') return renderer.redirect(request, reply, `${prefix}/setup`, { state: state.state })
      if (state?.state === 'signed-in') return renderer.redirect(request, reply, options.signedInRedirect, { state: state.state })
      if (state?.state !== 'pending') throw expired()
      const method: Method = request.query.method === 'recovery' ? 'recovery' : 'totp'
      const [used, digits] = await Promise.all([core.services.challenge.attemptsUsed(state.challengeId), core.services.challenge.digitsFor(state.userId)])
      const left = attemptsLeft(options.pendingAttempts, used)
      if (left === 0) throw expired()
      return await renderer.send(request, reply, {
        page: 'pages/challenge',
        partial: 'partials/challenge',
        title: 'title.challenge',
        json: { state: state.state, methods: ['totp', 'recovery'], digits, attemptsLeft: left },
        data: promptData(state, method, digits, { left })
      })
    }
  )

  app.post(
    '/challenge',
    {
      ...ctx.signInPost,
      schema: {
        summary: 'Answer the code prompt: a code, or a recovery code',
        body: body({
          code: Type.Optional(codeField),
          recoveryCode: Type.Optional(recoveryCodeField),
          trustDevice: Type.Optional(Type.Unknown({ description: '"true" (or a ticked box): don’t ask for a code on this browser again for the configured days.' }))
        }),
        response: answers({
          200: {
            description: 'Signed in (JSON); after a recovery code, the page saying how many are left',
            schema: Type.Object({ state: Type.Literal('signed-in'), next, recoveryCodesLeft: Type.Optional(Type.Integer()), csrfToken })
          },
          303: redirectAnswer
        })
      }
    },
    async (request, reply) => {
      const state = readState(request, options.clock())
      if (state?.state !== 'pending') throw expired()
      const { code, recoveryCode } = request.body
      const method: Method = recoveryCode !== undefined && code === undefined ? 'recovery' : 'totp'
      const t = ctx.t(request)
      const context = auditContextOf(request)

      // Counted before the code is looked at, in the database: concurrent tries each count.
      const attempt = await core.services.challenge.countAttempt(state.challengeId, state.userId, state.expiresAt)
      const used = attempt.attempts
      const left = attemptsLeft(options.pendingAttempts, used)
      if (used > options.pendingAttempts) {
        await step(ctx, request, state.userId, { type: 'attempt-failed', exhausted: true })
        throw fail('second_factor_required', { message: 'challenge.exhausted', next: loginPath, link: { href: loginPath, text: 'link.sign_in' } })
      }

      const outcome = await core.services.challenge.verify(state.userId, { code, recoveryCode }, context, 'sign-in', attempt)
      if (outcome.ok) {
        const { transition } = await stepVerified(ctx, request, state.userId, outcome.enrolmentId)
        if (!transition.ok) throw expired()
        const { trustDevice } = request.body
        if (options.trustedDevice !== false && (trustDevice === true || trustDevice === 'true' || trustDevice === 'on')) {
          setTrustedCookie(reply, options, await core.services.trustedDevices.trust(state.userId, outcome.enrolmentId, auditContextOf(request)))
        }
        return await signedIn(request, reply, outcome, state.returnTo ?? options.signedInRedirect)
      }

      const exhausted = left === 0
      if (exhausted) await step(ctx, request, state.userId, { type: 'attempt-failed', exhausted: true })
      const digits = await core.services.challenge.digitsFor(state.userId, attempt)
      const restartJson = exhausted ? { next: loginPath } : {}
      const page = (shownLeft: number | null) => ({
        page: 'pages/challenge', partial: 'partials/challenge', title: 'title.challenge',
        data: (error: string) => promptData(state, method, digits, { error, left: shownLeft, restart: exhausted })
      })
      // While locked, the answer says nothing that depends on the code, the count included.
      if (outcome.reason === 'locked') throw lockedError(t, outcome.lockedUntil, options.clock(), page(null), restartJson)
      let text = failureText(t, outcome, method, digits)
      if (exhausted) text += ' ' + t('challenge.exhausted')
      throw fail(outcome.reason === 'invalid_input' && method === 'totp' ? 'invalid_input' : 'invalid_code', {
        text,
        json: { attemptsLeft: left, ...restartJson },
        view: page(exhausted ? 0 : left)
      })
    }
  )

  async function signedIn (request: FastifyRequest, reply: FastifyReply, outcome: Extract<VerifyOutcome, { ok: true }>, returnTo: string) {
    // After a recovery code, show how many are left before moving on (a nudge when few are).
    if (outcome.method === 'recovery') {
      return await renderer.send(request, reply, {
        page: 'pages/recovery-used',
        partial: 'partials/recovery-used',
        title: 'title.recovery_used',
        json: { state: 'signed-in', next: returnTo, recoveryCodesLeft: outcome.recoveryCodesLeft },
        data: { remaining: outcome.recoveryCodesLeft, lowAt: LOW_RECOVERY_CODES, redirect: returnTo, settingsPath: `${prefix}/settings` }
      })
    }
    return renderer.redirect(request, reply, returnTo, { state: 'signed-in' })
  }
}
