// Queries on `two_factor.accounts`. Everything that must hold under concurrency (single-use
// TOTP steps, the failure counter, confirming an enrolment) is one conditional UPDATE, so
// Postgres row locking decides races, also across several app instances.
import { and, eq, gt, isNull, lt, lte, or, sql } from 'drizzle-orm'
import type { TwoFactorDatabase } from './database.ts'
import { accounts, recoveryCodes } from './schema.ts'

export type AccountRow = typeof accounts.$inferSelect

export interface LockoutRule {
  /** Consecutive failures that start a lockout. */
  threshold: number
  /** Length of the first lockout, in ms; each further lockout doubles it. */
  baseMs: number
  /** The longest a lockout can be, in ms. */
  maxMs: number
}

export interface FailureOutcome {
  /** Failures counted since the last success or lockout (0 right after a lockout starts). */
  failedAttempts: number
  lockedUntil: Date | null
  /** True when this failure started a lockout. */
  lockStarted: boolean
}

/**
 * The reads every sign-in makes, prepared once: unprepared, drizzle rebuilds the query on each
 * call and postgres.js spends a second round trip describing its parameters (bench/README.md).
 */
function prepareLookups (db: TwoFactorDatabase) {
  const userId = sql.placeholder('userId')
  return {
    find: db.select().from(accounts).where(eq(accounts.userId, userId)).limit(1).prepare('two_factor_account_find'),
    insert: db.insert(accounts).values({ userId }).onConflictDoNothing().returning().prepare('two_factor_account_insert')
  }
}

// Dates go into the prepared guards as ISO text cast in SQL: drizzle converts a Date for a
// column it binds, not for a placeholder.
const NOW = sql`${sql.placeholder('now')}::timestamptz`
const NOT_LOCKED = or(isNull(accounts.lockedUntil), lte(accounts.lockedUntil, NOW))
const CLEARED = { failedAttempts: 0, lockouts: 0, lockedUntil: null, updatedAt: NOW }

/** The race-deciding UPDATEs a code's check ends in, prepared once for the same reason: each stays ONE conditional statement. */
function prepareGuards (db: TwoFactorDatabase) {
  const userId = sql.placeholder('userId')
  const step = sql`${sql.placeholder('step')}`
  return {
    consumeStep: db.update(accounts).set({ lastUsedStep: step, ...CLEARED })
      .where(and(eq(accounts.userId, userId), or(isNull(accounts.lastUsedStep), lt(accounts.lastUsedStep, step)), NOT_LOCKED))
      .returning({ userId: accounts.userId }).prepare('two_factor_consume_step'),
    clearFailures: db.update(accounts).set(CLEARED).where(eq(accounts.userId, userId)).prepare('two_factor_clear_failures')
  }
}

/** The failure counter's UPDATE for one lockout rule (fixed per plugin instance, so its numbers are part of the statement). */
function prepareRecordFailure (db: TwoFactorDatabase, rule: LockoutRule) {
  const reachesLimit = sql`${accounts.failedAttempts} + 1 >= ${rule.threshold}`
  const lockSeconds = sql`least(${rule.baseMs / 1000}::float8 * power(2, ${accounts.lockouts}), ${rule.maxMs / 1000}::float8)`
  return db.update(accounts).set({
    failedAttempts: sql`case when ${reachesLimit} then 0 else ${accounts.failedAttempts} + 1 end`,
    lockouts: sql`case when ${reachesLimit} then ${accounts.lockouts} + 1 else ${accounts.lockouts} end`,
    lockedUntil: sql`case when ${reachesLimit} then ${NOW} + make_interval(secs => ${lockSeconds}) else ${accounts.lockedUntil} end`,
    updatedAt: NOW
  }).where(and(eq(accounts.userId, sql.placeholder('userId')), NOT_LOCKED))
    .returning({ failedAttempts: accounts.failedAttempts, lockedUntil: accounts.lockedUntil })
    .prepare('two_factor_record_failure')
}

export class AccountsStore {
  private readonly lookups: ReturnType<typeof prepareLookups>
  private readonly guards: ReturnType<typeof prepareGuards>
  private readonly failureCounters = new Map<string, ReturnType<typeof prepareRecordFailure>>()

  constructor (private readonly db: TwoFactorDatabase) {
    this.lookups = prepareLookups(db)
    this.guards = prepareGuards(db)
  }

  async find (userId: string): Promise<AccountRow | undefined> {
    const rows = await this.lookups.find.execute({ userId })
    return rows[0]
  }

  /** The account row, created on first sight. Most sign-ins are by users seen before: look first. */
  async ensure (userId: string): Promise<AccountRow> {
    const existing = await this.find(userId)
    if (existing !== undefined) return existing
    const inserted = await this.lookups.insert.execute({ userId })
    return inserted[0] ?? (await this.find(userId))!
  }

