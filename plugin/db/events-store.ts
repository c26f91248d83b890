// Queries on `two_factor.events`, the audit log.
import { and, count, desc, eq, gte, lt, sql, type SQL } from 'drizzle-orm'
import type { TwoFactorDatabase } from './database.ts'
import { events } from './schema.ts'

export type EventRow = typeof events.$inferSelect
export type NewEvent = typeof events.$inferInsert

export interface EventQuery {
  userId?: string
  type?: string
  /** Only events strictly older than this (for paging newest-first). */
  before?: Date
  limit: number
}

export class EventsStore {
  // Every sign-in and every failure writes an event: prepared once, like AccountsStore's lookups.
  private readonly insertEvent

  constructor (private readonly db: TwoFactorDatabase) {
    const value = (name: string) => sql.placeholder(name)
    this.insertEvent = db.insert(events).values({
      at: value('at'), userId: value('userId'), actor: value('actor'), ip: value('ip'),
      userAgent: value('userAgent'), type: value('type'), details: value('details')
    }).returning().prepare('two_factor_event_insert')
  }

  async insert (event: NewEvent): Promise<EventRow> {
    const rows = await this.insertEvent.execute({
      at: event.at ?? new Date(),
      userId: event.userId ?? null,
      actor: event.actor ?? null,
      ip: event.ip ?? null,
      userAgent: event.userAgent ?? null,
      type: event.type,
      details: event.details ?? {}
    })
    return rows[0]!
  }

  async list (query: EventQuery): Promise<EventRow[]> {
    const filters: SQL[] = []
    if (query.userId !== undefined) filters.push(eq(events.userId, query.userId))
    if (query.type !== undefined) filters.push(eq(events.type, query.type))
    if (query.before !== undefined) filters.push(lt(events.at, query.before))
    return await this.db.select().from(events)
      .where(filters.length > 0 ? and(...filters) : undefined)
      .orderBy(desc(events.at), desc(events.id))
      .limit(query.limit)
  }

  async countSince (userId: string, type: string, since: Date): Promise<number> {
    const rows = await this.db.select({ n: count() }).from(events)
      .where(and(eq(events.userId, userId), eq(events.type, type), gte(events.at, since)))
    return Number(rows[0]?.n ?? 0)
  }
}
