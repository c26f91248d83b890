// The admin users list with inline toggles. Each row action answers with the row: htmx swaps
// just that `<tr>` (its id is the target), JSON clients get the row as JSON, and a plain form
// post is sent back to the list it came from.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { safeLocation } from '../../core/location.ts'
import { fail } from '../../errors.ts'
import { PAGE_SIZE, parseStatusFilter, STATUS_FILTERS, type AdminUserRow, type UsersPage } from '../../services/admin-users.ts'
import { describeRequirement, type MessageKey, type MessageParams, type Translate } from '../../views/messages.ts'
import { isHtmx, wantsJson } from '../../views/renderer.ts'
import { auditContextOf, type RouteContext, type Typed } from '../context.ts'
import { answers, body, csrfToken } from '../schemas.ts'
import { actorOf } from './guard.ts'
import { parseTime } from '../../core/time.ts'
import { adminData, utc } from './view.ts'

export const MAX_REASON = 500
/** An exemption is for an emergency: a year at most. */
const DAY_MS = 24 * 60 * 60_000
const MAX_EXEMPTION_MS = 366 * DAY_MS
const MAX_QUERY = 200

const STATUS_ICONS: Record<AdminUserRow['status'], string> = { enrolled: '✓', awaiting: '⏳', 'not-required': '—', locked: '🔒' }

function dateOnly (ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

/** A user id as an HTML id (and CSS selector): hex keeps any id safe in both. */
export function rowHtmlId (userId: string): string {
  return `tf-user-${Buffer.from(userId, 'utf8').toString('hex')}`
}

const rowJson = Type.Object({
  id: Type.String(),
  label: Type.String(),
  known: Type.Boolean({ description: 'False when the app no longer has this user.' }),
  status: Type.Enum(['enrolled', 'awaiting', 'not-required', 'locked']),
  required: Type.Boolean(),
  requiredFlag: Type.Union([Type.Boolean(), Type.Null()], { description: 'The admin’s flag: null while nobody decided.' }),
  requiredBy: Type.Union([Type.String(), Type.Null()]),
  lockedUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  enabledAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  exemptUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'An admin exempted the account from every rule until then.' }),
  exemptReason: Type.Union([Type.String(), Type.Null()]),
  notice: Type.Optional(Type.String()),
  csrfToken: Type.Optional(csrfToken)
})

const idParams = Type.Object({ id: Type.String({ maxLength: 256, description: 'The user id, as the app stores it.' }) })

