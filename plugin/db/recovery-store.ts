// Queries on `two_factor.recovery_codes`: only digests are stored, looked up by primary key.
import { and, count, eq, inArray, isNull, sql } from 'drizzle-orm'
import type { Executor, TwoFactorDatabase } from './database.ts'
import { accounts, recoveryCodes } from './schema.ts'

export interface StoredDigest {
  digest: string
  keyId: string
}

export class RecoveryStore {
  private readonly remainingStatement

  constructor (private readonly db: TwoFactorDatabase) {
    this.remainingStatement = db.select({ n: count() }).from(recoveryCodes)
      .where(and(eq(recoveryCodes.userId, sql.placeholder('userId')), isNull(recoveryCodes.usedAt)))
      .prepare('two_factor_recovery_remaining')
  }

  /** Replaces the user's whole set: the old codes stop working in the same transaction. */
  async replace (tx: Executor, userId: string, digests: StoredDigest[], now: Date): Promise<void> {
    await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId))
    await tx.insert(recoveryCodes).values(digests.map((d) => ({ userId, digest: d.digest, keyId: d.keyId, createdAt: now })))
  }

  /**
   * Uses one code, exactly once: a single UPDATE that matches an unused digest of this user
   * (under any key in the ring) and only while the account is not locked.
   */
  async consume (tx: Executor, userId: string, candidateDigests: string[], now: Date): Promise<boolean> {
    const rows = await tx.update(recoveryCodes).set({ usedAt: now })
      .where(and(
        eq(recoveryCodes.userId, userId),
        inArray(recoveryCodes.digest, candidateDigests),
        isNull(recoveryCodes.usedAt),
        sql`not exists (select 1 from ${accounts} where ${accounts.userId} = ${userId} and ${accounts.lockedUntil} > ${now.toISOString()}::timestamptz)`
      ))
      .returning({ digest: recoveryCodes.digest })
    return rows.length === 1
  }

  async remaining (userId: string, tx?: Executor): Promise<number> {
    if (tx !== undefined) {
      const rows = await tx.select({ n: count() }).from(recoveryCodes).where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)))
      return Number(rows[0]?.n ?? 0)
    }
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
