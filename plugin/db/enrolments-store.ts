// Queries on `two_factor.enrolments`: the secrets the wizard has shown and nobody confirmed yet,
// one row per session that opened it (the session keeps the row's id, nothing else).
import { and, eq, gt, lte, ne, sql } from 'drizzle-orm'
import type { Executor, TwoFactorDatabase } from './database.ts'
import { enrolments } from './schema.ts'

export type EnrolmentRow = typeof enrolments.$inferSelect

export class EnrolmentsStore {
  constructor (private readonly db: TwoFactorDatabase) {}

  async create (row: EnrolmentRow): Promise<void> {
    await this.db.insert(enrolments).values(row)
  }

  /** The user's pending enrolment `id`, while it has not expired. */
  async find (id: string, userId: string, now: Date): Promise<EnrolmentRow | undefined> {
    const rows = await this.db.select().from(enrolments)
      .where(and(eq(enrolments.id, id), eq(enrolments.userId, userId), gt(enrolments.expiresAt, now))).limit(1)
    return rows[0]
  }

  /**
   * Takes the enrolment out, if it is still there and unexpired: of concurrent confirmations of
   * one enrolment, exactly one gets the row (the others wait on its lock and find nothing).
   */
  async take (tx: Executor, id: string, userId: string, now: Date): Promise<EnrolmentRow | undefined> {
    const rows = await tx.delete(enrolments)
      .where(and(eq(enrolments.id, id), eq(enrolments.userId, userId), gt(enrolments.expiresAt, now))).returning()
    return rows[0]
  }

  /** The user's other pending enrolments end when one is confirmed: they were for a secret that is no longer coming. */
  async deleteOthers (tx: Executor, userId: string, keepId: string): Promise<void> {
    await tx.delete(enrolments).where(and(eq(enrolments.userId, userId), ne(enrolments.id, keepId)))
  }

  async pruneExpired (now: Date): Promise<number> {
    const rows = await this.db.delete(enrolments).where(lte(enrolments.expiresAt, now)).returning({ id: enrolments.id })
    return rows.length
  }

  /** Whether the user has an unexpired pending enrolment (the CLI's "setup started"). */
  static pendingFor (userIdColumn: unknown, now: Date) {
    return sql`exists (select 1 from ${enrolments} e where e.user_id = ${userIdColumn} and e.expires_at > ${now.toISOString()}::timestamptz)`
  }
}