  /** Starting again replaces a pending secret; the active secret is left alone (SPEC §6). */
  async setPendingSecret (userId: string, sealed: string, now: Date): Promise<void> {
    await this.db.insert(accounts)
      .values({ userId, pendingSecret: sealed, pendingCreatedAt: now })
      .onConflictDoUpdate({
        target: accounts.userId,
        set: { pendingSecret: sealed, pendingCreatedAt: now, updatedAt: now }
      })
  }

  /**
   * Makes the pending secret the active one, if it is still the secret the code was checked
   * against and the code's step is fresh. One statement: a replayed or raced confirmation
   * changes nothing and returns false.
   */
  async confirmPendingSecret (tx: TwoFactorDatabase, userId: string, sealedPending: string, step: number, now: Date): Promise<boolean> {
    const rows = await tx.update(accounts).set({
      secret: sealedPending,
      enabledAt: now,
      pendingSecret: null,
      pendingCreatedAt: null,
      lastUsedStep: step,
      failedAttempts: 0,
      updatedAt: now
    }).where(and(
      eq(accounts.userId, userId),
      eq(accounts.pendingSecret, sealedPending),
      or(isNull(accounts.lastUsedStep), lt(accounts.lastUsedStep, step))
    )).returning({ userId: accounts.userId })
    return rows.length === 1
  }

  /**
   * The single-use guard of SPEC §2: accepts `step` only if it is newer than every step used
   * before and the account is not locked; a success also clears the failure counter.
   */
  async consumeStep (userId: string, step: number, now: Date): Promise<boolean> {
    const rows = await this.guards.consumeStep.execute({ userId, step, now: now.toISOString() })
    return rows.length === 1
  }

  /** A success by another factor (a recovery code) clears the counter the same way. */
  async clearFailures (userId: string, now: Date): Promise<void> {
    await this.guards.clearFailures.execute({ userId, now: now.toISOString() })
  }

  /**
   * Counts one failure. Failures while locked are not counted, so a burst of concurrent wrong
   * codes engages the lock exactly once; the lock's length doubles with each lockout.
   */
  async recordFailure (userId: string, rule: LockoutRule, now: Date): Promise<FailureOutcome> {
    const key = `${rule.threshold}/${rule.baseMs}/${rule.maxMs}`
    let statement = this.failureCounters.get(key)
    if (statement === undefined) this.failureCounters.set(key, statement = prepareRecordFailure(this.db, rule))
    const rows = await statement.execute({ userId, now: now.toISOString() })
    const row = rows[0]
    if (row === undefined) {
      const current = await this.find(userId)
      return { failedAttempts: current?.failedAttempts ?? 0, lockedUntil: current?.lockedUntil ?? null, lockStarted: false }
    }
    const lockStarted = row.lockedUntil !== null && row.lockedUntil > now && row.failedAttempts === 0
    return { failedAttempts: row.failedAttempts, lockedUntil: row.lockedUntil, lockStarted }
  }

  /** Clears secret, pending secret and recovery codes together (disable, admin reset). */
  async clearEnrolment (userId: string, now: Date): Promise<boolean> {
    return await this.db.transaction(async (tx) => {
      const rows = await tx.update(accounts).set({
        secret: null, enabledAt: null, pendingSecret: null, pendingCreatedAt: null,
        // The replay guard belongs to the secret being cleared: a new secret's codes share no
        // history with it, and keeping the old step would refuse a right code at re-enrolment.
        lastUsedStep: null,
        updatedAt: now
      }).where(eq(accounts.userId, userId)).returning({ userId: accounts.userId })
      await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId))
      return rows.length === 1
    })
  }

  async setRequired (userId: string, required: boolean | null, now: Date): Promise<void> {
    await this.db.insert(accounts).values({ userId, required })
      .onConflictDoUpdate({ target: accounts.userId, set: { required, updatedAt: now } })
  }

  /** Sets the admin default only where nobody has decided yet (SPEC §8: new admins required). */
  async applyDefaultRequired (userId: string, required: boolean, now: Date): Promise<void> {
    await this.db.insert(accounts).values({ userId, required })
      .onConflictDoUpdate({
        target: accounts.userId,
        set: { required, updatedAt: now },
        setWhere: isNull(accounts.required)
      })
  }

  async unlock (userId: string, now: Date): Promise<boolean> {
    const rows = await this.db.update(accounts)
      .set({ failedAttempts: 0, lockouts: 0, lockedUntil: null, updatedAt: now })
      .where(and(eq(accounts.userId, userId), gt(accounts.lockedUntil, now)))
      .returning({ userId: accounts.userId })
    return rows.length === 1
  }
}
