// Queries on `two_factor.settings`: small JSON values by key (the admin policy).
import { eq, sql } from 'drizzle-orm'
import type { TwoFactorDatabase } from './database.ts'
import { settings } from './schema.ts'

export class SettingsStore {
  // Read at every sign-in (the policy): prepared once, like AccountsStore's lookups.
  private readonly byKey

  constructor (private readonly db: TwoFactorDatabase) {
    this.byKey = db.select({ value: settings.value }).from(settings)
      .where(eq(settings.key, sql.placeholder('key'))).limit(1).prepare('two_factor_setting_get')
  }

  async get<T> (key: string): Promise<T | undefined> {
    const rows = await this.byKey.execute({ key })
    return rows[0]?.value as T | undefined
  }

  async put (key: string, value: unknown, now: Date): Promise<void> {
    await this.db.insert(settings).values({ key, value, updatedAt: now })
      .onConflictDoUpdate({ target: settings.key, set: { value, updatedAt: now } })
  }
}
