// Queries on `two_factor.challenges`: how many codes each code prompt (a pending sign-in) has
// been sent. The count lives in the database, not the session, so concurrent wrong codes on one
// prompt each count: the last session write would otherwise win.
import { eq, lte, sql } from 'drizzle-orm'
import type { TwoFactorDatabase } from './database.ts'
import { challenges } from './schema.ts'

export class ChallengesStore {
  private readonly count
  private readonly read

  constructor (private readonly db: TwoFactorDatabase) {
    // The row is made by the first attempt: a prompt that is never answered costs nothing.
    this.count = db.insert(challenges).values({
      id: sql.placeholder('id'),
      userId: sql.placeholder('userId'),
      attempts: 1,
      expiresAt: sql`${sql.placeholder('expiresAt')}::timestamptz`
    }).onConflictDoUpdate({ target: challenges.id, set: { attempts: sql`${challenges.attempts} + 1` } })
      .returning({ attempts: challenges.attempts, userId: challenges.userId }).prepare('two_factor_challenge_count')
    this.read = db.select({ attempts: challenges.attempts }).from(challenges)
      .where(eq(challenges.id, sql.placeholder('id'))).limit(1).prepare('two_factor_challenge_read')
  }

  /** Counts one attempt at prompt `id` and returns how many it has had, this one included. */
  async countAttempt (id: string, userId: string, expiresAt: Date): Promise<number> {
    const rows = await this.count.execute({ id, userId, expiresAt: expiresAt.toISOString() })
    const row = rows[0]!
    // An id is random and names one user's prompt; one that names another user counts as used up.
    return row.userId === userId ? row.attempts : Number.MAX_SAFE_INTEGER
  }

  async attempts (id: string): Promise<number> {
    const rows = await this.read.execute({ id })
    return rows[0]?.attempts ?? 0
  }

  async pruneExpired (now: Date): Promise<number> {
    const rows = await this.db.delete(challenges).where(lte(challenges.expiresAt, now)).returning({ id: challenges.id })
    return rows.length
  }
}
