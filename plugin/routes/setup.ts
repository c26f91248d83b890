// The enrolment wizard: scan → confirm → save codes → done. Each step is a partial swapped into
// one page by htmx, and a plain page when JavaScript is off. It serves a signed-in user turning
// 2FA on (or moving to a new phone) and a user whose sign-in waits on a required setup.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { graceEndOf } from '../core/policy.ts'
import type { SignInState } from '../core/sign-in.ts'
import { fail, type TwoFactorError } from '../errors.ts'
import type { EnrolmentView } from '../services/enrolment.ts'
import type { AccountReading } from '../services/sign-in.ts'
import { readState } from '../sign-in-session.ts'
import { qrSvg } from '../views/qr.ts'
import { driftText, lockedError } from './challenge.ts'
import { auditContextOf, lifetimesOf, newChallengeId, step, type RouteContext, type Typed } from './context.ts'
import { recoveryPanel, type RecoveryPanel } from './recovery-panel.ts'
import { answers, body, codeField, csrfToken, currentCodeField, next, orMovedOn, passwordField, redirectAnswer, signInState } from './schemas.ts'

type Step = 'scan' | 'confirm' | 'codes' | 'done'
type WizardState = Extract<SignInState, { state: 'pending-setup' | 'signed-in' }>

const enrolmentJson = Type.Object({
  manualKey: Type.String({ description: 'The secret in base32, grouped by 4, for typing into the app.' }),
  otpauthUri: Type.String({ description: 'What the QR code holds.' }),
  qrSvg: Type.String({ description: 'The QR code as inline SVG.' }),
  issuer: Type.String(),
  account: Type.String(),
  digits: Type.Integer(),
  expiresAt: Type.String({ format: 'date-time', description: 'When this pending secret lapses (15 minutes after it was made).' }),
  replacing: Type.Boolean({ description: 'True when confirming replaces an active authenticator (then `password` or `currentCode` is asked).' }),
  reauthentication: Type.Union([Type.Enum(['password', 'currentCode']), Type.Null()], { description: 'What a replacement asks for besides the code.' }),
  csrfToken
})

