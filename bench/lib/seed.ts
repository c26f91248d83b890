// Fills the bench database the fast way: the host's users and the plugin's rows are written
// directly (bulk statements), not through the pages, which would measure the seeding instead.
//
// Users with a real secret (up to REAL_SECRETS_UP_TO) can sign in with codes the bench
// computes; the recovery pool also gets ten real recovery codes each, digested exactly as the
// plugin digests them. The others are filler in a mix of statuses for the admin list:
//   n % 10 = 0        locked (enrolled, locked for an hour)
//   n % 10 = 1 … 3    awaiting setup (required, not enrolled)
//   n % 10 = 4 … 8    enrolled
//   n % 10 = 9        never seen by the plugin (not required)
// Every enrolled filler user has ten recovery-code rows with random digests, so the recovery
// table grows with the users: 1 000 users ≈ 10 000 codes, 100 000 users ≈ 900 000.
import { randomBytes, scryptSync } from 'node:crypto'
import type postgres from 'postgres'
import type { Keyring } from '../../plugin/index.ts'
import { generateRecoveryCodes, normaliseRecoveryCode, recoveryDigest } from '../../plugin/core/recovery.ts'
import { ADMIN_USER, GATE_USER, PASSWORD, POOLS, REAL_SECRETS_UP_TO, secretOf, userId } from './population.ts'

/**
 * The demo's password format with a cheap cost (N = 1024 instead of 16384): verification
 * reads the parameters from the hash, so /login stays a real scrypt check without making
 * thousands of sign-ins a benchmark of scrypt.
 */
function cheapPasswordHash (password: string): string {
  const salt = randomBytes(16)
  const hash = scryptSync(password, salt, 32, { N: 1024, r: 8, p: 1 })
  return ['scrypt', 1024, 8, 1, salt.toString('base64'), hash.toString('base64')].join('$')
}

/** Plaintext recovery codes of the recovery pool, by user: only the bench keeps them. */
export type RecoveryCodes = Map<string, string[]>

const BATCH = 2000

export class Seeder {
  private readonly passwordHash = cheapPasswordHash(PASSWORD)
  readonly recoveryCodes: RecoveryCodes = new Map()

  constructor (private readonly sql: postgres.Sql, private readonly keyring: Keyring) {}

  /** The admin who reads the admin list, and the signed-in user of the gate benchmark. */
  async seedSpecialUsers (): Promise<void> {
    await this.sql`insert into demo_users (id, username, password_hash, role) values
      (${ADMIN_USER}, ${ADMIN_USER}, ${this.passwordHash}, 'admin'),
      (${GATE_USER}, ${GATE_USER}, ${this.passwordHash}, 'user')`
    await this.insertEnrolled([ADMIN_USER], true)
  }

  /** Users first … last, their accounts and their recovery codes. */
  async seedUsers (first: number, last: number): Promise<void> {
    await this.sql`
      insert into demo_users (id, username, password_hash, role)
      select 'u' || lpad(n::text, 6, '0'), 'u' || lpad(n::text, 6, '0'), ${this.passwordHash}, 'user'
      from generate_series(${first}::int, ${last}::int) n`

    const realLast = Math.min(last, REAL_SECRETS_UP_TO)
    for (let from = first; from <= realLast; from += BATCH) {
      const ids: string[] = []
      for (let n = from; n <= Math.min(from + BATCH - 1, realLast); n++) ids.push(userId(n))
      await this.insertEnrolled(ids, false)
    }
    const fillerFirst = Math.max(first, REAL_SECRETS_UP_TO + 1)
    if (fillerFirst <= last) await this.insertFillerAccounts(fillerFirst, last)

    const ids: string[] = []
    for (let n = Math.max(first, POOLS.recovery[0]); n <= Math.min(last, POOLS.recovery[1]); n++) ids.push(userId(n))
    if (ids.length > 0) await this.insertRealRecoveryCodes(ids)
    await this.insertFillerRecoveryCodes(first, last)
    // Settled before anything is measured: no autovacuum in the middle of a run.
    await this.sql`vacuum analyze`
  }

  /**
   * Users first … last added to the host's table, all enrolled with a real secret (no recovery
   * codes): users to sign in, beyond the population the other benchmarks measured.
   */
  async seedSignInUsers (first: number, last: number): Promise<void> {
    await this.sql`
      insert into demo_users (id, username, password_hash, role)
      select 'u' || lpad(n::text, 6, '0'), 'u' || lpad(n::text, 6, '0'), ${this.passwordHash}, 'user'
      from generate_series(${first}::int, ${last}::int) n`
    for (let from = first; from <= last; from += BATCH) {
      const ids: string[] = []
      for (let n = from; n <= Math.min(from + BATCH - 1, last); n++) ids.push(userId(n))
      await this.insertEnrolled(ids, false)
    }
    await this.sql`vacuum analyze demo_users, two_factor.accounts`
  }

  private async insertEnrolled (ids: string[], required: boolean): Promise<void> {
    const enabledAt = new Date(Date.now() - 86_400_000).toISOString()
    const rows = ids.map((id) => ({
      user_id: id,
      secret: this.keyring.seal(secretOf(id), id),
      enabled_at: enabledAt,
      required
    }))
    await this.sql`insert into two_factor.accounts ${this.sql(rows)}`
  }

  private async insertFillerAccounts (first: number, last: number): Promise<void> {
    await this.sql`
      insert into two_factor.accounts (user_id, secret, enabled_at, required, locked_until, lockouts)
      select 'u' || lpad(n::text, 6, '0'),
        case when n % 10 in (0, 4, 5, 6, 7, 8) then 'filler: never opened' end,
        case when n % 10 in (0, 4, 5, 6, 7, 8) then now() - interval '1 day' end,
        n % 10 in (1, 2, 3),
        case when n % 10 = 0 then now() + interval '1 hour' end,
        case when n % 10 = 0 then 1 else 0 end
      from generate_series(${first}::int, ${last}::int) n
      where n % 10 <> 9`
  }

  private async insertRealRecoveryCodes (ids: string[]): Promise<void> {
    const [current] = this.keyring.recoveryPeppers()
    const rows: Array<{ user_id: string, digest: string, key_id: string }> = []
    for (const id of ids) {
      const codes = generateRecoveryCodes()
      this.recoveryCodes.set(id, codes)
      for (const code of codes) {
        rows.push({ user_id: id, digest: recoveryDigest(current!.pepper, id, normaliseRecoveryCode(code)!), key_id: current!.keyId })
      }
    }
    for (let i = 0; i < rows.length; i += BATCH) {
      await this.sql`insert into two_factor.recovery_codes ${this.sql(rows.slice(i, i + BATCH))}`
    }
  }

  /** Ten random digests for every enrolled user in the range outside the recovery pool. */
  private async insertFillerRecoveryCodes (first: number, last: number): Promise<void> {
    await this.sql`
      insert into two_factor.recovery_codes (user_id, digest, key_id)
      select a.user_id, md5(random()::text) || md5(random()::text), ${this.keyring.currentKeyId}
      from two_factor.accounts a, generate_series(1, 10)
      where a.user_id between ${userId(first)} and ${userId(last)}
        and a.secret is not null
        and not (a.user_id between ${userId(POOLS.recovery[0])} and ${userId(POOLS.recovery[1])})`
  }
}
