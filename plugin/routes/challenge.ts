// The code prompt after the password (SPEC §5) and the step-up prompt (SPEC §11).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { completeSignIn } from '../request-context.ts'
import type { ChallengeOutcome } from '../service.ts'
import { bodyOf, stateOf, type RouteContext } from './context.ts'
import { LOW_RECOVERY_CODES } from './settings.ts'

type Method = 'totp' | 'recovery'

interface ChallengeView {
  method: Method
  error?: string
  attemptsLeft?: number | null
  stepUp?: boolean
  restart?: boolean
}

export function minutesUntil (until: Date, now: number): number {
  return Math.max(1, Math.ceil((until.getTime() - now) / 60_000))
}

export async function challengeRoutes (app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { options, service, renderer } = ctx
  const { prefix, loginPath } = options

  function render (request: FastifyRequest, reply: FastifyReply, view: ChallengeView, status = 200, extraJson: Record<string, unknown> = {}) {
    const json = status < 400
      ? { state: stateOf(request, options)?.state ?? 'anonymous', methods: ['totp', 'recovery'] }
      : extraJson
    return renderer.send(request, reply, {
      page: 'pages/challenge',
      partial: 'partials/challenge',
      title: 'Two-factor authentication',
      status,
      json,
      data: { challenge: { ...view, digits: options.digits, action: `${prefix}/challenge`, loginPath } }
    })
  }

  /** Where a user without a usable pending state goes: the password page. */
  function startAgain (request: FastifyRequest, reply: FastifyReply, reason: string) {
    return renderer.message(request, reply, {
      title: 'Sign in again', status: 401, error: 'second_factor_required', message: reason, next: loginPath, link: { href: loginPath, text: 'Sign in' }
    })
  }

  app.get('/challenge', ctx.open, async (request, reply) => {
    const state = stateOf(request, options)
    const method: Method = (request.query as { method?: unknown })?.method === 'recovery' ? 'recovery' : 'totp'
    if (state?.state === 'pending') {
      const attemptsLeft = options.pendingAttempts - (state.attempts ?? 0)
      return render(request, reply, { method, attemptsLeft: attemptsLeft < options.pendingAttempts ? attemptsLeft : null })
    }
    if (state?.state === 'signed-in' && state.stepUpReturnTo !== undefined) {
      // A step-up needs a second factor to step up with.
      if (!(await service.status(state.userId)).enabled) {
        const message = 'This page asks for a code from your authenticator app. Turn on two-factor authentication first.'
        return renderer.message(request, reply, {
          title: 'Two-factor authentication needed', status: 403, error: 'second_factor_required', message, next: `${prefix}/setup`, link: { href: `${prefix}/setup`, text: 'Turn it on' }
        })
      }
      return render(request, reply, { method, stepUp: true })
    }
    if (state?.state === 'pending-setup') return renderer.redirect(request, reply, `${prefix}/setup`, { state: state.state })
    if (state?.state === 'signed-in') return renderer.redirect(request, reply, options.signedInRedirect, { state: state.state })
    return startAgain(request, reply, 'Your sign-in has expired. Please enter your password again.')
  })

  app.post('/challenge', ctx.post, async (request, reply) => {
    const state = stateOf(request, options)
    const stepUp = state?.state === 'signed-in' && state.stepUpReturnTo !== undefined
    if (state === null || (state.state !== 'pending' && !stepUp)) {
      return startAgain(request, reply, 'Your sign-in has expired. Please enter your password again.')
    }

    const body = bodyOf(request)
    const method: Method = body.recoveryCode !== undefined && body.code === undefined ? 'recovery' : 'totp'
    let attemptsLeft: number | null = null
    if (!stepUp) {
      // The pending state allows a few attempts; then the user starts again at the password.
      state.attempts = (state.attempts ?? 0) + 1
      attemptsLeft = options.pendingAttempts - state.attempts
      request.session.twoFactor = state
    }

    const outcome = await service.verifyChallenge(state.userId, { code: body.code, recoveryCode: body.recoveryCode }, request)
    if (outcome.ok) return await succeed(request, reply, state.userId, outcome, stepUp ? state.stepUpReturnTo : state.returnTo)

    const exhausted = attemptsLeft !== null && attemptsLeft <= 0
    if (exhausted) request.session.twoFactor = undefined
    return fail(request, reply, outcome, method, { attemptsLeft, exhausted, stepUp })
  })

  async function succeed (request: FastifyRequest, reply: FastifyReply, userId: string, outcome: Extract<ChallengeOutcome, { ok: true }>, returnTo: string | undefined) {
    const now = options.clock()
    await completeSignIn(request, service, userId, { verified: true, now })
    const redirect = returnTo ?? options.signedInRedirect
    // After a recovery code, show how many are left before moving on (SPEC §4 low-codes warning).
    if (outcome.method === 'recovery') {
      return renderer.send(request, reply, {
        page: 'pages/recovery-used',
        partial: 'partials/recovery-used',
        title: 'Signed in with a recovery code',
        json: { state: 'signed-in', redirect, recoveryCodesLeft: outcome.recoveryCodesLeft },
        data: { remaining: outcome.recoveryCodesLeft, lowAt: LOW_RECOVERY_CODES, redirect, settingsPath: `${prefix}/settings` }
      })
    }
    return renderer.redirect(request, reply, redirect, { state: 'signed-in' })
  }

  function fail (request: FastifyRequest, reply: FastifyReply, outcome: Extract<ChallengeOutcome, { ok: false }>, method: Method, extra: { attemptsLeft: number | null, exhausted: boolean, stepUp: boolean }) {
    const now = options.clock()
    if (outcome.reason === 'locked') {
      // Same answer for a right and a wrong code: nothing here depends on the code.
      const retryAfter = Math.max(1, Math.ceil((outcome.lockedUntil.getTime() - now) / 1000))
      const message = `Too many failed attempts. Try again in ${minutesUntil(outcome.lockedUntil, now)} minutes.`
      reply.header('Retry-After', String(retryAfter))
      return render(request, reply, { method, error: message, restart: extra.exhausted, stepUp: extra.stepUp }, 423,
        { error: 'locked', message, retryAfter, ...(extra.exhausted ? { next: loginPath } : {}) })
    }
    let message = outcome.reason === 'invalid_input'
      ? (method === 'recovery' ? 'That recovery code is not valid.' : `Enter the ${options.digits}-digit code from your authenticator app.`)
      : (method === 'recovery' ? 'That recovery code is not valid.' : 'That code is not valid. Check your authenticator app and try again.')
    if (outcome.driftMinutes !== null) {
      const minutes = Math.abs(outcome.driftMinutes)
      message += ` Your device clock seems to be off by about ${minutes} minute${minutes === 1 ? '' : 's'}.`
    }
    if (extra.exhausted) message += ' Too many attempts: please enter your password again.'
    const error = outcome.reason === 'invalid_input' && method === 'totp' ? 'invalid_input' : 'invalid_code'
    return render(request, reply, { method, error: message, attemptsLeft: extra.exhausted ? 0 : extra.attemptsLeft, restart: extra.exhausted, stepUp: extra.stepUp }, 422,
      { error, message, ...(extra.attemptsLeft !== null ? { attemptsLeft: Math.max(0, extra.attemptsLeft) } : {}), ...(extra.exhausted ? { next: loginPath } : {}) })
  }
}
