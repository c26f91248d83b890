// Queries on `two_factor.settings`: small JSON values by key (the admin policy).
import { eq } from 'drizzle-orm'
import type { TwoFactorDatabase } from './database.ts'
import { settings } from './schema.ts'

export class SettingsStore {
  constructor (private readonly db: TwoFactorDatabase) {}

  async get<T> (key: string): Promise<T | undefined> {
    const rows = await this.db.select({ value: settings.value }).from(settings).where(eq(settings.key, key)).limit(1)
    return rows[0]?.value as T | undefined
  }

  async put (key: string, value: unknown, now: Date): Promise<void> {
    await this.db.insert(settings).values({ key, value, updatedAt: now })
      .onConflictDoUpdate({ target: settings.key, set: { value, updatedAt: now } })
  }
}
