// The policy form: who must use two-factor, saved inline.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { PolicySettings } from '../../core/policy.ts'
import { fail } from '../../errors.ts'
import { isHtmx, wantsJson } from '../../views/renderer.ts'
import { auditContextOf, type RouteContext, type Typed } from '../context.ts'
import { answers, body, csrfToken } from '../schemas.ts'
import { actorOf } from './guard.ts'
import { adminData, utc } from './view.ts'

const ROLE_NAME = /^[\w.:@-]{1,64}$/
const MAX_ROLES = 50
const DAY_MS = 24 * 60 * 60 * 1000

const policyJson = Type.Object({
  requireAll: Type.Boolean(),
  requireAllSince: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  graceDays: Type.Integer(),
  requiredRoles: Type.Array(Type.String()),
  exemptRoles: Type.Array(Type.String()),
  allowSkip: Type.Boolean(),
  notice: Type.Optional(Type.String()),
  csrfToken
})

type FormRefusal = { message: string, params?: Record<string, string | number> }

/**
 * Reads the policy form. A plain form leaves unticked checkboxes out, so for forms a missing
 * box means "off"; a JSON client may send only the fields it changes.
 */
export function parsePolicyInput (input: Record<string, unknown>, json: boolean, previous: PolicySettings): PolicySettings | FormRefusal {
  const flag = (name: 'requireAll' | 'allowSkip'): boolean | FormRefusal => {
    const value = input[name]
    if (value === undefined) return json ? previous[name] : false
    if (value === true || value === 'true' || value === 'on') return true
    if (value === false || value === 'false') return false
    return { message: 'admin.policy.bad_flag', params: { name } }
  }
  const roles = (name: 'requiredRoles' | 'exemptRoles'): string[] | FormRefusal => {
    const value = input[name]
    if (value === undefined) return json ? previous[name] : []
    const list = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/[\s,]+/) : null
    if (list === null || !list.every((r) => typeof r === 'string')) return { message: 'admin.policy.bad_roles', params: { name } }
    const names = [...new Set((list as string[]).map((r) => r.trim()).filter((r) => r !== ''))]
    if (names.length > MAX_ROLES) return { message: 'admin.policy.too_many_roles', params: { max: MAX_ROLES } }
    if (names.some((r) => !ROLE_NAME.test(r))) return { message: 'admin.policy.bad_role_name' }
    return names
  }
  const rawGrace = input.graceDays
  const graceDays = rawGrace === undefined ? previous.graceDays : typeof rawGrace === 'number' ? rawGrace : typeof rawGrace === 'string' && /^\d{1,3}$/.test(rawGrace.trim()) ? Number(rawGrace.trim()) : NaN
  if (!Number.isInteger(graceDays) || graceDays < 0 || graceDays > 365) return { message: 'admin.policy.bad_grace' }
  const requireAll = flag('requireAll')
  const allowSkip = flag('allowSkip')
  const requiredRoles = roles('requiredRoles')
  const exemptRoles = roles('exemptRoles')
  for (const value of [requireAll, allowSkip, requiredRoles, exemptRoles]) if (typeof value === 'object' && !Array.isArray(value)) return value
  return {
    requireAll: requireAll as boolean,
    requireAllSince: previous.requireAllSince,
    graceDays,
    requiredRoles: requiredRoles as string[],
    exemptRoles: exemptRoles as string[],
    allowSkip: allowSkip as boolean
  }
}

export async function adminPolicyRoutes (app: Typed, ctx: RouteContext & { base: string }): Promise<void> {
  const { core, renderer, base } = ctx
  const { admin } = core.services

  function policyData (request: FastifyRequest, policy: PolicySettings, actorEnrolled: boolean, extra: { error?: string, notice?: string, form?: PolicySettings }) {
    const graceEndsAt = policy.requireAll && policy.requireAllSince !== null
      ? new Date(new Date(policy.requireAllSince).getTime() + policy.graceDays * DAY_MS)
      : null
    return adminData(request, base, ctx.options.prefix, 'policy', {
      policy: {
        saved: policy,
        form: extra.form ?? policy,
        since: policy.requireAllSince === null ? null : utc(new Date(policy.requireAllSince)),
        graceEnds: graceEndsAt === null ? null : utc(graceEndsAt),
        actorEnrolled,
        error: extra.error,
        notice: extra.notice
      }
    })
  }

  const actorEnrolled = async (request: FastifyRequest) => (await core.services.status.of(actorOf(request).profile.userId)).enabled

  async function send (request: FastifyRequest, reply: FastifyReply, policy: PolicySettings, json: Record<string, unknown>, extra: Parameters<typeof policyData>[3] = {}) {
    return await renderer.send(request, reply, { page: 'pages/admin-policy', partial: 'partials/admin-policy', title: 'title.admin_policy', json, data: policyData(request, policy, await actorEnrolled(request), extra) })
  }

  function refusal (request: FastifyRequest, previous: PolicySettings, form: PolicySettings | undefined, enrolled: boolean) {
    return { page: 'pages/admin-policy', partial: 'partials/admin-policy', title: 'title.admin_policy', data: (error: string) => policyData(request, previous, enrolled, { error, form }) }
  }

  const response = answers({ 200: { description: 'The policy', schema: policyJson }, 303: { description: 'A plain form goes back to the policy page' } })

  app.get('/admin/policy', { schema: { summary: 'The policy', response } }, async (request, reply) => {
    const policy = await admin.policy()
    return await send(request, reply, policy, { ...policy })
  })

  app.post('/admin/policy', {
    ...ctx.post,
    schema: {
      summary: 'Save the policy',
      body: body({
        requireAll: Type.Optional(Type.Unknown({ description: 'Require two-factor for everyone (true/false).' })),
        graceDays: Type.Optional(Type.Unknown({ description: 'Days (0–365) during which users may still skip.' })),
        requiredRoles: Type.Optional(Type.Unknown({ description: 'Roles that must use two-factor: a list, or comma-separated.' })),
        exemptRoles: Type.Optional(Type.Unknown({ description: 'Roles left out of “everyone”.' })),
        allowSkip: Type.Optional(Type.Unknown({ description: 'Offer “Skip for now” for per-user and per-role requirements.' }))
      }),
      response
    }
  }, async (request, reply) => {
    const previous = await admin.policy()
    const json = String(request.headers['content-type'] ?? '').includes('application/json')
    const parsed = parsePolicyInput(request.body, json, previous)
    const enrolled = await actorEnrolled(request)
    if (!('requireAll' in parsed)) throw fail('invalid_input', { message: parsed.message, params: parsed.params, view: refusal(request, previous, undefined, enrolled) })
    const actor = actorOf(request)
    // With "require for everyone" on, an admin without 2FA would have to set it up at their next
    // sign-in, and one locked out of the panel can't undo it.
    if (parsed.requireAll && !previous.requireAll && !enrolled) {
      throw fail('not_allowed_by_policy', { message: 'admin.policy.enrol_first', view: refusal(request, previous, parsed, enrolled) })
    }
    const saved = await admin.setPolicy(parsed, auditContextOf(request, actor.profile.userId))
    if (!wantsJson(request) && !isHtmx(request)) return reply.redirect(`${base}/policy`, 303)
    const notice = ctx.t(request)('admin.policy.saved')
    return await send(request, reply, saved, { ...saved, notice }, { notice })
  })
}
