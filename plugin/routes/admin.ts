// The admin panel (SPEC §9): the users list with inline toggles, the policy form and the audit
// log. Every route here sits behind the gate and answers only to a signed-in user the host's
// adapter calls an admin; a signed-in user who is not gets 403 and an `admin.denied` event.
//
// Each row action answers with the row: htmx swaps just that `<tr>` (its id is the target),
// JSON clients get the row as JSON, and a plain form post is sent back to the list it came from.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AdminUsers, PAGE_SIZE, parseStatusFilter, STATUS_FILTERS, type AdminUserRow, type UsersPage } from '../admin-users.ts'
import { EVENT_TYPES, type Audit } from '../audit.ts'
import type { PolicySettings } from '../core/policy.ts'
import type { AdminStore, EventPageQuery } from '../db/admin-store.ts'
import { InvalidInput, NotFound } from '../errors.ts'
import { isHtmx, wantsJson } from '../render.ts'
import type { UserProfile } from '../service.ts'
import { safeReturnTo } from '../session-state.ts'
import { bodyOf, stateOf, stringField, type RouteContext } from './context.ts'

export interface AdminContext extends RouteContext {
  audit: Audit
  adminStore: AdminStore
  adminUsers: AdminUsers
}

export const EVENTS_PAGE_SIZE = 50
const MAX_REASON = 500
const MAX_QUERY = 200
const ROLE_NAME = /^[\w.:@-]{1,64}$/
const MAX_ROLES = 50

const STATUS_LABELS: Record<AdminUserRow['status'], { icon: string, text: string }> = {
  enrolled: { icon: '✓', text: 'enrolled' },
  awaiting: { icon: '⏳', text: 'awaiting setup' },
  'not-required': { icon: '—', text: 'not required' },
  locked: { icon: '🔒', text: 'locked until' }
}

const FILTER_LABELS: Record<(typeof STATUS_FILTERS)[number], string> = {
  all: 'All users',
  enrolled: '✓ Enrolled',
  awaiting: '⏳ Awaiting setup',
  'not-required': '— Not required',
  locked: '🔒 Locked'
}

/** The signed-in admin of this request, set by the guard. */
const actors = new WeakMap<FastifyRequest, UserProfile>()

/** A user id as an HTML id (and CSS selector): hex keeps any id safe in both. */
export function rowHtmlId (userId: string): string {
  return `tf-user-${Buffer.from(userId, 'utf8').toString('hex')}`
}

function utc (date: Date): string {
  return date.toISOString().slice(0, 16).replace('T', ' ') + ' UTC'
}

