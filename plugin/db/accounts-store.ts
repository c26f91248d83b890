// Queries on `two_factor.accounts`. Everything that must hold under concurrency (single-use
// TOTP steps, the failure counter, confirming an enrolment) is one conditional statement, so
// Postgres row locking decides races, also across several app instances.
//
// The statements every sign-in runs are prepared once on the plugin's database: unprepared,
// drizzle rebuilds each query and postgres.js spends a second round trip describing its
// parameters. Changes made inside a unit of work take the transaction as their first argument.
import { and, eq, gt, isNull, lt, lte, or, sql } from 'drizzle-orm'
import type { LockoutRule } from '../core/lockout.ts'
import type { TotpParams } from '../core/totp.ts'
import { rowsOf, type Executor, type TwoFactorDatabase } from './database.ts'
import { accounts, enrolments, events, recoveryCodes, trustedDevices } from './schema.ts'
import type { EventRow, NewEvent } from './events-store.ts'

export type AccountRow = typeof accounts.$inferSelect

export interface FailureOutcome {
  /** Failures counted since the last success or lockout (0 right after a lockout starts). */
  failedAttempts: number
  lockedUntil: Date | null
  /** True when this failure started a lockout. */
  lockStarted: boolean
}

/** An enrolment that becomes the account's active secret. */
export interface ConfirmedEnrolment {
  id: string
  secret: string
  params: Pick<TotpParams, 'algorithm' | 'digits' | 'period'>
}

// Dates go into prepared statements as ISO text cast in SQL: drizzle converts a Date for a
// column it binds, not for a placeholder.
const NOW = sql`${sql.placeholder('now')}::timestamptz`
const NOT_LOCKED = or(isNull(accounts.lockedUntil), lte(accounts.lockedUntil, NOW))
/** A success's reset of the failure counter (a TOTP step here, a recovery code in the recovery store). */
export const CLEARED_FAILURES = { failedAttempts: 0, lockouts: 0, lockedUntil: null, updatedAt: NOW }

function prepare (db: TwoFactorDatabase) {
  const userId = sql.placeholder('userId')
  const step = sql`${sql.placeholder('step')}::bigint`
  // The single-use guard and its audit event in one statement: a code's step is taken only if it
  // is newer than every step used before and the account is not locked, and the event exists
  // exactly when the step was taken.
  const used = db.$with('used').as(db.update(accounts).set({ lastUsedStep: step, ...CLEARED_FAILURES })
    .where(and(eq(accounts.userId, userId), or(isNull(accounts.lastUsedStep), lt(accounts.lastUsedStep, step)), NOT_LOCKED))
    .returning({ userId: accounts.userId }))
  return {
    find: db.select().from(accounts).where(eq(accounts.userId, userId)).limit(1).prepare('two_factor_account_find'),
    insert: db.insert(accounts).values({ userId }).onConflictDoNothing().returning().prepare('two_factor_account_insert'),
    useStep: db.with(used).insert(events).select(db.select(eventColumns(used.userId)).from(used)).returning().prepare('two_factor_use_step')
  }
}

/**
 * The columns of an event row inserted by a statement that also makes the change (INSERT …
 * SELECT lists every column, in the table's order).
 */
export function eventColumns (userId: unknown) {
  const value = (name: string, type: string) => sql`${sql.placeholder(name)}::${sql.raw(type)}`
  return {
    id: sql`nextval(pg_get_serial_sequence('two_factor.events', 'id'))`.as('id'),
    at: value('now', 'timestamptz').as('at'),
    userId: sql`${userId}`.as('user_id'),
    actor: sql`${userId}`.as('actor'),
    ip: value('ip', 'text').as('ip'),
    userAgent: value('userAgent', 'text').as('user_agent'),
    type: value('type', 'text').as('type'),
    details: value('details', 'jsonb').as('details')
  }
}

/**
 * The failure counter's UPDATE for one lockout rule (fixed per plugin instance, so its numbers
 * are part of the statement), with the failure's audit event in the same statement: one round
 * trip for every wrong code. The event is stored whether or not the counter moved (a failure
 * while locked is not counted, but is still a failure).
 */
