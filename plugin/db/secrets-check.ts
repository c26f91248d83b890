// Does every stored secret open under the key ring? Opens each one (active secrets, and the
// wizard's pending ones) with the key its id names, as a sign-in would, and counts. Read-only:
// nothing is re-sealed or written (that is rotate-keys).
import { sql } from 'drizzle-orm'
import { KeyringError, type Keyring } from '../core/keyring.ts'
import { rowsOf, type TwoFactorDatabase } from './database.ts'
import { accounts, enrolments } from './schema.ts'

export interface SecretFailure {
  userId: string
  column: 'secret' | 'pending'
  /** The key id the value names ('' when it is not a sealed value at all). */
  keyId: string
  /** unknown-key: the ring lacks that key; authentication/malformed: damaged, or sealed with another key of that id. */
  reason: string
}

export interface SecretsReport {
  opened: number
  failed: number
  /** The first failures, for the report (the count above has them all). */
  failures: SecretFailure[]
  /** How many values each key id seals. */
  byKey: Record<string, number>
}

const LISTED_FAILURES = 50

export async function checkStoredSecrets (db: TwoFactorDatabase, keyring: Keyring, batchSize = 500): Promise<SecretsReport> {
  const report: SecretsReport = { opened: 0, failed: 0, failures: [], byKey: {} }
  const check = (userId: string, secret: string, column: SecretFailure['column']) => {
    const keyId = secret.split('.')[1] ?? ''
    report.byKey[keyId] = (report.byKey[keyId] ?? 0) + 1
    try {
      keyring.open(secret, userId)
      report.opened++
    } catch (error) {
      if (!(error instanceof KeyringError)) throw error
      report.failed++
      if (report.failures.length < LISTED_FAILURES) report.failures.push({ userId, column, keyId, reason: error.reason })
    }
  }

  // Keyset paging by user id: one batch in memory at a time, however many accounts.
  let after = ''
  for (;;) {
    const rows = rowsOf<{ user_id: string, secret: string }>(await db.execute(sql`
      select ${accounts.userId} as user_id, ${accounts.secret} as secret from ${accounts}
      where ${accounts.userId} > ${after} and ${accounts.secret} is not null
      order by ${accounts.userId} limit ${batchSize}`))
    for (const row of rows) check(row.user_id, row.secret, 'secret')
    if (rows.length < batchSize) break
    after = rows.at(-1)!.user_id
  }
  // Pending setups live fifteen minutes: few, read at once.
  for (const row of await db.select({ userId: enrolments.userId, secret: enrolments.secret }).from(enrolments)) {
    check(row.userId, row.secret, 'pending')
  }
  return report
}