export async function adminRoutes (app: FastifyInstance, ctx: AdminContext): Promise<void> {
  const { options, service, renderer, audit, adminUsers, adminStore } = ctx
  const { prefix } = options
  const base = `${prefix}/admin`

  // ── The guard ─────────────────────────────────────────────────────────────────────────────

  app.addHook('preHandler', async (request, reply) => {
    const state = stateOf(request, options)
    if (state?.state !== 'signed-in') {
      // Nobody to attribute it to, so no audit event: the log can't be filled without an account.
      return forbidden(request, reply, 'Sign in with an administrator account to use the admin panel.', true)
    }
    const profile = await service.profile(state.userId)
    if (profile === null || !profile.isAdmin) {
      await audit.record(request, 'admin.denied', {
        userId: state.userId,
        details: { method: request.method, route: request.routeOptions.url ?? request.url.split('?')[0] }
      })
      return forbidden(request, reply, 'Only administrators can use the two-factor admin panel.', false)
    }
    actors.set(request, profile)
  })

  function forbidden (request: FastifyRequest, reply: FastifyReply, message: string, signIn: boolean) {
    return renderer.message(request, reply, {
      title: 'Not allowed', status: 403, error: 'forbidden', message, link: signIn ? { href: options.loginPath, text: 'Sign in' } : undefined
    })
  }

  const actorOf = (request: FastifyRequest): UserProfile => actors.get(request)!

  function adminData (request: FastifyRequest, section: 'users' | 'policy' | 'events', extra: Record<string, unknown>) {
    return { admin: { base, prefix, section, actor: actorOf(request), ...extra } }
  }

  // ── Users ─────────────────────────────────────────────────────────────────────────────────

  function rowJson (row: AdminUserRow) {
    return {
      id: row.userId,
      label: row.label,
      known: row.known,
      status: row.status,
      required: row.required,
      requiredFlag: row.requiredFlag,
      requiredBy: row.required ? row.requiredBy : null,
      lockedUntil: row.lockedUntil?.toISOString() ?? null,
      enabledAt: row.enabledAt?.toISOString() ?? null
    }
  }

  /** What the row template needs besides the row: ids, action URLs, which buttons to show. */
  function rowView (request: FastifyRequest, row: AdminUserRow, extra: { returnTo: string, error?: string, notice?: string }) {
    const actor = actorOf(request)
    const label = STATUS_LABELS[row.status]
    // What the toggle turns: the admin flag, or the admin default while nobody has decided.
    const requiredByFlag = row.requiredFlag === true || (row.requiredFlag === null && row.isAdmin)
    return {
      ...row,
      htmlId: rowHtmlId(row.userId),
      actions: `${base}/users/${encodeURIComponent(row.userId)}`,
      self: row.userId === actor.userId,
      statusIcon: label.icon,
      statusText: row.status === 'locked' && row.lockedUntil !== null ? `${label.text} ${utc(row.lockedUntil)}` : label.text,
      requiredByFlag,
      enrolledOrPending: row.status === 'enrolled' || row.status === 'locked' || row.enabledAt !== null,
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

  app.get('/admin', async (request, reply) => renderer.redirect(request, reply, `${base}/users`, {}))

  app.get('/admin/users', async (request, reply) => {
    const query = request.query as Record<string, unknown>
    const q = typeof query.q === 'string' ? query.q.trim().slice(0, MAX_QUERY) : ''
    const status = parseStatusFilter(query.status)
    const pageNumber = query.page === undefined || query.page === '' ? 1 : Number(query.page)
    const from = query.from === undefined || query.from === '' ? undefined : Number(query.from)
    if (status === null) throw new InvalidInput(`Status must be one of: ${STATUS_FILTERS.join(', ')}.`)
    if (!Number.isInteger(pageNumber) || pageNumber < 1 || pageNumber > 1_000_000) throw new InvalidInput('Page must be a whole number from 1.')
    if (from !== undefined && (!Number.isInteger(from) || from < 0 || from > 100_000_000)) throw new InvalidInput('“from” must be a whole number from 0.')

    const page = await adminUsers.page({ q, status, page: pageNumber, from })
    const returnTo = listUrl(page, page.page, from ?? null)
    const next = page.hasNext ? listUrl(page, page.page + 1, page.nextFrom) : null
    const previous = page.page > 1 ? listUrl(page, page.pageCount === null ? page.page - 1 : Math.min(page.page - 1, page.pageCount)) : null
    return renderer.send(request, reply, {
      page: 'pages/admin-users',
      partial: 'partials/admin-users',
      title: 'Two-factor admin: users',
      json: { users: page.users.map(rowJson), total: page.total, page: page.page, pageCount: page.pageCount, pageSize: PAGE_SIZE, next, previous },
      data: adminData(request, 'users', {
        list: {
          ...page,
          rows: page.users.map((row) => rowView(request, row, { returnTo })),
          filters: STATUS_FILTERS.map((value) => ({ value, label: FILTER_LABELS[value] })),
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
    if (row === null) throw new NotFound()
    return row
  }

  /** The list a plain form came from (only our own list pages), for the redirect after it. */
  function returnToOf (request: FastifyRequest): string {
    const value = stringField(bodyOf(request), 'returnTo')
    const safe = safeReturnTo(value, `${base}/users`)
    return safe.startsWith(`${base}/users`) ? safe : `${base}/users`
  }

  /** One user on a page of their own: the no-JavaScript answer to a refused action, and a link target. */
  function renderUserPage (request: FastifyRequest, reply: FastifyReply, row: AdminUserRow, extra: { status?: number, error?: string, notice?: string, json?: unknown }) {
    const returnTo = returnToOf(request)
    const view = rowView(request, row, { returnTo, error: extra.error, notice: extra.notice })
    return renderer.send(request, reply, {
      page: 'pages/admin-user',
      partial: 'partials/admin-user-row',
      title: `Two-factor admin: ${row.label}`,
      status: extra.status,
      json: extra.json ?? rowJson(row),
      data: { ...adminData(request, 'users', {}), row: view }
    })
  }

  /** After a change: the row for htmx and JSON, the list again for a plain form. */
  function answerRow (request: FastifyRequest, reply: FastifyReply, row: AdminUserRow, notice: string) {
    if (!wantsJson(request) && !isHtmx(request)) return reply.redirect(returnToOf(request), 303)
    return renderUserPage(request, reply, row, { notice })
  }

  function refuse (request: FastifyRequest, reply: FastifyReply, row: AdminUserRow, status: 409 | 422, message: string) {
    return renderUserPage(request, reply, row, {
      status,
      error: message,
      json: { error: status === 409 ? 'not_allowed_by_policy' : 'invalid_input', message }
    })
  }

  app.get('/admin/users/:id', async (request, reply) => {
    const row = await rowOrNotFound((request.params as { id: string }).id)
    return renderUserPage(request, reply, row, {})
  })

  app.post('/admin/users/:id/required', ctx.post, async (request, reply) => {
    const userId = (request.params as { id: string }).id
    const row = await rowOrNotFound(userId)
    const raw = bodyOf(request).required
    const required = raw === true || raw === 'true' ? true : raw === false || raw === 'false' ? false : null
    if (required === null) return refuse(request, reply, row, 422, 'Say required=true or required=false.')
    const actor = actorOf(request)
    if (!required && userId === actor.userId) {
      return refuse(request, reply, row, 409, 'You can’t lift your own requirement here: it would turn off your own two-factor authentication. Another admin, or the two-factor CLI, can.')
    }
    await service.setRequired(userId, required, { actor: actor.userId, request })
    const after = await rowOrNotFound(userId)
    return answerRow(request, reply, after, required
      ? `Two-factor is now required for ${after.label}.`
      : `Two-factor is no longer required for ${after.label}; their authenticator and recovery codes were cleared.`)
  })

  app.post('/admin/users/:id/reset', ctx.post, async (request, reply) => {
    const userId = (request.params as { id: string }).id
    const row = await rowOrNotFound(userId)
    const reason = stringField(bodyOf(request), 'reason')?.trim() ?? ''
    if (reason === '') return refuse(request, reply, row, 422, 'Give a reason for the reset (it goes into the audit log).')
    if (reason.length > MAX_REASON) return refuse(request, reply, row, 422, `Keep the reason under ${MAX_REASON} characters.`)
    const actor = actorOf(request)
    if (userId === actor.userId) {
      return refuse(request, reply, row, 409, 'You can’t reset your own two-factor here; use your own settings page, or ask another admin.')
    }
    await service.reset(userId, { actor: actor.userId, request, reason })
    const after = await rowOrNotFound(userId)
    return answerRow(request, reply, after, `Two-factor was reset for ${after.label}: they set it up again at their next sign-in${after.required ? '' : ' if they choose to'}.`)
  })

  app.post('/admin/users/:id/unlock', ctx.post, async (request, reply) => {
    const userId = (request.params as { id: string }).id
    await rowOrNotFound(userId)
    await service.unlock(userId, { actor: actorOf(request).userId, request })
    const after = await rowOrNotFound(userId)
    return answerRow(request, reply, after, `${after.label} is unlocked.`)
  })

  // ── Policy ────────────────────────────────────────────────────────────────────────────────

  async function renderPolicy (request: FastifyRequest, reply: FastifyReply, policy: PolicySettings, extra: {
    status?: number
    error?: string
    notice?: string
    json?: unknown
    /** What was submitted, shown back when it is refused. */
    form?: PolicySettings
  } = {}) {
    const actorStatus = await service.status(actorOf(request).userId)
    const graceEndsAt = policy.requireAll && policy.requireAllSince !== null
      ? new Date(new Date(policy.requireAllSince).getTime() + policy.graceDays * 24 * 60 * 60 * 1000)
      : null
    return renderer.send(request, reply, {
      page: 'pages/admin-policy',
      partial: 'partials/admin-policy',
      title: 'Two-factor admin: policy',
      status: extra.status,
      json: extra.json ?? policy,
      data: adminData(request, 'policy', {
        policy: {
          saved: policy,
          form: extra.form ?? policy,
          since: policy.requireAllSince === null ? null : utc(new Date(policy.requireAllSince)),
          graceEnds: graceEndsAt === null ? null : utc(graceEndsAt),
          actorEnrolled: actorStatus.enabled,
          error: extra.error,
          notice: extra.notice
        }
      })
    })
  }

  app.get('/admin/policy', async (request, reply) => renderPolicy(request, reply, await service.policy()))

  app.post('/admin/policy', ctx.post, async (request, reply) => {
    const previous = await service.policy()
    const parsed = parsePolicyInput(request, previous)
    if (typeof parsed === 'string') {
      return renderPolicy(request, reply, previous, { status: 422, error: parsed, json: { error: 'invalid_input', message: parsed } })
    }
    const actor = actorOf(request)
    if (parsed.requireAll && !previous.requireAll && !(await service.status(actor.userId)).enabled) {
      const message = 'Set up two-factor authentication for your own account first: with “require for everyone” on, you would have to set it up at your next sign-in, and an admin locked out of the panel can’t undo this.'
      return renderPolicy(request, reply, previous, { status: 409, error: message, form: parsed, json: { error: 'not_allowed_by_policy', message } })
    }
    const saved = await service.setPolicy(parsed, { actor: actor.userId, request })
    if (!wantsJson(request) && !isHtmx(request)) return reply.redirect(`${base}/policy`, 303)
    return renderPolicy(request, reply, saved, { notice: 'Policy saved.' })
  })

  /**
   * Reads the policy form. A plain form leaves unticked checkboxes out, so for forms a missing
   * box means "off"; a JSON client may send only the fields it changes.
   */
  function parsePolicyInput (request: FastifyRequest, previous: PolicySettings): PolicySettings | string {
    const body = bodyOf(request)
    const json = String(request.headers['content-type'] ?? '').includes('application/json')
    const flag = (name: 'requireAll' | 'allowSkip'): boolean | string => {
      const value = body[name]
      if (value === undefined) return json ? previous[name] : false
      if (value === true || value === 'true' || value === 'on') return true
      if (value === false || value === 'false') return false
      return `${name} must be true or false.`
    }
    const roles = (name: 'requiredRoles' | 'exemptRoles'): string[] | string => {
      const value = body[name]
      if (value === undefined) return json ? previous[name] : []
      const list = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/[\s,]+/) : null
      if (list === null || !list.every((r) => typeof r === 'string')) return `${name} must be a list of role names.`
      const names = [...new Set((list as string[]).map((r) => r.trim()).filter((r) => r !== ''))]
      if (names.length > MAX_ROLES) return `At most ${MAX_ROLES} roles.`
      const bad = names.find((r) => !ROLE_NAME.test(r))
      if (bad !== undefined) return 'Role names are 1–64 letters, digits or . _ : @ - (separate them with commas).'
      return names
    }
    const rawGrace = body.graceDays
    const graceDays = rawGrace === undefined ? previous.graceDays : typeof rawGrace === 'number' ? rawGrace : typeof rawGrace === 'string' && /^\d{1,3}$/.test(rawGrace.trim()) ? Number(rawGrace.trim()) : NaN
    if (!Number.isInteger(graceDays) || graceDays < 0 || graceDays > 365) return 'The grace period is a whole number of days from 0 to 365.'
    const requireAll = flag('requireAll')
    const allowSkip = flag('allowSkip')
    const requiredRoles = roles('requiredRoles')
    const exemptRoles = roles('exemptRoles')
    for (const value of [requireAll, allowSkip, requiredRoles, exemptRoles]) if (typeof value === 'string') return value
    return {
      requireAll: requireAll as boolean,
      requireAllSince: previous.requireAllSince,
      graceDays,
      requiredRoles: requiredRoles as string[],
      exemptRoles: exemptRoles as string[],
      allowSkip: allowSkip as boolean
    }
  }

  // ── Audit log ─────────────────────────────────────────────────────────────────────────────

  app.get('/admin/events', async (request, reply) => {
    const raw = request.query as Record<string, unknown>
    const text = (name: string, max: number): string => typeof raw[name] === 'string' ? (raw[name] as string).trim().slice(0, max) : ''
    const user = text('user', 256)
    const type = text('type', 64)
    const beforeText = text('before', 40)
    const beforeIdText = text('beforeId', 20)
    if (type !== '' && !(EVENT_TYPES as readonly string[]).includes(type)) throw new InvalidInput('Unknown event type.')
    const before = beforeText === '' ? undefined : parseTime(beforeText)
    if (before === null) throw new InvalidInput('“Before” must be a date and time such as 2026-11-22T12:00 (UTC).')
    if (beforeIdText !== '' && !/^\d{1,18}$/.test(beforeIdText)) throw new InvalidInput('beforeId must be a number.')

    const query: EventPageQuery = {
      userId: user === '' ? undefined : user,
      type: type === '' ? undefined : type,
      before,
      beforeId: beforeIdText === '' ? undefined : Number(beforeIdText),
      limit: EVENTS_PAGE_SIZE
    }
    const { events, hasMore } = await adminStore.eventsPage(query)
    const last = events.at(-1)
    const nextCursor = hasMore && last !== undefined ? { before: last.at.toISOString(), beforeId: last.id } : null
    const filters = new URLSearchParams()
    if (user !== '') filters.set('user', user)
    if (type !== '') filters.set('type', type)
    const older = nextCursor === null ? null : `${base}/events?${new URLSearchParams([...filters, ['before', nextCursor.before], ['beforeId', String(nextCursor.beforeId)]])}`
    const newest = before === undefined ? null : `${base}/events${filters.size > 0 ? `?${filters}` : ''}`
    return renderer.send(request, reply, {
      page: 'pages/admin-events',
      partial: 'partials/admin-events',
      title: 'Two-factor admin: audit log',
      json: {
        events: events.map((e) => ({ id: e.id, at: e.at.toISOString(), type: e.type, userId: e.userId, actor: e.actor, ip: e.ip, userAgent: e.userAgent, details: e.details })),
        next: nextCursor
      },
      data: adminData(request, 'events', {
        log: {
          events: events.map((e) => ({ ...e, atText: e.at.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z'), detailsText: JSON.stringify(e.details) })),
          user,
          type,
          before: beforeText,
          types: EVENT_TYPES,
          older,
          newest
        }
      })
    })
  })
}

/** "2026-11-22", "2026-11-22T12:00", or a full ISO time; times without a zone are UTC. */
export function parseTime (value: string): Date | null {
  const match = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?))?(Z|[+-]\d{2}:\d{2})?$/.exec(value)
  if (match === null) return null
  const date = new Date(`${match[1]}T${match[2] ?? '00:00'}${match[3] ?? 'Z'}`)
  return Number.isNaN(date.getTime()) ? null : date
}
