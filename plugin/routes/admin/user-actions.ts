// The admin list's row actions: require, reset, exempt, unlock. Each answers with the row: htmx
// swaps just that `<tr>` (its id is the target), JSON clients get the row as JSON, and a plain
// form post is sent back to the list it came from. Nobody acts on their own row.
import { Type } from 'typebox'
import { parseTime } from '../../core/time.ts'
import { MAX_EXEMPTION_MS, MAX_REASON_LENGTH } from '../../services/admin.ts'
import { auditContextOf, type RouteContext, type Typed } from '../context.ts'
import { answers, body } from '../schemas.ts'
import { actorOf } from './guard.ts'
import { adminRows, idParams, rowJson } from './user-row.ts'
import { utc } from './view.ts'

export async function adminUserActionRoutes (app: Typed, ctx: RouteContext & { base: string }): Promise<void> {
  const { admin } = ctx.core.services
  const now = ctx.options.clock
  const { rowOrNotFound, answerRow, refuse } = adminRows(ctx)

  const rowAnswer = answers({ 200: { description: 'The row after the change', schema: rowJson }, 303: { description: 'A plain form goes back to the list' } })
  const returnToField = { returnTo: Type.Optional(Type.String({ maxLength: 2048, description: 'The list page a plain form goes back to.' })) }

  app.post('/admin/users/:id/required', {
    ...ctx.post,
    schema: {
      summary: 'Require two-factor for a user, or stop requiring it (which clears their 2FA)',
      params: idParams,
      body: body({ required: Type.Optional(Type.Unknown({ description: 'true or false' })), ...returnToField }),
      response: rowAnswer
    }
  }, async (request, reply) => {
    const userId = request.params.id
    const row = await rowOrNotFound(userId)
    const raw = request.body.required
    const required = raw === true || raw === 'true' ? true : raw === false || raw === 'false' ? false : null
    if (required === null) throw refuse(request, row, 'invalid_input', 'admin.required_value')
    const actor = actorOf(request).profile
    if (!required && userId === actor.userId) throw refuse(request, row, 'not_allowed_by_policy', 'admin.self_lift')
    await admin.setRequired(userId, required, auditContextOf(request, actor.userId))
    const after = await rowOrNotFound(userId)
    return await answerRow(request, reply, after, required ? 'admin.required_on' : 'admin.required_off', { user: after.label })
  })

  app.post('/admin/users/:id/reset', {
    ...ctx.post,
    schema: {
      summary: 'Reset a user’s 2FA (secret and codes cleared; they enrol again), with a reason',
      params: idParams,
      body: body({ reason: Type.Optional(Type.Unknown({ description: `Why (up to ${MAX_REASON_LENGTH} characters); it goes into the audit log.` })), ...returnToField }),
      response: rowAnswer
    }
  }, async (request, reply) => {
    const userId = request.params.id
    const row = await rowOrNotFound(userId)
    const raw = request.body.reason
    const reason = typeof raw === 'string' ? raw.trim() : ''
    if (reason === '') throw refuse(request, row, 'invalid_input', 'admin.reason_missing')
    if (reason.length > MAX_REASON_LENGTH) throw refuse(request, row, 'invalid_input', 'admin.reason_long')
    const actor = actorOf(request).profile
    if (userId === actor.userId) throw refuse(request, row, 'not_allowed_by_policy', 'admin.self_reset')
    await admin.reset(userId, reason, auditContextOf(request, actor.userId))
    const after = await rowOrNotFound(userId)
    return await answerRow(request, reply, after, after.required ? 'admin.reset_done_required' : 'admin.reset_done', { user: after.label })
  })

  app.post('/admin/users/:id/exempt', {
    ...ctx.post,
    schema: {
      summary: 'Exempt a user from every rule until a date (break-glass), or end it early',
      params: idParams,
      body: body({
        until: Type.Optional(Type.Unknown({ description: 'When it ends: a date or time (UTC unless it says otherwise), up to a year ahead. Empty ends an exemption.' })),
        reason: Type.Optional(Type.Unknown({ description: `Why (up to ${MAX_REASON_LENGTH} characters); it goes into the audit log.` })),
        ...returnToField
      }),
      response: rowAnswer
    }
  }, async (request, reply) => {
    const userId = request.params.id
    const row = await rowOrNotFound(userId)
    const actor = actorOf(request).profile
    if (userId === actor.userId) throw refuse(request, row, 'not_allowed_by_policy', 'admin.self_exempt')
    const rawUntil = typeof request.body.until === 'string' ? request.body.until.trim() : request.body.until
    const context = auditContextOf(request, actor.userId)
    if (rawUntil === undefined || rawUntil === '' || rawUntil === null) {
      if (row.exemptUntil === null) throw refuse(request, row, 'invalid_input', 'admin.exempt_until_missing')
      await admin.exempt(userId, null, null, context)
      const after = await rowOrNotFound(userId)
      return await answerRow(request, reply, after, 'admin.exempt_ended', { user: after.label })
    }
    const until = typeof rawUntil === 'string' ? parseTime(rawUntil) : null
    if (until === null || until.getTime() <= now() || until.getTime() > now() + MAX_EXEMPTION_MS) throw refuse(request, row, 'invalid_input', 'admin.exempt_until_bad')
    const reason = typeof request.body.reason === 'string' ? request.body.reason.trim() : ''
    if (reason === '') throw refuse(request, row, 'invalid_input', 'admin.exempt_reason_missing')
    if (reason.length > MAX_REASON_LENGTH) throw refuse(request, row, 'invalid_input', 'admin.reason_long')
    await admin.exempt(userId, until, reason, context)
    const after = await rowOrNotFound(userId)
    return await answerRow(request, reply, after, 'admin.exempt_on', { user: after.label, until: utc(until) })
  })

  app.post('/admin/users/:id/unlock', {
    ...ctx.post,
    schema: { summary: 'Clear a lockout', params: idParams, body: body(returnToField), response: rowAnswer }
  }, async (request, reply) => {
    const userId = request.params.id
    const row = await rowOrNotFound(userId)
    const actor = actorOf(request).profile
    if (userId === actor.userId) throw refuse(request, row, 'not_allowed_by_policy', 'admin.self_unlock')
    await admin.unlock(userId, auditContextOf(request, actor.userId))
    const after = await rowOrNotFound(userId)
    return await answerRow(request, reply, after, 'admin.unlocked', { user: after.label })
  })
}
