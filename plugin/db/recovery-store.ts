// Queries on `two_factor.recovery_codes`: only digests are stored, looked up by primary key.
//
// Using a code is one prepared statement: unprepared, drizzle rebuilds the query on every check
// and postgres.js spends a second round trip describing its parameters, and a transaction
// around several statements costs a round trip each plus BEGIN and COMMIT.
import { and, count, eq, isNull, notInArray, sql } from 'drizzle-orm'
import { CLEARED_FAILURES } from './accounts-store.ts'
import type { Executor, TwoFactorDatabase } from './database.ts'
import type { EventRow, NewEvent } from './events-store.ts'
import { accounts, events, recoveryCodes } from './schema.ts'

export interface StoredDigest {
  digest: string
  keyId: string
}

/** The audit events the statement that uses a code stores with it (the user is the code's owner). */
export interface ConsumeEvents {
  /** Who acted and from where: both events are one request's. */
  context: Pick<NewEvent, 'actor' | 'ip' | 'userAgent'>
  /** `recovery.used`; the statement adds `remaining`, the codes left, to its details. */
  used: Pick<NewEvent, 'type' | 'details'>
  /** The sign-in's or step-up's success. */
  succeeded: Pick<NewEvent, 'type' | 'details'>
}

/**
 * The single-use guard, the cleared failure counter and the two audit events of a used code, as
 * one statement: Postgres runs it atomically, so the events exist exactly when the code was
 * taken. Every sub-statement sees the snapshot the statement started with, so `left` counts the
 * codes unused then, less the one being taken.
 */
function prepareConsume (db: TwoFactorDatabase) {
  const userId = sql.placeholder('userId')
  const now = sql`${sql.placeholder('now')}::timestamptz`
  // At most one row matches: a user's set is always issued under one key, and the candidates
  // are one code's digest under each key. Joined with commas (hex never holds one), so every
  // driver binds them as one text value.
  const candidates = sql`string_to_array(${sql.placeholder('digests')}::text, ',')`
  const taken = db.$with('taken').as(db.update(recoveryCodes).set({ usedAt: now })
    .where(and(
      eq(recoveryCodes.userId, userId),
      sql`${recoveryCodes.digest} = any(${candidates})`,
      isNull(recoveryCodes.usedAt),
      sql`not exists (select 1 from ${accounts} where ${accounts.userId} = ${userId} and ${accounts.lockedUntil} > ${now})`
    ))
    .returning({ userId: recoveryCodes.userId, digest: recoveryCodes.digest }))
  // Referenced by nothing: Postgres still runs a data-modifying WITH, once and to the end.
  const cleared = db.$with('cleared').as(db.update(accounts).set(CLEARED_FAILURES)
    .where(eq(accounts.userId, sql`(select ${taken.userId} from ${taken})`))
    .returning({ userId: accounts.userId }))
  const left = db.$with('left').as(db.select({ remaining: sql<number>`count(*)::int`.as('remaining') }).from(recoveryCodes)
    .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt), notInArray(recoveryCodes.digest, db.select({ digest: taken.digest }).from(taken)))))
  const text = (name: string) => sql`${sql.placeholder(name)}::text`
  const jsonb = (name: string) => sql`${sql.placeholder(name)}::jsonb`
  // INSERT … SELECT lists every column in the table's order. Two rows per taken code, in order:
  // `recovery.used` (told how many are left) and the sign-in's or step-up's success.
  const kind = sql.raw('kind')
  const columns = {
    id: sql`nextval(pg_get_serial_sequence('two_factor.events', 'id'))`.as('id'),
    at: now.as('at'),
    userId: sql`${taken.userId}`.as('user_id'),
    actor: text('actor').as('actor'),
    ip: text('ip').as('ip'),
    userAgent: text('userAgent').as('user_agent'),
    type: sql`case ${kind}.ord when 1 then ${text('usedType')} else ${text('succeededType')} end`.as('type'),
    details: sql`case ${kind}.ord when 1 then ${jsonb('usedDetails')} || jsonb_build_object('remaining', ${left.remaining}) else ${jsonb('succeededDetails')} end`.as('details')
  }
  return db.with(taken, cleared, left).insert(events)
    .select(db.select(columns).from(taken).crossJoin(left).crossJoin(sql`(values (1), (2)) as ${kind}(ord)`).orderBy(sql`${kind}.ord`))
    .returning()
    .prepare('two_factor_recovery_consume')
}

export class RecoveryStore {
  private readonly remainingStatement
  private readonly consumeStatement: ReturnType<typeof prepareConsume>

  constructor (private readonly db: TwoFactorDatabase) {
    this.remainingStatement = db.select({ n: count() }).from(recoveryCodes)
      .where(and(eq(recoveryCodes.userId, sql.placeholder('userId')), isNull(recoveryCodes.usedAt)))
      .prepare('two_factor_recovery_remaining')
    this.consumeStatement = prepareConsume(db)
  }

  /** Replaces the user's whole set: the old codes stop working in the same transaction. */
  async replace (tx: Executor, userId: string, digests: StoredDigest[], now: Date): Promise<void> {
    await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId))
    await tx.insert(recoveryCodes).values(digests.map((d) => ({ userId, digest: d.digest, keyId: d.keyId, createdAt: now })))
  }

  /**
   * Uses one code, exactly once: it matches an unused digest of this user (under any key in the
   * ring) and only while the account is not locked, clears the failure counter and stores the
   * events. Returns the two stored events, or null when no code was taken (nothing is written then).
   */
  async consume (userId: string, candidateDigests: string[], now: Date, { context, used, succeeded }: ConsumeEvents): Promise<EventRow[] | null> {
    const rows = await this.consumeStatement.execute({
      userId,
      digests: candidateDigests.join(','),
      now: now.toISOString(),
      actor: context.actor ?? null,
      ip: context.ip ?? null,
      userAgent: context.userAgent ?? null,
      usedType: used.type,
      usedDetails: JSON.stringify(used.details ?? {}),
      succeededType: succeeded.type,
      succeededDetails: JSON.stringify(succeeded.details ?? {})
    }) as EventRow[]
    return rows.length === 0 ? null : rows.sort((a, b) => a.id - b.id)
  }

  async remaining (userId: string): Promise<number> {
    const rows = await this.remainingStatement.execute({ userId })
    return Number(rows[0]?.n ?? 0)
  }

  /** Unused codes by the key whose pepper made their digests (the startup key check, rotate-keys). */
  async unusedByKey (): Promise<Array<{ keyId: string, count: number }>> {
    const rows = await this.db.select({ keyId: recoveryCodes.keyId, n: count() }).from(recoveryCodes)
      .where(isNull(recoveryCodes.usedAt)).groupBy(recoveryCodes.keyId).orderBy(recoveryCodes.keyId)
    return rows.map((row) => ({ keyId: row.keyId, count: Number(row.n) }))
  }
}