function prepareRecordFailure (db: TwoFactorDatabase, rule: LockoutRule) {
  const reachesLimit = sql`${accounts.failedAttempts} + 1 >= ${rule.threshold}`
  const lockSeconds = sql`least(${rule.baseMs / 1000}::float8 * power(2, ${accounts.lockouts}), ${rule.maxMs / 1000}::float8)`
  const userId = sql.placeholder('userId')
  const failed = db.$with('failed').as(db.update(accounts).set({
    failedAttempts: sql`case when ${reachesLimit} then 0 else ${accounts.failedAttempts} + 1 end`,
    lockouts: sql`case when ${reachesLimit} then ${accounts.lockouts} + 1 else ${accounts.lockouts} end`,
    lockedUntil: sql`case when ${reachesLimit} then ${NOW} + make_interval(secs => ${lockSeconds}) else ${accounts.lockedUntil} end`,
    updatedAt: NOW
  }).where(and(eq(accounts.userId, userId), NOT_LOCKED))
    .returning({ failedAttempts: accounts.failedAttempts, lockedUntil: accounts.lockedUntil }))
  const value = (name: string, type: string) => sql`${sql.placeholder(name)}::${sql.raw(type)}`
  const stored = db.$with('stored').as(db.insert(events).values({
    at: NOW, userId, actor: value('actor', 'text'), ip: value('ip', 'text'), userAgent: value('userAgent', 'text'), type: value('type', 'text'), details: value('details', 'jsonb')
  }).returning())
  return db.with(failed, stored).select().from(stored).leftJoin(failed, sql`true`).prepare('two_factor_record_failure')
}

export class AccountsStore {
  private readonly prepared: ReturnType<typeof prepare>
  private readonly recordFailureStatement: ReturnType<typeof prepareRecordFailure>

  constructor (private readonly db: TwoFactorDatabase, lockout: LockoutRule) {
    this.prepared = prepare(db)
    this.recordFailureStatement = prepareRecordFailure(db, lockout)
  }

  async find (userId: string): Promise<AccountRow | undefined> {
    const rows = await this.prepared.find.execute({ userId })
    return rows[0]
  }

  /** The account row, created on first sight. Most sign-ins are by users seen before: look first. */
  async ensure (userId: string): Promise<AccountRow> {
    const existing = await this.find(userId)
    if (existing !== undefined) return existing
    const inserted = await this.prepared.insert.execute({ userId })
    return inserted[0] ?? (await this.find(userId))!
  }

  /**
   * Takes `step` as used and records `event` with it, in one statement; null when the step was
   * not newer than every step used before, or the account is locked (nothing is written then).
   */
  async useStep (userId: string, step: number, event: Omit<NewEvent, 'userId' | 'actor'> & { at: Date }): Promise<EventRow | null> {
    const rows = await this.prepared.useStep.execute({
      userId,
      step,
      now: event.at.toISOString(),
      ip: event.ip ?? null,
      userAgent: event.userAgent ?? null,
      type: event.type,
      details: JSON.stringify(event.details ?? {})
    })
    return (rows[0] as EventRow | undefined) ?? null
  }

  /**
   * Counts one failure and stores `event` with it. Failures while locked are not counted, so a
   * burst of concurrent wrong codes engages the lock exactly once; the lock's length doubles
   * with each lockout.
   */
  async recordFailure (userId: string, now: Date, event: Pick<NewEvent, 'actor' | 'ip' | 'userAgent' | 'type' | 'details'>): Promise<{ outcome: FailureOutcome, event: EventRow }> {
    const [row] = await this.recordFailureStatement.execute({
      userId,
      now: now.toISOString(),
      actor: event.actor ?? null,
      ip: event.ip ?? null,
      userAgent: event.userAgent ?? null,
      type: event.type,
      details: JSON.stringify(event.details ?? {})
    })
    const stored = row!.stored as EventRow
    const counted = row!.failed
    if (counted === null) {
      const current = await this.find(userId)
      return { outcome: { failedAttempts: current?.failedAttempts ?? 0, lockedUntil: current?.lockedUntil ?? null, lockStarted: false }, event: stored }
    }
    const lockStarted = counted.lockedUntil !== null && counted.lockedUntil > now && counted.failedAttempts === 0
    return { outcome: { failedAttempts: counted.failedAttempts, lockedUntil: counted.lockedUntil, lockStarted }, event: stored }
  }

