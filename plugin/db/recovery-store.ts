// Queries on `two_factor.recovery_codes`: only digests are stored, looked up by primary key.
import { and, count, eq, inArray, isNull, sql } from 'drizzle-orm'
import type { TwoFactorDatabase } from './database.ts'
import { accounts, recoveryCodes } from './schema.ts'

export interface StoredDigest {
  digest: string
  keyId: string
}

export class RecoveryStore {
  constructor (private readonly db: TwoFactorDatabase) {}

  /** Replaces the user's whole set: the old codes stop working in the same transaction. */
  async replace (tx: TwoFactorDatabase, userId: string, digests: StoredDigest[], now: Date): Promise<void> {
    await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId))
    await tx.insert(recoveryCodes).values(digests.map((d) => ({ userId, digest: d.digest, keyId: d.keyId, createdAt: now })))
  }

  /**
   * Uses one code, exactly once: a single UPDATE that matches an unused digest of this user
   * (under any key in the ring) and only while the account is not locked.
   */
  async consume (userId: string, candidateDigests: string[], now: Date): Promise<boolean> {
    const rows = await this.db.update(recoveryCodes).set({ usedAt: now })
      .where(and(
        eq(recoveryCodes.userId, userId),
        inArray(recoveryCodes.digest, candidateDigests),
        isNull(recoveryCodes.usedAt),
        sql`not exists (select 1 from ${accounts} where ${accounts.userId} = ${userId} and ${accounts.lockedUntil} > ${now.toISOString()}::timestamptz)`
      ))
      .returning({ digest: recoveryCodes.digest })
    return rows.length === 1
  }

  async remaining (userId: string): Promise<number> {
    const rows = await this.db.select({ n: count() }).from(recoveryCodes)
      .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)))
    return Number(rows[0]?.n ?? 0)
  }
}
