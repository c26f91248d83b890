// Queries on `two_factor.trusted_devices`: browsers that skip the code at sign-in. Only token
// digests are stored; using a token replaces it in one conditional UPDATE, so of two uses of
// one copied cookie exactly one succeeds.
import { and, asc, eq, gt, lte } from 'drizzle-orm'
import type { Executor, TwoFactorDatabase } from './database.ts'
import { trustedDevices } from './schema.ts'

export type TrustedDeviceRow = typeof trustedDevices.$inferSelect

export class TrustedDevicesStore {
  constructor (private readonly db: TwoFactorDatabase) {}

  async create (row: TrustedDeviceRow): Promise<void> {
    await this.db.insert(trustedDevices).values(row)
  }

  async find (id: string): Promise<TrustedDeviceRow | undefined> {
    const rows = await this.db.select().from(trustedDevices).where(eq(trustedDevices.id, id)).limit(1)
    return rows[0]
  }

  /** Replaces the token's digest, if it is still `oldDigest` and the trust has not lapsed. */
  async rotate (id: string, oldDigest: string, newDigest: string, now: Date): Promise<boolean> {
    const rows = await this.db.update(trustedDevices)
      .set({ digest: newDigest, previousDigest: oldDigest, lastUsedAt: now })
      .where(and(eq(trustedDevices.id, id), eq(trustedDevices.digest, oldDigest), gt(trustedDevices.expiresAt, now)))
      .returning({ id: trustedDevices.id })
    return rows.length === 1
  }

  async list (userId: string, now: Date): Promise<TrustedDeviceRow[]> {
    return await this.db.select().from(trustedDevices)
      .where(and(eq(trustedDevices.userId, userId), gt(trustedDevices.expiresAt, now)))
      .orderBy(asc(trustedDevices.createdAt))
  }

  /** Forgets one browser of the user; true when there was one. */
  async forget (userId: string, id: string): Promise<boolean> {
    const rows = await this.db.delete(trustedDevices).where(and(eq(trustedDevices.id, id), eq(trustedDevices.userId, userId))).returning({ id: trustedDevices.id })
    return rows.length === 1
  }

  /** Forgets every browser of the user (in `tx`: inside the change that makes them untrustworthy). */
  async forgetAll (userId: string, tx: Executor = this.db): Promise<number> {
    const rows = await tx.delete(trustedDevices).where(eq(trustedDevices.userId, userId)).returning({ id: trustedDevices.id })
    return rows.length
  }

  async pruneExpired (now: Date): Promise<void> {
    await this.db.delete(trustedDevices).where(lte(trustedDevices.expiresAt, now))
  }
}
