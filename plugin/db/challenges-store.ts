// Queries on `two_factor.challenges`: how many codes each code prompt (a pending sign-in) has
// been sent. The count lives in the database, not the session, so concurrent wrong codes on one
// prompt each count: the last session write would otherwise win.
import { eq, getTableColumns, lte, sql } from 'drizzle-orm'
import type { AccountRow } from './accounts-store.ts'
import type { TwoFactorDatabase } from './database.ts'
import { accounts, challenges } from './schema.ts'

/** One attempt, counted: how many the prompt has had (this one included), and the account it is checked against. */
export interface CountedAttempt {
  attempts: number
  account: AccountRow | undefined
}

export class ChallengesStore {
  private readonly count
  private readonly read

  constructor (private readonly db: TwoFactorDatabase) {
    // The row is made by the first attempt: a prompt that is never answered costs nothing.
    const counted = db.$with('counted').as(db.insert(challenges).values({
      id: sql.placeholder('id'),
      userId: sql.placeholder('userId'),
      attempts: 1,
      expiresAt: sql`${sql.placeholder('expiresAt')}::timestamptz`
    }).onConflictDoUpdate({ target: challenges.id, set: { attempts: sql`${challenges.attempts} + 1` } })
      .returning({ attempts: challenges.attempts, userId: challenges.userId }))
    // The account row comes back with the count: every attempt reads it next, and one round
    // trip less per code is a good part of a sign-in's time. The count is still taken before
    // the code is looked at, and whatever the row says is checked again by the conditional
    // UPDATE that takes a step or counts a failure, so a row a concurrent request changes a
    // moment later decides nothing here.
    this.count = db.with(counted).select({ attempts: counted.attempts, promptUserId: counted.userId, account: getTableColumns(accounts) })
      .from(counted).leftJoin(accounts, eq(accounts.userId, sql.placeholder('userId')))
      .prepare('two_factor_challenge_attempt')
    this.read = db.select({ attempts: challenges.attempts }).from(challenges)
      .where(eq(challenges.id, sql.placeholder('id'))).limit(1).prepare('two_factor_challenge_read')
  }

  /** Counts one attempt at prompt `id` by `userId`, and reads `userId`'s account, in one statement. */
  async countAttempt (id: string, userId: string, expiresAt: Date): Promise<CountedAttempt> {
    const rows = await this.count.execute({ id, userId, expiresAt: expiresAt.toISOString() })
    const row = rows[0]!
    // An id is random and names one user's prompt; one that names another user counts as used up.
    const attempts = row.promptUserId === userId ? row.attempts : Number.MAX_SAFE_INTEGER
    return { attempts, account: row.account ?? undefined }
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
