// One row of the admin users list, in each shape it is answered in: the JSON object, what the
// row template needs, a page of its own (the no-JavaScript answer), and the answer to a row action
// (the row for htmx and JSON, the list again for a plain form).
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { safeLocation } from '../../core/location.ts'
import { fail } from '../../errors.ts'
import { MAX_EXEMPTION_MS } from '../../services/admin.ts'
import type { AdminUserRow } from '../../services/admin-users.ts'
import { describeRequirement, type MessageKey, type MessageParams, type Translate } from '../../views/messages.ts'
import { isHtmx, wantsJson } from '../../views/renderer.ts'
import type { RouteContext } from '../context.ts'
import { csrfToken } from '../schemas.ts'
import { actorOf } from './guard.ts'
import { adminData, utc } from './view.ts'

const DAY_MS = 24 * 60 * 60_000

const STATUS_ICONS: Record<AdminUserRow['status'], string> = { enrolled: '✓', awaiting: '⏳', 'not-required': '—', locked: '🔒' }

function dateOnly (ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

/** A user id as an HTML id (and CSS selector): hex keeps any id safe in both. */
export function rowHtmlId (userId: string): string {
  return `tf-user-${Buffer.from(userId, 'utf8').toString('hex')}`
}

export const rowJson = Type.Object({
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

export const idParams = Type.Object({ id: Type.String({ maxLength: 256, description: 'The user id, as the app stores it.' }) })

export function adminRows (ctx: RouteContext & { base: string }) {
  const { base, renderer } = ctx
  const { adminUsers } = ctx.core.services
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

  return { toJson, rowView, rowOrNotFound, userPage, answerRow, refuse }
}
