// Queries on `two_factor.events`, the audit log.
import { and, count, eq, gte, sql } from 'drizzle-orm'
import { rowsOf, type Executor, type TwoFactorDatabase } from './database.ts'
import { events } from './schema.ts'

export type EventRow = typeof events.$inferSelect
export type NewEvent = typeof events.$inferInsert

export class EventsStore {
  // Every sign-in and every failure writes an event: prepared once.
  private readonly insertEvent

  constructor (private readonly db: TwoFactorDatabase) {
    const value = (name: string) => sql.placeholder(name)
    this.insertEvent = db.insert(events).values({
      at: value('at'), userId: value('userId'), actor: value('actor'), ip: value('ip'),
      userAgent: value('userAgent'), type: value('type'), details: value('details')
    }).returning().prepare('two_factor_event_insert')
  }

  /** An event on its own (sign-in decisions that change nothing else). */
  async insert (event: NewEvent & { at: Date }): Promise<EventRow> {
    const rows = await this.insertEvent.execute({
      at: event.at,
      userId: event.userId ?? null,
      actor: event.actor ?? null,
      ip: event.ip ?? null,
      userAgent: event.userAgent ?? null,
      type: event.type,
      details: event.details ?? {}
    })
    return rows[0]!
  }

  /** An event in the transaction of the change it records. */
  async insertIn (tx: Executor, event: NewEvent & { at: Date }): Promise<EventRow> {
    const rows = await tx.insert(events).values(event).returning()
    return rows[0]!
  }

  async countSince (userId: string, type: string, since: Date): Promise<number> {
    const rows = await this.db.select({ n: count() }).from(events)
      .where(and(eq(events.userId, userId), eq(events.type, type), gte(events.at, since)))
    return Number(rows[0]?.n ?? 0)
  }

  /**
   * Deletes the events older than `before`, in the caller's transaction, and says how many.
   * The count comes from the statement itself (drivers report affected rows differently).
   */
  async deleteBefore (tx: Executor, before: Date): Promise<number> {
    const rows = rowsOf<{ n: number | string }>(await tx.execute(sql`
      with deleted as (delete from ${events} where ${events.at} < ${before.toISOString()}::timestamptz returning 1)
      select count(*) as n from deleted`))
    return Number(rows[0]?.n ?? 0)
  }
}
