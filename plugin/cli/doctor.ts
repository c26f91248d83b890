// `doctor`: the checks an operator wants before trusting a deployment (after a restore, a key
// change, a move to new servers): every stored secret opens under the key ring, the machine's
// clock agrees with the database's, the migrations are current. Read-only; exit 1 if a check
// failed, so it can gate a deploy script.
import type { Keyring } from '../core/keyring.ts'
import { databaseTime } from '../db/database.ts'
import { migrationStatus, type MigrationStatus } from '../db/migrate.ts'
import { checkStoredSecrets, type SecretsReport } from '../db/secrets-check.ts'
import { batchSizeOnly } from './args.ts'
import type { Command, CommandContext } from './command.ts'
import { plural } from './format.ts'
import { terminalText } from './terminal-text.ts'

/**
 * Authenticator apps keep network time, and the app judges codes by its own clock: one step
 * (30 s) off and codes start failing. The database's clock is a second opinion on this machine's.
 */
const CLOCK_FAILS_MS = 30_000
const CLOCK_WARNS_MS = 2_000

type Verdict = 'ok' | 'warn' | 'fail'

interface Clock { appTime: string, databaseTime: string, skewMs: number, verdict: Verdict }

interface DoctorReport {
  ok: boolean
  migrations: MigrationStatus & { verdict: Verdict }
  secrets: (SecretsReport & { verdict: Verdict }) | null
  /** Unused recovery codes made under keys the ring no longer holds: they can't be used. */
  recoveryCodesUnderMissingKeys: Record<string, number>
  clock: Clock
  keyIds: string[]
}

export const doctor: Command<{ batchSize: number | undefined }> = {
  needsKeys: true,
  parse: batchSizeOnly,
  async run ({ batchSize }, ctx) {
    const keyring = ctx.keyring()
    const report = await examine(ctx, keyring, batchSize)
    if (ctx.json) ctx.out(JSON.stringify(report))
    else print(report, keyring, ctx)
    return report.ok ? 0 : 1
  }
}

async function examine (ctx: CommandContext, keyring: Keyring, batchSize: number | undefined): Promise<DoctorReport> {
  const status = await migrationStatus(ctx.db)
  const migrations = { ...status, verdict: (status.applied < status.known ? 'fail' : status.newer ? 'warn' : 'ok') as Verdict }
  // Before the first migration there are no tables to look in.
  const tables = status.applied > 0
  let secrets: DoctorReport['secrets'] = null
  const recoveryCodesUnderMissingKeys: Record<string, number> = {}
  if (tables) {
    const checked = await checkStoredSecrets(ctx.db, keyring, batchSize)
    secrets = { ...checked, verdict: checked.failed > 0 ? 'fail' : 'ok' }
    for (const { keyId, count } of await ctx.core.stores.recovery.unusedByKey()) {
      if (!keyring.keyIds.includes(keyId)) recoveryCodesUnderMissingKeys[keyId] = count
    }
  }
  const clock = await compareClocks(ctx)
  const ok = migrations.verdict !== 'fail' && secrets?.verdict !== 'fail' && clock.verdict !== 'fail'
  return { ok, migrations, secrets, recoveryCodesUnderMissingKeys, clock, keyIds: keyring.keyIds }
}

/** The database's `now()` against this machine's clock at the middle of the round trip. */
async function compareClocks (ctx: CommandContext): Promise<Clock> {
  const sent = Date.now()
  const database = await databaseTime(ctx.db)
  const received = Date.now()
  const app = new Date((sent + received) / 2)
  const skewMs = database.getTime() - app.getTime()
  // Within the round trip the two can't be told apart.
  const off = Math.max(0, Math.abs(skewMs) - (received - sent) / 2)
  return {
    appTime: app.toISOString(),
    databaseTime: database.toISOString(),
    skewMs,
    verdict: off > CLOCK_FAILS_MS ? 'fail' : off > CLOCK_WARNS_MS ? 'warn' : 'ok'
  }
}

const MARK: Record<Verdict, string> = { ok: '[ok]  ', warn: '[warn]', fail: '[FAIL]' }

function print (report: DoctorReport, keyring: Keyring, ctx: CommandContext): void {
  const line = (verdict: Verdict, text: string) => ctx.out(`${MARK[verdict]} ${text}`)
  const m = report.migrations
  line(m.verdict, m.applied < m.known
    ? `Migrations: ${m.applied} of ${m.known} applied. Run: two-factor migrate`
    : m.newer
      ? `Migrations: all ${m.known} applied, and newer ones from a later version of the plugin; update this CLI.`
      : `Migrations: all ${m.known} applied.`)

  const s = report.secrets
  if (s === null) {
    line('fail', 'Secrets: not checked (the two-factor tables are missing).')
  } else if (s.failed === 0) {
    const keys = Object.entries(s.byKey).map(([id, n]) => `${n} under "${terminalText(id)}"`).join(', ')
    line('ok', s.opened === 0 ? 'Secrets: none stored yet.' : `Secrets: all ${plural(s.opened, 'stored secret')} open under the key ring (${keys}).`)
  } else {
    line('fail', `Secrets: ${s.opened} open, ${s.failed} do not:`)
    for (const f of s.failures) {
      const why = f.reason === 'unknown-key'
        ? `sealed under key "${terminalText(f.keyId)}", which the key ring does not hold (restore that key)`
        : 'could not be decrypted (damaged, or sealed by another key with the same id); that user needs a reset'
      ctx.out(`         ${terminalText(f.userId)} (${f.column === 'secret' ? 'active secret' : 'pending setup'}): ${why}`)
    }
    if (s.failed > s.failures.length) ctx.out(`         … and ${s.failed - s.failures.length} more (--json lists the first ${s.failures.length} too)`)
  }
  const lost = Object.entries(report.recoveryCodesUnderMissingKeys)
  if (lost.length > 0) {
    line('warn', `Recovery codes: ${lost.map(([id, n]) => `${plural(n, 'unused code')} made under "${terminalText(id)}"`).join(', ')}, a key the ring no longer holds: they no longer work, and their owners should generate new ones.`)
  }

  const c = report.clock
  const seconds = (Math.abs(c.skewMs) / 1000).toFixed(1)
  line(c.verdict, `Clock: the database's clock is ${seconds} s ${c.skewMs >= 0 ? 'ahead of' : 'behind'} this machine's` +
    (c.verdict === 'ok' ? '.' : `. Codes are checked against the app's clock: keep every machine on NTP.`))

  ctx.out(`[note] Keys: keep a copy of TWO_FACTOR_KEYS (${keyring.keyIds.map((id) => `"${terminalText(id)}"`).join(', ')}) somewhere safe and apart from the database backups: without it no stored secret opens and every user must set up two-factor again.`)
  ctx.out(report.ok ? '\nAll checks passed.' : '\nSome checks failed (exit 1).')
}
