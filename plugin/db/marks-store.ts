// Queries on `two_factor.marks`: "once per window" decided by the database. Taking a mark is
// one upsert that succeeds only when the mark is absent or has lapsed, so of concurrent
// requests exactly one takes it, on every instance.
import { lte, sql } from 'drizzle-orm'
import type { TwoFactorDatabase } from './database.ts'
import { marks } from './schema.ts'

export class MarksStore {
  private readonly takeStatement

  constructor (private readonly db: TwoFactorDatabase) {
    const now = sql`${sql.placeholder('now')}::timestamptz`
    this.takeStatement = db.insert(marks).values({ key: sql.placeholder('key'), until: sql`${sql.placeholder('until')}::timestamptz` })
      .onConflictDoUpdate({ target: marks.key, set: { until: sql`excluded.until` }, setWhere: lte(marks.until, now) })
      .returning({ key: marks.key }).prepare('two_factor_mark_take')
  }

  /** True when this call took the mark `key` until `until` (nobody held it, or theirs had lapsed). */
  async take (key: string, now: Date, until: Date): Promise<boolean> {
    const rows = await this.takeStatement.execute({ key, now: now.toISOString(), until: until.toISOString() })
    return rows.length === 1
  }

  async pruneExpired (now: Date): Promise<void> {
    await this.db.delete(marks).where(lte(marks.until, now))
  }
}
