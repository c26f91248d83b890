// The audit log: newest first, filtered by user, event type and time, paged by a cursor.
import { Type } from 'typebox'
import { parseTime } from '../../core/time.ts'
import { EVENT_TYPES } from '../../services/audit.ts'
import { fail } from '../../errors.ts'
import type { EventPageQuery } from '../../db/admin-store.ts'
import type { RouteContext, Typed } from '../context.ts'
import { answers, csrfToken } from '../schemas.ts'
import { adminData } from './view.ts'

export const EVENTS_PAGE_SIZE = 50

const eventJson = Type.Object({
  id: Type.Integer(),
  at: Type.String({ format: 'date-time' }),
  type: Type.String(),
  userId: Type.Union([Type.String(), Type.Null()]),
  actor: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(Type.String(), Type.Unknown())
})

export async function adminEventsRoutes (app: Typed, ctx: RouteContext & { base: string }): Promise<void> {
  const { core, renderer, base } = ctx

  app.get('/admin/events', {
    schema: {
      summary: 'The audit log, newest first',
      querystring: Type.Object({
        user: Type.Optional(Type.String({ maxLength: 1000 })),
        type: Type.Optional(Type.String({ maxLength: 1000, description: EVENT_TYPES.join(', ') })),
        before: Type.Optional(Type.String({ maxLength: 1000, description: 'Events before this time (UTC unless it says otherwise).' })),
        beforeId: Type.Optional(Type.String({ maxLength: 1000, description: 'With `before`: the cursor of the next page.' }))
      }),
      response: answers({
        200: {
          description: 'A page of events',
          schema: Type.Object({ events: Type.Array(eventJson), next: Type.Union([Type.Object({ before: Type.String(), beforeId: Type.Integer() }), Type.Null()]), csrfToken })
        }
      })
    }
  }, async (request, reply) => {
    const raw = request.query
    const text = (value: string | undefined, max: number): string => (value ?? '').trim().slice(0, max)
    const user = text(raw.user, 256)
    const type = text(raw.type, 64)
    const beforeText = text(raw.before, 40)
    const beforeIdText = text(raw.beforeId, 20)
    if (type !== '' && !(EVENT_TYPES as readonly string[]).includes(type)) throw fail('invalid_input', { message: 'admin.events.bad_type' })
    const before = beforeText === '' ? undefined : parseTime(beforeText)
    if (before === null) throw fail('invalid_input', { message: 'admin.events.bad_before' })
    if (beforeIdText !== '' && !/^\d{1,18}$/.test(beforeIdText)) throw fail('invalid_input', { message: 'admin.events.bad_before_id' })

    const query: EventPageQuery = {
      userId: user === '' ? undefined : user,
      type: type === '' ? undefined : type,
      before,
      beforeId: beforeIdText === '' ? undefined : Number(beforeIdText),
      limit: EVENTS_PAGE_SIZE
    }
    const { events, hasMore } = await core.stores.admin.eventsPage(query)
    const last = events.at(-1)
    const nextCursor = hasMore && last !== undefined ? { before: last.at.toISOString(), beforeId: last.id } : null
    const filters = new URLSearchParams()
    if (user !== '') filters.set('user', user)
    if (type !== '') filters.set('type', type)
    const older = nextCursor === null ? null : `${base}/events?${new URLSearchParams([...filters, ['before', nextCursor.before], ['beforeId', String(nextCursor.beforeId)]])}`
    const newest = before === undefined ? null : `${base}/events${filters.size > 0 ? `?${filters}` : ''}`
    return await renderer.send(request, reply, {
      page: 'pages/admin-events',
      partial: 'partials/admin-events',
      title: 'title.admin_events',
      json: {
        events: events.map((e) => ({ id: e.id, at: e.at.toISOString(), type: e.type, userId: e.userId, actor: e.actor, ip: e.ip, userAgent: e.userAgent, details: e.details })),
        next: nextCursor
      },
      data: adminData(request, base, ctx.options.prefix, 'events', {
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
