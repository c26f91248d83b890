// Self-service settings (SPEC §7): status, turn off, new recovery codes. Both changes ask for
// the account password, so a session left open on a shared computer can't quietly weaken 2FA.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TwoFactorStatus } from '../service.ts'
import { bodyOf, stateOf, type RouteContext } from './context.ts'
import { recoveryPanel, type RecoveryPanel } from './recovery-panel.ts'

/** At this many codes left or fewer, the settings page invites regeneration (SPEC §4). */
export const LOW_RECOVERY_CODES = 3

/** "required: admin account; required: role staff" → "admin account; role staff", for "Required: Yes (…)". */
export function requiredBecause (status: TwoFactorStatus): string {
  return status.requiredBy.split('; ').map((rule) => rule.replace(/^required:?\s*/, '')).join('; ')
}

export async function settingsRoutes (app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { options, service, renderer } = ctx
  const { prefix, loginPath } = options

  function signedInUser (request: FastifyRequest): string | null {
    const state = stateOf(request, options)
    return state?.state === 'signed-in' ? state.userId : null
  }

  function pleaseSignIn (request: FastifyRequest, reply: FastifyReply) {
    return renderer.message(request, reply, {
      title: 'Sign in', status: 401, error: 'second_factor_required', message: 'Please sign in first.', next: loginPath, link: { href: loginPath, text: 'Sign in' }
    })
  }

  function statusJson (status: TwoFactorStatus) {
    return {
      enabled: status.enabled,
      enabledAt: status.enabledAt?.toISOString() ?? null,
      recoveryCodesLeft: status.recoveryCodesLeft,
      required: status.required,
      requiredBy: status.required ? status.requiredBy : null
    }
  }

  async function renderSettings (request: FastifyRequest, reply: FastifyReply, status: TwoFactorStatus, extra: {
    error?: { form: 'disable' | 'regenerate', message: string }
    notice?: string
    recoveryPanel?: RecoveryPanel
    httpStatus?: number
    json?: unknown
  } = {}) {
    return renderer.send(request, reply, {
      page: 'pages/settings',
      partial: 'partials/settings',
      title: 'Two-factor authentication',
      status: extra.httpStatus,
      noStore: extra.recoveryPanel !== undefined,
      json: extra.json ?? statusJson(status),
      data: {
        settings: {
          status,
          account: (await service.profile(status.userId))?.label ?? status.userId,
          requiredBecause: requiredBecause(status),
          low: status.enabled && status.recoveryCodesLeft <= LOW_RECOVERY_CODES,
          error: extra.error,
          notice: extra.notice,
          recoveryPanel: extra.recoveryPanel,
          prefix
        }
      }
    })
  }

  app.get('/settings', async (request, reply) => {
    const userId = signedInUser(request)
    if (userId === null) return pleaseSignIn(request, reply)
    return await renderSettings(request, reply, await service.status(userId))
  })

  app.post('/disable', ctx.post, async (request, reply) => {
    const userId = signedInUser(request)
    if (userId === null) return pleaseSignIn(request, reply)
    const status = await service.status(userId)
    if (status.required) {
      const message = `Two-factor authentication is required for your account (${requiredBecause(status)}), so it can’t be turned off. An administrator can lift the requirement.`
      return await renderSettings(request, reply, status, { error: { form: 'disable', message }, httpStatus: 409, json: { error: 'not_allowed_by_policy', message } })
    }
    if (!await service.checkPassword(userId, bodyOf(request).password)) {
      const message = 'That password is not right.'
      return await renderSettings(request, reply, status, { error: { form: 'disable', message }, httpStatus: 422, json: { error: 'wrong_password', message } })
    }
    await service.disable(userId, request, request.session.sessionId)
    return await renderSettings(request, reply, await service.status(userId), {
      notice: 'Two-factor authentication is off. Your authenticator entry and recovery codes no longer work.',
      json: { enabled: false }
    })
  })

  app.post('/recovery-codes', ctx.post, async (request, reply) => {
    const userId = signedInUser(request)
    if (userId === null) return pleaseSignIn(request, reply)
    const status = await service.status(userId)
    if (!status.enabled) {
      const message = 'Turn on two-factor authentication first.'
      return await renderSettings(request, reply, status, { error: { form: 'regenerate', message }, httpStatus: 409, json: { error: 'not_allowed_by_policy', message } })
    }
    if (!await service.checkPassword(userId, bodyOf(request).password)) {
      const message = 'That password is not right.'
      return await renderSettings(request, reply, status, { error: { form: 'regenerate', message }, httpStatus: 422, json: { error: 'wrong_password', message } })
    }
    const recoveryCodes = await service.regenerateRecoveryCodes(userId, request)
    return await renderSettings(request, reply, await service.status(userId), {
      notice: 'New recovery codes are ready. Your old codes no longer work.',
      recoveryPanel: await recoveryPanel(service, request, userId, recoveryCodes, options.clock()),
      json: { recoveryCodes }
    })
  })
}