  /** Sets the admin default only where nobody has decided yet (new admins are required). */
  async applyDefaultRequired (userId: string, now: Date): Promise<void> {
    await this.db.insert(accounts).values({ userId, required: true })
      .onConflictDoUpdate({ target: accounts.userId, set: { required: true, updatedAt: now }, setWhere: isNull(accounts.required) })
  }

  // ── Inside a unit of work ─────────────────────────────────────────────────────────────────

  /** Makes `enrolment` the active secret, with the step of the code that confirmed it. */
  async activate (tx: Executor, userId: string, enrolment: ConfirmedEnrolment, step: number, now: Date): Promise<void> {
    const values = {
      secret: enrolment.secret,
      enabledAt: now,
      enrolmentId: enrolment.id,
      algorithm: enrolment.params.algorithm,
      digits: enrolment.params.digits,
      period: enrolment.params.period,
      // The new secret's codes share no history with the old one's: its own step starts the guard.
      lastUsedStep: step,
      failedAttempts: 0,
      updatedAt: now
    }
    await tx.insert(accounts).values({ userId, ...values }).onConflictDoUpdate({ target: accounts.userId, set: values })
  }

  /** Clears the active secret, every pending one, the recovery codes and the trusted browsers (turn off, admin reset, requirement lifted). */
  async clearEnrolment (tx: Executor, userId: string, now: Date): Promise<{ cleared: boolean, browsersForgotten: number }> {
    const rows = await tx.update(accounts).set({
      secret: null, enabledAt: null, enrolmentId: null, algorithm: null, digits: null, period: null,
      // The replay guard belongs to the secret being cleared: keeping its step would refuse a
      // right code of the next secret in the same 30 seconds.
      lastUsedStep: null,
      updatedAt: now
    }).where(and(eq(accounts.userId, userId), sql`${accounts.secret} is not null`)).returning({ userId: accounts.userId })
    await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId))
    await tx.delete(enrolments).where(eq(enrolments.userId, userId))
    // A trusted browser skipped a factor that no longer exists.
    const forgotten = await tx.delete(trustedDevices).where(eq(trustedDevices.userId, userId)).returning({ id: trustedDevices.id })
    return { cleared: rows.length === 1, browsersForgotten: forgotten.length }
  }

  async setRequired (tx: Executor, userId: string, required: boolean, now: Date): Promise<void> {
    await tx.insert(accounts).values({ userId, required })
      .onConflictDoUpdate({ target: accounts.userId, set: { required, updatedAt: now } })
  }

  /** Sets (or, with `until` null, ends) the account's exemption from every rule. */
  async setExemption (tx: Executor, userId: string, until: Date | null, reason: string | null, now: Date): Promise<void> {
    const values = { exemptUntil: until, exemptReason: until === null ? null : reason, updatedAt: now }
    await tx.insert(accounts).values({ userId, ...values }).onConflictDoUpdate({ target: accounts.userId, set: values })
  }

  /** True when there was a lock to clear. */
  async unlock (tx: Executor, userId: string, now: Date): Promise<boolean> {
    const rows = await tx.update(accounts)
      .set({ failedAttempts: 0, lockouts: 0, lockedUntil: null, updatedAt: now })
      .where(and(eq(accounts.userId, userId), gt(accounts.lockedUntil, now)))
      .returning({ userId: accounts.userId })
    return rows.length === 1
  }
}

/** Up to `perKey` of the most recently changed sealed secrets under each key id (the startup key check). */
export async function sampleSealedSecrets (db: TwoFactorDatabase, perKey: number): Promise<Array<{ user_id: string, secret: string, key_id: string }>> {
  return rowsOf(await db.execute(sql`
    select user_id, secret, key_id from (
      select ${accounts.userId} as user_id, ${accounts.secret} as secret, split_part(${accounts.secret}, '.', 2) as key_id,
        row_number() over (partition by split_part(${accounts.secret}, '.', 2) order by ${accounts.updatedAt} desc) as n
      from ${accounts} where ${accounts.secret} is not null
    ) sampled where n <= ${perKey}`))
}