export async function setupRoutes (app: Typed, ctx: RouteContext): Promise<void> {
  const { options, core, renderer } = ctx
  const { prefix, loginPath } = options
  const { enrolment, reauthentication } = core.services

  const issuerFor = (request: FastifyRequest): string => typeof options.issuer === 'function' ? options.issuer(request) : options.issuer
  const moveEvent = () => ({ now: options.clock(), challengeId: newChallengeId(), lifetimes: lifetimesOf(options) })

  function pleaseSignIn (): TwoFactorError {
    return fail('second_factor_required', { message: 'setup.sign_in_first', next: loginPath, link: { href: loginPath, text: 'link.sign_in' } })
  }

  /**
   * The wizard for this request's session, or an answer sending it elsewhere: a code prompt
   * never gets a secret, and a forced setup whose account got enrolled meanwhile (in another
   * browser) becomes a code prompt.
   */
  // Null when it has answered (a reply is a thenable, so it is not returned from an async function).
  async function openWizard (request: FastifyRequest, reply: FastifyReply): Promise<{ state: WizardState, reading: AccountReading } | null> {
    const state = readState(request, options.clock())
    if (state === null) throw pleaseSignIn()
    if (state.state === 'pending') {
      renderer.redirect(request, reply, `${prefix}/challenge`, { state: state.state })
      return null
    }
    const reading = await core.services.signIn.read(state.userId)
    const { transition } = await step(ctx, request, state.userId, { type: 'wizard-opened', ...moveEvent() }, reading)
    if (!transition.ok || transition.next === null || transition.next.state === 'pending') {
      renderer.redirect(request, reply, `${prefix}/challenge`, { state: transition.next?.state ?? 'anonymous' })
      return null
    }
    return { state: transition.next as WizardState, reading }
  }

  /** The session's pending secret (resumed while fresh, else a new one the session now holds). */
  async function pendingSecret (request: FastifyRequest, state: WizardState, reading: AccountReading): Promise<EnrolmentView> {
    const view = await enrolment.open(state.userId, state.enrolment?.id, issuerFor(request), auditContextOf(request))
    if (view.enrolmentId !== state.enrolment?.id) {
      await step(ctx, request, state.userId, { type: 'wizard-opened', enrolmentId: view.enrolmentId, ...moveEvent() }, reading)
    }
    return view
  }

  function stepData (state: WizardState, reading: AccountReading, wizardStep: Step, extra: { enrolment?: EnrolmentView & { qrSvg: string }, recoveryPanel?: RecoveryPanel, error?: string }) {
    const forced = state.state === 'pending-setup'
    const replacing = state.state === 'signed-in' && reading.now.enrolled
    const skip = forced && (wizardStep === 'scan' || wizardStep === 'confirm') && reading.requirement.canSkip
      ? { graceDaysLeft: reading.requirement.graceDaysLeft }
      : null
    return {
      setup: {
        step: wizardStep,
        forced,
        skip,
        replacing,
        reauthentication: replacing ? (reauthentication.asksPassword ? 'password' : 'currentCode') : null,
        enrolment: extra.enrolment,
        recoveryPanel: extra.recoveryPanel,
        error: extra.error,
        digits: extra.enrolment?.digits ?? options.digits,
        prefix,
        settingsPath: `${prefix}/settings`
      }
    }
  }

  function withQr (view: EnrolmentView) {
    return { ...view, qrSvg: qrSvg(view.otpauthUri) }
  }

  function enrolmentAnswer (view: EnrolmentView & { qrSvg: string }, state: WizardState, reading: AccountReading) {
    const replacing = state.state === 'signed-in' && reading.now.enrolled
    return {
      manualKey: view.manualKey,
      otpauthUri: view.otpauthUri,
      qrSvg: view.qrSvg,
      issuer: view.issuer,
      account: view.account,
      digits: view.digits,
      expiresAt: view.expiresAt.toISOString(),
      replacing,
      reauthentication: replacing ? (reauthentication.asksPassword ? 'password' : 'currentCode') : null
    }
  }

  function send (request: FastifyRequest, reply: FastifyReply, state: WizardState, reading: AccountReading, wizardStep: Step, json: Record<string, unknown>, extra: Parameters<typeof stepData>[3] = {}) {
    return renderer.send(request, reply, {
      page: 'pages/setup',
      partial: `partials/setup-${wizardStep}`,
      title: 'title.setup',
      json,
      data: stepData(state, reading, wizardStep, extra)
    })
  }

  // Step 1: scan (starts or resumes this session's pending secret).
  app.get('/setup', {
    ...ctx.signInStep,
    schema: { summary: 'The wizard: starts or resumes this session’s pending secret', response: answers({ 200: { description: 'The secret to scan (or, for a session that can’t enrol, where to go)', schema: orMovedOn(enrolmentJson) }, 303: redirectAnswer }) }
  }, async (request, reply) => {
    const opened = await openWizard(request, reply)
    if (opened === null) return reply
    const view = withQr(await pendingSecret(request, opened.state, opened.reading))
    return await send(request, reply, readState(request, options.clock()) as WizardState, opened.reading, 'scan', enrolmentAnswer(view, opened.state, opened.reading), { enrolment: view })
  })

  // Step 2: the confirm form, on its own (htmx swaps it in; a link without JavaScript).
  app.get('/setup/confirm', {
    ...ctx.signInStep,
    schema: { summary: 'The wizard’s confirm step', response: answers({ 200: { description: 'The confirm form', schema: orMovedOn(enrolmentJson) }, 303: redirectAnswer }) }
  }, async (request, reply) => {
    const opened = await openWizard(request, reply)
    if (opened === null) return reply
    const view = withQr(await pendingSecret(request, opened.state, opened.reading))
    return await send(request, reply, readState(request, options.clock()) as WizardState, opened.reading, 'confirm', enrolmentAnswer(view, opened.state, opened.reading), { enrolment: view })
  })

  app.post('/setup/confirm', {
    ...ctx.signInPost,
    schema: {
      summary: 'Confirm this session’s pending secret with a current code',
      body: body({ code: Type.Optional(codeField), password: Type.Optional(passwordField), currentCode: Type.Optional(currentCodeField) }),
      response: answers({ 200: { description: 'Enrolled: the ten recovery codes, shown this once', schema: orMovedOn(Type.Object({ recoveryCodes: Type.Array(Type.String()), csrfToken })) }, 303: redirectAnswer })
    }
  }, async (request, reply) => {
    const opened = await openWizard(request, reply)
    if (opened === null) return reply
    const { state, reading } = opened
    const t = ctx.t(request)
    const context = auditContextOf(request)
    const confirmPage = async () => {
      const view = withQr(await pendingSecret(request, state, reading))
      return { page: 'pages/setup', partial: 'partials/setup-confirm', title: 'title.setup', data: (error: string) => stepData(state, reading, 'confirm', { enrolment: view, error }) }
    }

    const outcome = state.enrolment === undefined
      ? { ok: false as const, reason: 'expired' as const }
      : await enrolment.confirm({ userId: state.userId, enrolmentId: state.enrolment.id, code: request.body.code, reauth: request.body, context, sessionId: context.sessionId })
    if (outcome.ok) {
      await step(ctx, request, state.userId, { type: 'enrolment-confirmed', enrolmentId: state.enrolment!.id, now: options.clock() })
      const panel = await recoveryPanel(core, issuerFor(request), state.userId, outcome.recoveryCodes, options.clock())
      return await send(request, reply, readState(request, options.clock()) as WizardState, await core.services.signIn.read(state.userId), 'codes', { recoveryCodes: outcome.recoveryCodes }, { recoveryPanel: panel })
    }
    switch (outcome.reason) {
      case 'expired': {
        const view = withQr(await pendingSecret(request, { ...state, enrolment: undefined }, reading))
        throw fail('invalid_code', {
          message: 'setup.expired',
          view: { page: 'pages/setup', partial: 'partials/setup-scan', title: 'title.setup', data: (error) => stepData(state, reading, 'scan', { enrolment: view, error }) }
        })
      }
      case 'locked':
        throw lockedError(t, outcome.lockedUntil, options.clock(), await confirmPage())
      case 'wrong_password':
      case 'wrong_current_code': {
        const text = t(outcome.reason === 'wrong_password' ? 'setup.wrong_password' : 'setup.wrong_current_code')
        throw fail('wrong_password', { text, view: await confirmPage() })
      }
      default: {
        let text = t(outcome.reason === 'invalid_input' ? 'challenge.invalid_input' : 'setup.invalid_code', { digits: options.digits })
        if (outcome.driftMinutes !== null) text += ' ' + driftText(t, outcome.driftMinutes)
        throw fail(outcome.reason, { text, view: await confirmPage() })
      }
    }
  })

  // Step 3 → 4: the user says the codes are saved.
  app.post('/setup/finish', {
    ...ctx.signInPost,
    schema: {
      summary: 'Finish the wizard (the codes are saved)',
      body: body({}),
      response: answers({ 200: { description: 'Done: 2FA is on', schema: Type.Object({ state: signInState, next, csrfToken }) }, 303: redirectAnswer })
    }
  }, async (request, reply) => {
    const state = readState(request, options.clock())
    if (state === null) throw pleaseSignIn()
    const { transition, before, reading } = await step(ctx, request, state.userId, { type: 'finish', ...moveEvent() })
    const next = transition.next
    if (!transition.ok) {
      if (next?.state === 'pending') return renderer.redirect(request, reply, `${prefix}/challenge`, { state: next.state })
      if (next === null) throw pleaseSignIn()
      return renderer.redirect(request, reply, `${prefix}/setup`, { state: next.state })
    }
    if (before?.state === 'pending-setup') {
      return renderer.redirect(request, reply, before.returnTo ?? options.signedInRedirect, { state: 'signed-in' })
    }
    return await send(request, reply, next as WizardState, reading, 'done', { state: 'signed-in', next: `${prefix}/settings` })
  })

  app.post('/setup/skip', {
    ...ctx.signInPost,
    schema: {
      summary: '“Skip for now”, where the policy allows it',
      body: body({}),
      response: answers({ 200: { description: 'Signed in without 2FA this time (or, enrolled meanwhile, to the code prompt)', schema: Type.Object({ state: signInState, next, csrfToken }) }, 303: redirectAnswer })
    }
  }, async (request, reply) => {
    const state = readState(request, options.clock())
    if (state === null) throw pleaseSignIn()
    if (state.state === 'pending') return renderer.redirect(request, reply, `${prefix}/challenge`, { state: state.state })
    if (state.state !== 'pending-setup') return renderer.redirect(request, reply, options.signedInRedirect, { state: state.state })
    const { transition, reading } = await step(ctx, request, state.userId, { type: 'skip', ...moveEvent() })
    if (transition.ok) {
      await core.services.signIn.skipped(state.userId, reading.requirement, auditContextOf(request))
      const graceEndsAt = graceEndOf(reading.requirement)
      if (graceEndsAt !== null) request.session.twoFactorGrace = { graceEndsAt }
      return renderer.redirect(request, reply, state.returnTo ?? options.signedInRedirect, { state: 'signed-in' })
    }
    if (transition.next?.state === 'pending') return renderer.redirect(request, reply, `${prefix}/challenge`, { state: 'pending' })
    throw fail('not_allowed_by_policy', { message: 'setup.skip_not_allowed', link: { href: `${prefix}/setup`, text: 'link.set_up_now' } })
  })
}
