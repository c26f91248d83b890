// Re-seals every TOTP secret (active, and pending in the wizard) under the key ring's current key,
// without downtime: rows are read in batches by user id, opened with whichever key sealed them,
// sealed again, and written back with a compare-and-set on the old ciphertext. A row that an
// app instance changed in the meantime (a new enrolment, a reset) is left as the app wrote it:
// its value is newer than ours and was sealed by the app's own current key.
//
// Recovery codes can't be re-made: only their HMAC digests are stored. They keep working for as
// long as the key whose pepper made them stays in the ring; the report counts them so the
// operator knows when an old key may go.
import { sql } from 'drizzle-orm'
import type { Audit } from '../services/audit.ts'
import { KeyringError, type Keyring } from '../core/keyring.ts'
import { rowsOf, type TwoFactorDatabase } from './database.ts'
import { accounts, enrolments, recoveryCodes } from './schema.ts'

export interface RotationFailure {
  userId: string
  column: 'secret' | 'pending'
  /** unknown-key: sealed under a key no longer in the ring; authentication/malformed: damaged. */
  reason: string
}

export interface RotationReport {
  currentKeyId: string
  /** Active secrets re-sealed. */
  secrets: number
  /** Pending (unconfirmed) enrolment secrets re-sealed. */
  pendingSecrets: number
  /** Values an app instance changed while we worked: left as the app wrote them. */
  changedMeanwhile: number
  failures: RotationFailure[]
  /** Secrets still not under the current key after the pass (failures, or raced writes by an instance on an old ring). */
  remaining: number
  /** Unused recovery codes whose digests use an older key's pepper, by key id. */
  recoveryCodesByOldKey: Record<string, number>
  batches: number
}

export interface RotateOptions {
  /** Rows per batch (one read and one write statement each). @default 500 */
  batchSize?: number
  /** Records `keys.rotated` with the counts. */
  audit?: Audit
  actor?: string
  /** Progress after each batch (the CLI prints it). */
  onBatch?: (report: RotationReport) => void
}

interface Candidate {
  user_id: string
  secret: string
}

interface Reseal {
  userId: string
  oldSecret: string
  newSecret: string
}

/** A sealed value's key id (`v1.<keyId>.…`), in SQL. */
const keyIdOf = (column: unknown) => sql`split_part(${column}, '.', 2)`

export async function rotateKeys (db: TwoFactorDatabase, keyring: Keyring, options: RotateOptions = {}): Promise<RotationReport> {
  const batchSize = options.batchSize ?? 500
  const current = keyring.currentKeyId
  const report: RotationReport = {
    currentKeyId: current,
    secrets: 0,
    pendingSecrets: 0,
    changedMeanwhile: 0,
    failures: [],
    remaining: 0,
    recoveryCodesByOldKey: {},
    batches: 0
  }
  const stale = sql`(${accounts.secret} is not null and ${keyIdOf(accounts.secret)} <> ${current})`

  // Keyset paging by user id: failures are passed over instead of being read again forever.
  let after = ''
  for (;;) {
    const rows = rowsOf<Candidate>(await db.execute(sql`
      select ${accounts.userId} as user_id, ${accounts.secret} as secret
      from ${accounts}
      where ${accounts.userId} > ${after} and ${stale}
      order by ${accounts.userId}
      limit ${batchSize}`))
    if (rows.length === 0) break
    after = rows.at(-1)!.user_id

    const reseals: Reseal[] = []
    for (const row of rows) {
      if (!keyring.needsReseal(row.secret)) continue
      try {
        reseals.push({ userId: row.user_id, oldSecret: row.secret, newSecret: keyring.seal(keyring.open(row.secret, row.user_id), row.user_id) })
      } catch (error) {
        if (!(error instanceof KeyringError)) throw error
        report.failures.push({ userId: row.user_id, column: 'secret', reason: error.reason })
      }
    }
    if (reseals.length > 0) await writeBack(db, reseals, report)
    report.batches++
    options.onBatch?.(report)
    if (rows.length < batchSize) break
  }

  await resealPending(db, keyring, report)

  const remaining = rowsOf<{ n: number | string }>(await db.execute(sql`select count(*) as n from ${accounts} where ${stale}`))
  report.remaining = Number(remaining[0]?.n ?? 0)
  const codes = rowsOf<{ key_id: string, n: number | string }>(await db.execute(sql`
    select ${recoveryCodes.keyId} as key_id, count(*) as n from ${recoveryCodes}
    where ${recoveryCodes.usedAt} is null and ${recoveryCodes.keyId} <> ${current}
    group by ${recoveryCodes.keyId} order by 1`))
  report.recoveryCodesByOldKey = Object.fromEntries(codes.map((c) => [c.key_id, Number(c.n)]))

  await options.audit?.record('keys.rotated', {
    context: { actor: options.actor ?? 'cli', ip: null, userAgent: null },
    details: {
      currentKeyId: current,
      secrets: report.secrets,
      pendingSecrets: report.pendingSecrets,
      changedMeanwhile: report.changedMeanwhile,
      failures: report.failures.length,
      remaining: report.remaining
    }
  })
  return report
}

/**
 * One statement per batch, each row a compare-and-set: a secret is replaced only if it still
 * holds the ciphertext we opened. RETURNING says which replacements took.
 */
async function writeBack (db: TwoFactorDatabase, reseals: Reseal[], report: RotationReport): Promise<void> {
  const values = sql.join(reseals.map((r) => sql`(${r.userId}::text, ${r.oldSecret}::text, ${r.newSecret}::text)`), sql`, `)
  const done = rowsOf<{ user_id: string }>(await db.execute(sql`
    update ${accounts} as a set secret = v.new_secret
    from (values ${values}) as v(user_id, old_secret, new_secret)
    where a.user_id = v.user_id and a.secret = v.old_secret
    returning a.user_id`))
  report.secrets += done.length
  report.changedMeanwhile += reseals.length - done.length
}

/**
 * The wizard's pending secrets live fifteen minutes; they are re-sealed too, so none is left
 * under a key about to leave the ring. Each is a compare-and-set like the active ones.
 */
async function resealPending (db: TwoFactorDatabase, keyring: Keyring, report: RotationReport): Promise<void> {
  const rows = await db.select({ id: enrolments.id, userId: enrolments.userId, secret: enrolments.secret }).from(enrolments)
    .where(sql`${keyIdOf(enrolments.secret)} <> ${keyring.currentKeyId}`)
  for (const row of rows) {
    let resealed: string
    try {
      resealed = keyring.seal(keyring.open(row.secret, row.userId), row.userId)
    } catch (error) {
      if (!(error instanceof KeyringError)) throw error
      report.failures.push({ userId: row.userId, column: 'pending', reason: error.reason })
      continue
    }
    const updated = await db.update(enrolments).set({ secret: resealed })
      .where(sql`${enrolments.id} = ${row.id} and ${enrolments.secret} = ${row.secret}`).returning({ id: enrolments.id })
    if (updated.length === 1) report.pendingSecrets++
    else report.changedMeanwhile++
  }
}
