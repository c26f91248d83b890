// The enrolment wizard (SPEC §6): scan → confirm → save codes → done. Each step is a partial
// swapped into one page by htmx, and a plain page when JavaScript is off. It serves both the
// signed-in user turning 2FA on and the user whose sign-in is waiting on a required setup.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { completeSignIn } from '../request-context.ts'
import type { EnrolmentView } from '../service.ts'
import type { TwoFactorSessionData } from '../session-state.ts'
import { bodyOf, stateOf, type RouteContext } from './context.ts'
import { recoveryPanel, type RecoveryPanel } from './recovery-panel.ts'

type Step = 'scan' | 'confirm' | 'codes' | 'done'

export async function setupRoutes (app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { options, service, renderer } = ctx
  const { prefix, loginPath } = options

  /** The wizard is for a signed-in user or one whose sign-in waits on setup; nobody else. */
  function wizardUser (request: FastifyRequest): TwoFactorSessionData | null {
    const state = stateOf(request, options)
    return state !== null && (state.state === 'signed-in' || state.state === 'pending-setup') ? state : null
  }

  function notForYou (request: FastifyRequest, reply: FastifyReply) {
    const state = stateOf(request, options)
    if (state?.state === 'pending') return renderer.redirect(request, reply, `${prefix}/challenge`, { state: state.state })
    return renderer.message(request, reply, {
      title: 'Sign in again', status: 401, error: 'second_factor_required', message: 'Please sign in first.', next: loginPath, link: { href: loginPath, text: 'Sign in' }
    })
  }

  async function renderStep (request: FastifyRequest, reply: FastifyReply, state: TwoFactorSessionData, step: Step, extra: {
    enrolment?: EnrolmentView
    recoveryPanel?: RecoveryPanel
    error?: string
    status?: number
    json: unknown
  }) {
    const forced = state.state === 'pending-setup'
    let skip: { graceDaysLeft: number | null } | null = null
    if (forced && (step === 'scan' || step === 'confirm')) {
      const { requirement } = await service.decideSignIn(state.userId)
      if (requirement.canSkip) skip = { graceDaysLeft: requirement.graceDaysLeft }
    }
    return renderer.send(request, reply, {
      page: 'pages/setup',
      partial: `partials/setup-${step}`,
      title: 'Set up two-factor authentication',
      status: extra.status,
      noStore: true,
      json: extra.json,
      data: {
        setup: {
          step,
          forced,
          skip,
          enrolment: extra.enrolment,
          recoveryPanel: extra.recoveryPanel,
          error: extra.error,
          digits: options.digits,
          prefix,
          settingsPath: `${prefix}/settings`
        }
      }
    })
  }

  // Step 1: scan (starts or resumes the pending secret).
  app.get('/setup', ctx.open, async (request, reply) => {
    const state = wizardUser(request)
    if (state === null) return notForYou(request, reply)
    const enrolment = await service.beginEnrolment(state.userId, request)
    return await renderStep(request, reply, state, 'scan', {
      enrolment,
      json: { manualKey: enrolment.manualKey, otpauthUri: enrolment.otpauthUri, qrSvg: enrolment.qrSvg, issuer: enrolment.issuer, account: enrolment.account }
    })
  })

  // Step 2: the confirm form, on its own (htmx swaps it in; a link without JavaScript).
  app.get('/setup/confirm', ctx.open, async (request, reply) => {
    const state = wizardUser(request)
    if (state === null) return notForYou(request, reply)
    const enrolment = await service.beginEnrolment(state.userId, request)
    return await renderStep(request, reply, state, 'confirm', { enrolment, json: { step: 'confirm' } })
  })

  app.post('/setup/confirm', ctx.post, async (request, reply) => {
    const state = wizardUser(request)
    if (state === null) return notForYou(request, reply)
    const outcome = await service.confirmEnrolment(state.userId, bodyOf(request).code, request)
    if (outcome.ok) {
      const panel = await recoveryPanel(service, request, state.userId, outcome.recoveryCodes, options.clock())
      return await renderStep(request, reply, state, 'codes', { recoveryPanel: panel, json: { recoveryCodes: outcome.recoveryCodes } })
    }
    if (outcome.reason === 'expired') {
      const enrolment = await service.beginEnrolment(state.userId, request)
      const message = 'That setup expired. Scan the new code below and enter the code it shows.'
      return await renderStep(request, reply, state, 'scan', { enrolment, error: message, status: 422, json: { error: 'invalid_code', message } })
    }
    let message = outcome.reason === 'invalid_input'
      ? `Enter the ${options.digits}-digit code from your authenticator app.`
      : 'That code is not valid. Check that your app shows the account you just added, then try its newest code.'
    if (outcome.driftMinutes !== null) {
      const minutes = Math.abs(outcome.driftMinutes)
      message += ` Your device clock seems to be off by about ${minutes} minute${minutes === 1 ? '' : 's'}.`
    }
    const enrolment = await service.beginEnrolment(state.userId, request)
    return await renderStep(request, reply, state, 'confirm', { enrolment, error: message, status: 422, json: { error: outcome.reason, message } })
  })

  // Step 3 → 4: the user says the codes are saved.
  app.post('/setup/finish', ctx.post, async (request, reply) => {
    const state = wizardUser(request)
    if (state === null) return notForYou(request, reply)
    const status = await service.status(state.userId)
    if (!status.enabled) return renderer.redirect(request, reply, `${prefix}/setup`, { state: state.state })
    if (state.state === 'pending-setup') {
      const redirect = state.returnTo ?? options.signedInRedirect
      await completeSignIn(request, service, state.userId, { verified: true, now: options.clock() })
      return renderer.redirect(request, reply, redirect, { state: 'signed-in' })
    }
    return await renderStep(request, reply, state, 'done', { json: { state: 'signed-in', redirect: `${prefix}/settings` } })
  })

  app.post('/setup/skip', ctx.post, async (request, reply) => {
    const state = stateOf(request, options)
    if (state?.state !== 'pending-setup') return notForYou(request, reply)
    const { requirement } = await service.decideSignIn(state.userId)
    if (requirement.required && !requirement.canSkip) {
      const message = 'Two-factor authentication is required for your account; it can’t be skipped.'
      return renderer.message(request, reply, {
        title: 'Set up two-factor authentication', status: 409, error: 'not_allowed_by_policy', message, link: { href: `${prefix}/setup`, text: 'Set it up now' }
      })
    }
    const redirect = state.returnTo ?? options.signedInRedirect
    await service.recordSkip(state.userId, requirement, request)
    await completeSignIn(request, service, state.userId, { verified: false })
    return renderer.redirect(request, reply, redirect, { state: 'signed-in' })
  })
}

