// Step-up: a signed-in user proves a second factor again before a sensitive route (route config
// `freshWithin`) or an admin change (admin mode). `/2fa/step-up` asks for a code or a recovery
// code and sends the user back; the same request, sent again, then passes. A trusted browser
// never counts here: only a code entered in this session does.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { safeLocation, sameOriginPath } from '../core/location.ts'
import { fail, type TwoFactorError } from '../errors.ts'
import { readState } from '../sign-in-session.ts'
import { isHtmx, wantsJson, VARY } from '../views/renderer.ts'
import { failureText, lockedError } from './challenge.ts'
import { auditContextOf, step, stepVerified, type RouteContext, type Typed } from './context.ts'
import { answers, body, codeField, csrfToken, next, recoveryCodeField, redirectAnswer, returnToField } from './schemas.ts'

type Method = 'totp' | 'recovery'

/** The step-up page for a return address. */
export function stepUpUrl (prefix: string, returnTo: string): string {
  return `${prefix}/step-up?returnTo=${encodeURIComponent(safeLocation(returnTo))}`
}

/**
 * Where a form that was refused for want of a fresh code should return after the code: the
 * route's `stepUpReturnTo`, else the page the form was on (a same-origin Referer), else `/`.
 */
export function formReturnTo (request: FastifyRequest, configured: string | undefined): string {
  if (configured !== undefined) return safeLocation(configured)
  return sameOriginPath(request.headers.referer, request.headers.host) ?? '/'
}

export type StepUpPrompt = (request: FastifyRequest, reply: FastifyReply, returnTo: string) => Promise<FastifyReply>

/**
 * The answer to a request that needs a fresh code: a page request goes to the prompt (303); an
 * htmx request is sent there too (`HX-Redirect`, status 401); JSON gets 401 with `next`; a
 * plain form gets the prompt itself (401), returning to where the form was.
 */
export async function askForStepUp (request: FastifyRequest, reply: FastifyReply, options: { prefix: string, stepUpReturnTo?: string, prompt: StepUpPrompt, message: string }): Promise<FastifyReply> {
  const { prefix } = options
  reply.header('Vary', VARY).header('Cache-Control', 'no-store')
  if (wantsJson(request)) {
    return reply.code(401).send({ error: 'step_up_required', message: options.message, next: `${prefix}/step-up`, csrfToken: reply.generateCsrf() })
  }
  if (isHtmx(request)) {
    const current = sameOriginPath(request.headers['hx-current-url'], request.headers.host) ?? formReturnTo(request, options.stepUpReturnTo)
    return reply.code(401).header('HX-Redirect', stepUpUrl(prefix, current)).send('')
  }
  if (request.method === 'GET' || request.method === 'HEAD') return reply.redirect(stepUpUrl(prefix, request.url), 303)
  reply.code(401)
  return await options.prompt(request, reply, formReturnTo(request, options.stepUpReturnTo))
}

export async function stepUpRoutes (app: Typed, ctx: RouteContext): Promise<{ prompt: StepUpPrompt }> {
  const { options, core, renderer } = ctx
  const { prefix } = options
  const action = `${prefix}/step-up`

  function promptData (method: Method, digits: number, returnTo: string, error?: string) {
    const back = `returnTo=${encodeURIComponent(returnTo)}`
    return {
      challenge: {
        method, error, attemptsLeft: null, showAttemptsLeft: false, digits, action, returnTo, stepUp: true, restart: false, loginPath: options.loginPath,
        totpUrl: `${action}?${back}`,
        recoveryUrl: `${action}?method=recovery&${back}`
      }
    }
  }

  /** The signed-in, enrolled user a step-up is for, or the refusal. */
  async function stepUpUser (request: FastifyRequest): Promise<string> {
    const state = readState(request, options.clock())
    if (state === null) throw fail('sign_in_required', { next: options.loginPath, link: { href: options.loginPath, text: 'link.sign_in' } })
    if (state.state !== 'signed-in') throw fail('second_factor_required', { next: `${prefix}/${state.state === 'pending' ? 'challenge' : 'setup'}` })
    if (!(await core.services.status.of(state.userId)).enabled) notEnrolled()
    return state.userId
  }

  function notEnrolled (): never {
    throw fail('second_factor_not_enrolled', { message: 'stepup.not_enrolled', next: `${prefix}/settings`, link: { href: `${prefix}/settings`, text: 'link.turn_on' } })
  }

  const prompt: StepUpPrompt = async (request, reply, returnTo) => {
    const userId = await stepUpUser(request)
    const method: Method = (request.query as { method?: unknown } | undefined)?.method === 'recovery' ? 'recovery' : 'totp'
    const digits = await core.services.challenge.digitsFor(userId)
    return await renderer.send(request, reply, {
      page: 'pages/challenge',
      partial: 'partials/challenge',
      title: 'title.step_up',
      status: reply.statusCode,
      json: { state: 'signed-in', methods: ['totp', 'recovery'], digits, returnTo },
      data: promptData(method, digits, returnTo)
    })
  }

  app.get('/step-up', {
    schema: {
      summary: 'The step-up prompt: a fresh code before a sensitive page or an admin change',
      querystring: Type.Object({ returnTo: Type.Optional(returnToField), method: Type.Optional(Type.String({ maxLength: 20 })) }),
      response: answers({ 200: { description: 'The prompt', schema: Type.Object({ state: Type.Literal('signed-in'), methods: Type.Array(Type.String()), digits: Type.Integer(), returnTo: Type.String(), csrfToken }) } })
    }
  }, async (request, reply) => await prompt(request, reply, safeLocation(request.query.returnTo, options.signedInRedirect)))

  app.post('/step-up', {
    ...ctx.post,
    schema: {
      summary: 'Answer the step-up prompt',
      body: body({ code: Type.Optional(codeField), recoveryCode: Type.Optional(recoveryCodeField), returnTo: Type.Optional(returnToField) }),
      response: answers({
        200: { description: 'A code was entered now (JSON)', schema: Type.Object({ freshUntil: Type.String({ format: 'date-time' }), next, csrfToken }) },
        303: redirectAnswer
      })
    }
  }, async (request, reply) => {
    const userId = await stepUpUser(request)
    const returnTo = safeLocation(request.body.returnTo, options.signedInRedirect)
    const { code, recoveryCode } = request.body
    const method: Method = recoveryCode !== undefined && code === undefined ? 'recovery' : 'totp'
    const outcome = await core.services.challenge.verify(userId, { code, recoveryCode }, auditContextOf(request), 'step-up')
    if (outcome.ok) {
      const now = options.clock()
      await stepVerified(ctx, request, userId, outcome.enrolmentId)
      const freshUntil = new Date(now + (ctx.freshWithinOf(returnTo.split('?')[0]!) ?? options.adminFreshWithinMs))
      return renderer.redirect(request, reply, returnTo, { freshUntil: freshUntil.toISOString() })
    }
    const t = ctx.t(request)
    const digits = await core.services.challenge.digitsFor(userId)
    const view = { page: 'pages/challenge', partial: 'partials/challenge', title: 'title.step_up', data: (error: string) => promptData(method, digits, returnTo, error) }
    if (outcome.reason === 'locked') throw lockedError(t, outcome.lockedUntil, options.clock(), view)
    throw fail(outcome.reason === 'invalid_input' && method === 'totp' ? 'invalid_input' : 'invalid_code', { text: failureText(t, outcome, method, digits), view }) satisfies TwoFactorError
  })

  return { prompt }
}
