// Self-service settings: status, turn off, new recovery codes, and the way to a new phone. Both
// changes ask for the account password (or, without passwords, a current code).
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { fail } from '../errors.ts'
import type { SettingsRefusal } from '../services/settings.ts'
import type { TwoFactorStatus } from '../services/status.ts'
import { describeRequirement, type Translate } from '../views/messages.ts'
import { lockedError } from './challenge.ts'
import { auditContextOf, signedInUserOf, type RouteContext, type Typed } from './context.ts'
import { recoveryPanel, type RecoveryPanel } from './recovery-panel.ts'
import { answers, body, csrfToken, currentCodeField, passwordField } from './schemas.ts'
import { deviceView } from './devices.ts'
import { sessionView } from './sessions.ts'
import { wantsJson, wantsPartial } from '../views/renderer.ts'

/** At this many codes left or fewer, the settings page invites regeneration. */
export const LOW_RECOVERY_CODES = 3

/** Why the account is required, for "Required: Yes (admin account; role staff)". */
function requiredBecause (t: Translate, status: TwoFactorStatus): string {
  return describeRequirement(t, status.requiredByParts, 'because')
}

const statusJson = Type.Object({
  enabled: Type.Boolean(),
  enabledAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  recoveryCodesLeft: Type.Integer(),
  required: Type.Boolean(),
  requiredBy: Type.Union([Type.String(), Type.Null()]),
  csrfToken
})

type Form = 'disable' | 'regenerate'

export async function settingsRoutes (app: Typed, ctx: RouteContext): Promise<void> {
  const { options, core, renderer } = ctx
  const { prefix } = options
  const proofFields = { password: Type.Optional(passwordField), currentCode: Type.Optional(currentCodeField) }

  const signedInUser = (request: FastifyRequest): string => signedInUserOf(request, options)

  function toJson (t: Translate, status: TwoFactorStatus) {
    return {
      enabled: status.enabled,
      enabledAt: status.enabledAt?.toISOString() ?? null,
      recoveryCodesLeft: status.recoveryCodesLeft,
      required: status.required,
      requiredBy: status.required ? describeRequirement(t, status.requiredByParts) : null
    }
  }

  async function data (t: Translate, status: TwoFactorStatus, extra: { error?: { form: Form, message: string }, notice?: string, recoveryPanel?: RecoveryPanel }) {
    return {
      settings: {
        status,
        account: (await core.services.profiles.find(status.userId))?.label ?? status.userId,
        requiredBecause: requiredBecause(t, status),
        low: status.enabled && status.recoveryCodesLeft <= LOW_RECOVERY_CODES,
        reauthentication: core.services.reauthentication.asksPassword ? 'password' : 'currentCode',
        error: extra.error,
        notice: extra.notice,
        recoveryPanel: extra.recoveryPanel,
        prefix
      }
    }
  }

  async function page (request: FastifyRequest, reply: FastifyReply, status: TwoFactorStatus, json: Record<string, unknown>, extra: Parameters<typeof data>[2] = {}) {
    // The full page also lists the sessions and trusted browsers (a swap of the settings card doesn't).
    const lists = wantsJson(request) || wantsPartial(request) ? {} : await listsOf(request, status.userId)
    return await renderer.send(request, reply, { page: 'pages/settings', partial: 'partials/settings', title: 'title.settings', json, data: { ...await data(ctx.t(request), status, extra), ...lists } })
  }

  async function listsOf (request: FastifyRequest, userId: string) {
    const [sessions, devices] = await Promise.all([
      core.services.sessions.list(userId, request.session.sessionId),
      options.trustedDevice === false ? null : core.services.trustedDevices.list(userId)
    ])
    return {
      sessions: { list: sessions.map(sessionView), prefix },
      ...(devices === null ? {} : { devices: { list: devices.map(deviceView), prefix } })
    }
  }

  /** A refused change: the settings page again, the error next to its form. */
  async function refusal (t: Translate, refused: SettingsRefusal, status: TwoFactorStatus, form: Form) {
    const pageWith = { page: 'pages/settings', partial: 'partials/settings', title: 'title.settings' }
    const view = async () => {
      const base = await data(t, status, {})
      return { ...pageWith, data: (message: string) => ({ settings: { ...base.settings, error: { form, message } } }) }
    }
    switch (refused.reason) {
      case 'locked': return lockedError(t, refused.lockedUntil, options.clock(), await view())
      case 'not_allowed_by_policy': return fail('not_allowed_by_policy', { text: t('settings.required', { because: requiredBecause(t, status) }), view: await view() })
      case 'not_enrolled': return fail('not_allowed_by_policy', { message: 'settings.enable_first', view: await view() })
      case 'wrong_password': return fail('wrong_password', { message: 'settings.wrong_password', view: await view() })
      case 'wrong_current_code': return fail('wrong_password', { message: 'settings.wrong_current_code', view: await view() })
    }
  }

  app.get('/settings', {
    schema: { summary: 'The signed-in user’s two-factor status', response: answers({ 200: { description: 'The status', schema: statusJson } }) }
  }, async (request, reply) => {
    const status = await core.services.status.of(signedInUser(request))
    return await page(request, reply, status, toJson(ctx.t(request), status))
  })

  app.post('/disable', {
    ...ctx.post,
    schema: {
      summary: 'Turn two-factor off (refused while the policy requires it)',
      body: body(proofFields),
      response: answers({ 200: { description: 'Off: the secret and the recovery codes are gone', schema: Type.Object({ enabled: Type.Literal(false), csrfToken }) } })
    }
  }, async (request, reply) => {
    const userId = signedInUser(request)
    const outcome = await core.services.settings.disable(userId, request.body, auditContextOf(request))
    if (!outcome.ok) throw await refusal(ctx.t(request), outcome.refusal, outcome.status, 'disable')
    return await page(request, reply, outcome.status, { enabled: false }, { notice: ctx.t(request)('settings.disabled') })
  })

  app.post('/recovery-codes', {
    ...ctx.post,
    schema: {
      summary: 'Ten new recovery codes (the old ones stop working)',
      body: body(proofFields),
      response: answers({ 200: { description: 'The new codes, shown this once', schema: Type.Object({ recoveryCodes: Type.Array(Type.String()), csrfToken }) } })
    }
  }, async (request, reply) => {
    const userId = signedInUser(request)
    const outcome = await core.services.settings.regenerateRecoveryCodes(userId, request.body, auditContextOf(request))
    if (!outcome.ok) throw await refusal(ctx.t(request), outcome.refusal, outcome.status, 'regenerate')
    const issuer = typeof options.issuer === 'function' ? options.issuer(request) : options.issuer
    return await page(request, reply, outcome.status, { recoveryCodes: outcome.value }, {
      notice: ctx.t(request)('settings.regenerated'),
      recoveryPanel: await recoveryPanel(core, issuer, userId, outcome.value, options.clock())
    })
  })
}
