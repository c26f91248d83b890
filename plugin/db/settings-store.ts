// Queries on `two_factor.settings`: small JSON values by key (the admin policy).
import { eq, sql } from 'drizzle-orm'
import type { Executor, TwoFactorDatabase } from './database.ts'
import { settings } from './schema.ts'

export class SettingsStore {
  // Read at every sign-in (the policy): prepared once.
  private readonly byKey

  constructor (db: TwoFactorDatabase) {
    this.byKey = db.select({ value: settings.value }).from(settings)
      .where(eq(settings.key, sql.placeholder('key'))).limit(1).prepare('two_factor_setting_get')
  }

  async get (key: string): Promise<unknown> {
    const rows = await this.byKey.execute({ key })
    return rows[0]?.value
  }

  async put (tx: Executor, key: string, value: unknown, now: Date): Promise<void> {
    await tx.insert(settings).values({ key, value, updatedAt: now })
      .onConflictDoUpdate({ target: settings.key, set: { value, updatedAt: now } })
  }
}