export async function adminUsersRoutes (app: Typed, ctx: RouteContext & { base: string }): Promise<void> {
  const { core, renderer, base } = ctx
  const { adminUsers, admin } = core.services
  const now = ctx.options.clock

  function toJson (t: Translate, row: AdminUserRow) {
    return {
      id: row.userId,
      label: row.label,
      known: row.known,
      status: row.status,
      required: row.required,
      requiredFlag: row.requiredFlag,
      requiredBy: row.required ? describeRequirement(t, row.requiredBy) : null,
      exemptUntil: row.exemptUntil?.toISOString() ?? null,
      exemptReason: row.exemptReason,
      lockedUntil: row.lockedUntil?.toISOString() ?? null,
      enabledAt: row.enabledAt?.toISOString() ?? null
    }
  }

  /** What the row template needs besides the row: ids, action URLs, which buttons to show. */
  function rowView (request: FastifyRequest, row: AdminUserRow, extra: { returnTo: string, error?: string, notice?: string }) {
    const t = ctx.t(request)
    const self = row.userId === actorOf(request).profile.userId
    return {
      ...row,
      requiredBy: describeRequirement(t, row.requiredBy),
      htmlId: rowHtmlId(row.userId),
      actions: `${base}/users/${encodeURIComponent(row.userId)}`,
      self,
      statusIcon: STATUS_ICONS[row.status],
      statusText: row.status === 'locked' && row.lockedUntil !== null ? t('admin.status.locked_until', { until: utc(row.lockedUntil) }) : t(`admin.status.${row.status}`),
      // What the toggle turns: the admin flag, or the admin default while nobody has decided.
      requiredByFlag: row.requiredFlag === true || (row.requiredFlag === null && row.isAdmin),
      enrolledOrPending: row.status === 'enrolled' || row.status === 'locked' || row.enabledAt !== null,
      exemptText: row.exemptUntil === null ? null : t('admin.exempt.row', { until: utc(row.exemptUntil), reason: row.exemptReason ?? '' }),
      // The date field's bounds: tomorrow to a year ahead (the route checks the same limit).
      exemptMin: dateOnly(now() + DAY_MS),
      exemptMax: dateOnly(now() + MAX_EXEMPTION_MS - DAY_MS),
      returnTo: extra.returnTo,
      error: extra.error,
      notice: extra.notice
    }
  }

  function listUrl (page: Pick<UsersPage, 'q' | 'status'>, pageNumber: number, from: number | null = null): string {
    const query = new URLSearchParams()
    if (page.q !== '') query.set('q', page.q)
    if (page.status !== 'all') query.set('status', page.status)
    if (pageNumber > 1) query.set('page', String(pageNumber))
    if (from !== null) query.set('from', String(from))
    const text = query.toString()
    return `${base}/users${text === '' ? '' : `?${text}`}`
  }

  app.get('/admin', async (request, reply) => renderer.redirect(request, reply, `${base}/users`))

  app.get('/admin/users', {
    schema: {
      summary: 'The users list: search, status filter, 25 a page',
      querystring: Type.Object({
        q: Type.Optional(Type.String({ maxLength: 1000 })),
        status: Type.Optional(Type.String({ maxLength: 40, description: STATUS_FILTERS.join(', ') })),
        page: Type.Optional(Type.String({ maxLength: 12 })),
        from: Type.Optional(Type.String({ maxLength: 12, description: 'Where the walk of a filtered view continues (from the previous page’s next link).' }))
      }),
      response: answers({
        200: {
          description: 'A page of users',
          schema: Type.Object({
            users: Type.Array(rowJson),
            total: Type.Union([Type.Integer(), Type.Null()]),
            page: Type.Integer(),
            pageCount: Type.Union([Type.Integer(), Type.Null()]),
            pageSize: Type.Integer(),
            next: Type.Union([Type.String(), Type.Null()]),
            previous: Type.Union([Type.String(), Type.Null()]),
            csrfToken
          })
        }
      })
    }
  }, async (request, reply) => {
    const query = request.query
    const q = (query.q ?? '').trim().slice(0, MAX_QUERY)
    const status = parseStatusFilter(query.status)
    const pageNumber = query.page === undefined || query.page === '' ? 1 : Number(query.page)
    const from = query.from === undefined || query.from === '' ? undefined : Number(query.from)
    if (status === null) throw fail('invalid_input', { message: 'admin.bad_status', params: { statuses: STATUS_FILTERS.join(', ') } })
    if (!Number.isInteger(pageNumber) || pageNumber < 1 || pageNumber > 1_000_000) throw fail('invalid_input', { message: 'admin.bad_page' })
    if (from !== undefined && (!Number.isInteger(from) || from < 0 || from > 100_000_000)) throw fail('invalid_input', { message: 'admin.bad_from' })

    const t = ctx.t(request)
    const page = await adminUsers.page({ q, status, page: pageNumber, from })
    const returnTo = listUrl(page, page.page, from ?? null)
    const next = page.hasNext ? listUrl(page, page.page + 1, page.nextFrom) : null
    const previous = page.page > 1 ? listUrl(page, page.pageCount === null ? page.page - 1 : Math.min(page.page - 1, page.pageCount)) : null
    return await renderer.send(request, reply, {
      page: 'pages/admin-users',
      partial: 'partials/admin-users',
      title: 'title.admin_users',
      json: { users: page.users.map((row) => toJson(t, row)), total: page.total, page: page.page, pageCount: page.pageCount, pageSize: PAGE_SIZE, next, previous },
      data: adminData(request, base, ctx.options.prefix, 'users', {
        list: {
          ...page,
          rows: page.users.map((row) => rowView(request, row, { returnTo })),
          filters: STATUS_FILTERS.map((value) => ({ value, label: t(`admin.filter.${value}`) })),
          previous,
          next,
          first: page.users.length === 0 ? 0 : (page.page - 1) * PAGE_SIZE + 1,
          last: (page.page - 1) * PAGE_SIZE + page.users.length
        }
      })
    })
  })

  async function rowOrNotFound (userId: string): Promise<AdminUserRow> {
    const row = await adminUsers.row(userId)
    if (row === null) throw fail('not_found')
    return row
  }

  /** The list a plain form came from (only our own list pages), for the redirect after it. */
  function returnToOf (request: FastifyRequest): string {
    const value = (request.body as { returnTo?: unknown } | undefined)?.returnTo
    const safe = safeLocation(value, `${base}/users`)
    return safe.startsWith(`${base}/users`) ? safe : `${base}/users`
  }

  /** One user on a page of their own: the no-JavaScript answer to a refused action, and a link target. */
  function userPage (request: FastifyRequest, row: AdminUserRow, extra: { error?: string, notice?: string }) {
    return {
      page: 'pages/admin-user',
      partial: 'partials/admin-user-row',
      title: 'title.admin_user',
      titleParams: { user: row.label },
      data: { ...adminData(request, base, ctx.options.prefix, 'users', {}), row: rowView(request, row, { returnTo: returnToOf(request), ...extra }) }
    }
  }

  /** After a change: the row for htmx and JSON, the list again for a plain form. */
  async function answerRow (request: FastifyRequest, reply: FastifyReply, row: AdminUserRow, notice: MessageKey, params: MessageParams = {}) {
    if (!wantsJson(request) && !isHtmx(request)) return reply.redirect(returnToOf(request), 303)
    const text = ctx.t(request)(notice, params)
    const view = userPage(request, row, { notice: text })
    return await renderer.send(request, reply, { ...view, json: { ...toJson(ctx.t(request), row), notice: text } })
  }

  /** A refused action: the row again with the error in it. */
  function refuse (request: FastifyRequest, row: AdminUserRow, code: 'not_allowed_by_policy' | 'invalid_input', message: MessageKey) {
    const view = userPage(request, row, {})
    return fail(code, { message, json: toJson(ctx.t(request), row), view: { ...view, data: (error) => ({ ...view.data, row: { ...view.data.row, error } }) } })
  }

  app.get('/admin/users/:id', {
    schema: { summary: 'One user’s row', params: idParams, response: answers({ 200: { description: 'The row', schema: rowJson } }) }
  }, async (request, reply) => {
    const row = await rowOrNotFound(request.params.id)
    return await renderer.send(request, reply, { ...userPage(request, row, {}), json: toJson(ctx.t(request), row) })
  })

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
      body: body({ reason: Type.Optional(Type.Unknown({ description: `Why (up to ${MAX_REASON} characters); it goes into the audit log.` })), ...returnToField }),
      response: rowAnswer
    }
  }, async (request, reply) => {
    const userId = request.params.id
    const row = await rowOrNotFound(userId)
    const raw = request.body.reason
    const reason = typeof raw === 'string' ? raw.trim() : ''
    if (reason === '') throw refuse(request, row, 'invalid_input', 'admin.reason_missing')
    if (reason.length > MAX_REASON) throw refuse(request, row, 'invalid_input', 'admin.reason_long')
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
        reason: Type.Optional(Type.Unknown({ description: `Why (up to ${MAX_REASON} characters); it goes into the audit log.` })),
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
    if (reason.length > MAX_REASON) throw refuse(request, row, 'invalid_input', 'admin.reason_long')
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
