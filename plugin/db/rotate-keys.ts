// Re-seals every TOTP secret (active and pending) under the key ring's current key (SPEC §3),
// without downtime: rows are read in batches by user id, opened with whichever key sealed them,
// sealed again, and written back with a compare-and-set on the old ciphertext. A row that an
// app instance changed in the meantime (a new enrolment, a reset) is left as the app wrote it:
// its value is newer than ours and was sealed by the app's own current key.
//
// Recovery codes can't be re-made: only their HMAC digests are stored. They keep working for as
// long as the key whose pepper made them stays in the ring; the report counts them so the
// operator knows when an old key may go.
import { sql } from 'drizzle-orm'
import type { Audit } from '../audit.ts'
import { KeyringError, type Keyring } from '../core/keyring.ts'
import { rowsOf, type TwoFactorDatabase } from './database.ts'
import { accounts, recoveryCodes } from './schema.ts'

export interface RotationFailure {
  userId: string
  column: 'secret' | 'pending_secret'
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
  secret: string | null
  pending_secret: string | null
}

interface Reseal {
  userId: string
  oldSecret: string | null
  newSecret: string | null
  oldPending: string | null
  newPending: string | null
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
  const stale = sql`((${accounts.secret} is not null and ${keyIdOf(accounts.secret)} <> ${current})
    or (${accounts.pendingSecret} is not null and ${keyIdOf(accounts.pendingSecret)} <> ${current}))`

  // Keyset paging by user id: failures are passed over instead of being read again forever.
  let after = ''
  for (;;) {
    const rows = rowsOf<Candidate>(await db.execute(sql`
      select ${accounts.userId} as user_id, ${accounts.secret} as secret, ${accounts.pendingSecret} as pending_secret
      from ${accounts}
      where ${accounts.userId} > ${after} and ${stale}
      order by ${accounts.userId}
      limit ${batchSize}`))
    if (rows.length === 0) break
    after = rows.at(-1)!.user_id

    const reseals: Reseal[] = []
    for (const row of rows) {
      const reseal: Reseal = { userId: row.user_id, oldSecret: null, newSecret: null, oldPending: null, newPending: null }
      for (const [column, value] of [['secret', row.secret], ['pending_secret', row.pending_secret]] as const) {
        if (value === null || !keyring.needsReseal(value)) continue
        try {
          const resealed = keyring.seal(keyring.open(value, row.user_id), row.user_id)
          if (column === 'secret') Object.assign(reseal, { oldSecret: value, newSecret: resealed })
          else Object.assign(reseal, { oldPending: value, newPending: resealed })
        } catch (error) {
          if (!(error instanceof KeyringError)) throw error
          report.failures.push({ userId: row.user_id, column, reason: error.reason })
        }
      }
      if (reseal.newSecret !== null || reseal.newPending !== null) reseals.push(reseal)
    }
    if (reseals.length > 0) await writeBack(db, reseals, report)
    report.batches++
    options.onBatch?.(report)
    if (rows.length < batchSize) break
  }

  const remaining = rowsOf<{ n: number | string }>(await db.execute(sql`select count(*) as n from ${accounts} where ${stale}`))
  report.remaining = Number(remaining[0]?.n ?? 0)
  const codes = rowsOf<{ key_id: string, n: number | string }>(await db.execute(sql`
    select ${recoveryCodes.keyId} as key_id, count(*) as n from ${recoveryCodes}
    where ${recoveryCodes.usedAt} is null and ${recoveryCodes.keyId} <> ${current}
    group by ${recoveryCodes.keyId} order by 1`))
  report.recoveryCodesByOldKey = Object.fromEntries(codes.map((c) => [c.key_id, Number(c.n)]))

  await options.audit?.record(null, 'keys.rotated', {
    actor: options.actor ?? 'cli',
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
 * One statement per batch, each row a compare-and-set: a column is replaced only if it still
 * holds the ciphertext we opened. RETURNING says which replacements took.
 */
async function writeBack (db: TwoFactorDatabase, reseals: Reseal[], report: RotationReport): Promise<void> {
  const values = sql.join(reseals.map((r) =>
    sql`(${r.userId}::text, ${r.oldSecret}::text, ${r.newSecret}::text, ${r.oldPending}::text, ${r.newPending}::text)`), sql`, `)
  const done = rowsOf<{ secret_done: boolean, pending_done: boolean }>(await db.execute(sql`
    update ${accounts} as a set
      secret = case when v.new_secret is not null and a.secret = v.old_secret then v.new_secret else a.secret end,
      pending_secret = case when v.new_pending is not null and a.pending_secret = v.old_pending then v.new_pending else a.pending_secret end
    from (values ${values}) as v(user_id, old_secret, new_secret, old_pending, new_pending)
    where a.user_id = v.user_id
    returning (v.new_secret is not null and a.secret = v.new_secret) as secret_done,
      (v.new_pending is not null and a.pending_secret = v.new_pending) as pending_done`))
  const secrets = done.filter((d) => d.secret_done).length
  const pending = done.filter((d) => d.pending_done).length
  report.secrets += secrets
  report.pendingSecrets += pending
  const attempted = reseals.filter((r) => r.newSecret !== null).length + reseals.filter((r) => r.newPending !== null).length
  report.changedMeanwhile += attempted - secrets - pending
}
