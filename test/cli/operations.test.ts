// The operator's other commands (exempt, policy, events, prune-events, doctor), run as an
// operator runs them: from a folder holding a two-factor.config.mjs that points at the host's
// users (a small in-memory adapter with findByLogin), the database and the keys, so users are
// named by their login. One database for the file, seeded directly; the CLI runs as a child
// process where the exit code or the process matters, in this process otherwise.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { PGlite } from '@electric-sql/pglite'
import { drizzle } from 'drizzle-orm/pglite'
import { Keyring, type TwoFactorDatabase } from '../../plugin/index.ts'
import { migrate } from '../../plugin/db/migrate.ts'
import { accounts, enrolments, events, recoveryCodes } from '../../plugin/db/schema.ts'
import { main } from '../../plugin/cli/main.ts'
import { createTestDatabase, usingPostgres } from '../helpers/db.ts'
import { createHarness, TestClock } from '../helpers/demo.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLI = join(ROOT, 'plugin', 'cli.ts')
// Children run in a folder outside the checkout, so tsx is named by its path.
const TSX = import.meta.resolve('tsx')
const DAY = 24 * 60 * 60_000
const K1 = Keyring.generateSpec('k1')
const K0 = Keyring.generateSpec('k0')

/** The host's users: ids the app chose, logins the users did ("shadow" is also an id). */
const USERS = [
  { id: 'u-1', login: 'alice@example.com' },
  { id: 'u-2', login: 'bob@example.com' },
  { id: 'u-3', login: 'carol@example.com' },
  { id: 'u-old', login: 'olga@example.com' },
  { id: 'shadow', login: 'shadow@example.com' },
  { id: 'u-9', login: 'shadow' }
]

interface Run { code: number, stdout: string, stderr: string }

function childEnv (env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries({ ...process.env, DATABASE_URL: undefined, TWO_FACTOR_KEYS: undefined, ...env })) {
    if (value !== undefined) out[key] = value
  }
  return out
}

function cli (cwd: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`--import=${TSX}`, CLI, ...args], { cwd, env: childEnv(env), timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr })
    })
  })
}

async function cliHere (cwd: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await main(args, { env, cwd, stdout: (text) => { stdout += text }, stderr: (text) => { stderr += text } })
  return { code, stdout, stderr }
}

const jsonLines = (text: string) => text.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, any>)

/**
 * A folder with the config file and (embedded) the database it names, seeded: u-1 and u-2
 * enrolled under k1, u-3 half-way through setup, u-old enrolled under the older key k0 (with
 * unused recovery codes made under it), audit events 40 and 10 days old. The database is
 * closed again before the CLI opens it.
 */
async function operatorFolder (t: Test): Promise<{ dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'two-factor-cli-ops-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let db: TwoFactorDatabase
  let done: () => Promise<void>
  let database: string
  if (usingPostgres()) {
    const test = await createTestDatabase(t)
    db = test.db
    done = async () => {}
    database = `databaseUrl: ${JSON.stringify(test.url)}`
  } else {
    const client = new PGlite(join(dir, 'pglite'))
    await client.waitReady
    db = drizzle(client) as unknown as TwoFactorDatabase
    done = () => client.close()
    database = "dataDir: './pglite'"
  }
  await migrate(db)
  const now = Date.now()
  const k1 = Keyring.fromEnv(K1)
  const k0 = Keyring.fromEnv(K0)
  const secret = Buffer.from('12345678901234567890')
  await db.insert(accounts).values([
    { userId: 'u-1', secret: k1.seal(secret, 'u-1'), enabledAt: new Date(now) },
    { userId: 'u-2', secret: k1.seal(secret, 'u-2'), enabledAt: new Date(now) },
    { userId: 'u-3' },
    { userId: 'u-old', secret: k0.seal(secret, 'u-old'), enabledAt: new Date(now) }
  ])
  await db.insert(enrolments).values({ id: 'e-1', userId: 'u-3', secret: k1.seal(secret, 'u-3'), algorithm: 'SHA1', digits: 6, period: 30, createdAt: new Date(now), expiresAt: new Date(now + 15 * 60_000) })
  await db.insert(recoveryCodes).values([1, 2].map((i) => ({ userId: 'u-old', digest: `digest-${i}`, keyId: 'k0' })))
  await db.insert(events).values([
    ...[1, 2, 3].map((i) => ({ at: new Date(now - 40 * DAY + i), userId: 'u-2', type: 'challenge.succeeded' })),
    { at: new Date(now - 10 * DAY), userId: 'u-2', type: 'challenge.failed' }
  ])
  await done()

  writeFileSync(join(dir, 'two-factor.config.mjs'), `// The host's side of the CLI, for the test.
const users = ${JSON.stringify(USERS)}
export default {
  accounts: {
    findUser: (id) => users.find((u) => u.id === id),
    findByLogin: async (login) => users.find((u) => u.login === login),
    userId: (user) => user.id,
    label: (user) => user.login
  },
  ${database},
  keys: ${JSON.stringify(`${K1},${K0}`)}
}
`)
  return { dir }
}

t.test('bad usage of the new commands: exit 2 and a message, before any config or database is read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'two-factor-cli-usage-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // A config that would fail to load: had any of these got that far, it would exit 1.
  writeFileSync(join(dir, 'two-factor.config.mjs'), 'throw new Error("read too early")\n')
  const soon = new Date(Date.now() + 2 * DAY).toISOString().slice(0, 10)
  const cases: Array<[string[], RegExp]> = [
    [['exempt', 'alice'], /"exempt" needs --until DATE --reason "why", or --off/],
    [['exempt', 'alice', '--until', 'next tuesday', '--reason', 'x'], /--until must be a date \(2026-07-01\)/],
    [['exempt', 'alice', '--until', '2020-01-01', '--reason', 'x'], /has passed/],
    [['exempt', 'alice', '--until', '2999-01-01', '--reason', 'x'], /a year at most/],
    [['exempt', 'alice', '--until', soon], /"exempt" needs --reason/],
    [['exempt', 'alice', '--off', '--until', soon], /"exempt --off" takes no --until/],
    [['exempt', '--off'], /"exempt" needs <user>; missing <user>/],
    [['policy', 'frob'], /followed by show or set, not "frob"/],
    [['policy', 'set'], /"policy set" needs at least one of/],
    [['policy', 'set', '--everyone', 'yes'], /--everyone is on or off, not "yes"/],
    [['policy', 'set', '--grace-days', '400'], /--grace-days must be a whole number from 0 to 365/],
    [['policy', 'set', '--roles', 'ops,<script>'], /"<script>" is not a role name/],
    [['policy', 'show', '--everyone', 'on'], /did you mean "policy set"/],
    [['events', '--format', 'xml'], /--format is text or jsonl, not "xml"/],
    [['events', '--since', 'yesterday'], /--since must be a date/],
    [['events', '--type', 'login'], /--type "login" is not an event type/],
    [['events', '--limit', '0'], /--limit must be a whole number/],
    [['events', '--reason', 'x'], /"events" takes no --reason option/],
    [['prune-events'], /"prune-events" needs --older-than DAYS/],
    [['prune-events', '--older-than', '0'], /--older-than must be a whole number from 1/],
    [['prune-events', '--older-than', 'ten'], /--older-than must be a whole number/],
    [['doctor', 'now'], /"doctor" takes no arguments; unexpected "now"/]
  ]
  const CHILD = new Set([1, 8])
  const runs = await Promise.all(cases.map(async ([args], i) => await (CHILD.has(i) ? cli(dir, args) : cliHere(dir, args))))
  cases.forEach(([args, message], i) => {
    const run = runs[i]!
    t.equal(run.code, 2, `${args.join(' ')}: exit 2`)
    t.match(run.stderr, message, `${args.join(' ')}: says what is wrong`)
    t.match(run.stderr, `See: two-factor ${args[0]} --help`, 'and where to read more')
    t.equal(run.stdout, '')
  })

  const broken = await cliHere(dir, ['status', 'alice'])
  t.equal(broken.code, 1, 'a config file that fails to load fails the command')
  t.match(broken.stderr, /^two-factor: Could not load the config file .*two-factor\.config\.mjs: read too early\n$/)

  // Help for each command, as `<command> --help` and as `help <command>`.
  const usage: Record<string, RegExp> = {
    exempt: /^Usage: two-factor exempt <user> --until DATE --reason "why"\n\s+two-factor exempt <user> --off\n/,
    policy: /^Usage: two-factor policy \[show\]/,
    events: /^Usage: two-factor events \[--user U\] \[--type T\] \[--since DATE\]/,
    'prune-events': /^Usage: two-factor prune-events --older-than DAYS/,
    doctor: /^Usage: two-factor doctor/
  }
  const child = await cli(dir, ['exempt', '--help'])
  t.equal(child.code, 0)
  t.match(child.stdout, usage.exempt!, 'exempt --help, in a process of its own')
  for (const [command, pattern] of Object.entries(usage)) {
    for (const args of [[command, '--help'], ['help', command]]) {
      const run = await cliHere(dir, args)
      t.equal(run.code, 0, `${args.join(' ')}: exit 0`)
      t.match(run.stdout, pattern, `${args.join(' ')}: its usage`)
    }
  }
  const overview = await cliHere(dir, ['--help'])
  for (const command of Object.keys(usage)) t.match(overview.stdout, new RegExp(`\\n  ${command}\\b`), `the overview lists ${command}`)
  t.match(overview.stdout, /two-factor\.config\.ts/, 'and tells of the config file')
})

t.test('exempt, policy, events, prune-events and doctor, users named by login through the config file', async (t) => {
  const { dir } = await operatorFolder(t)
  const until = new Date(Date.now() + 30 * DAY).toISOString().slice(0, 10)

  // ── exempt ──────────────────────────────────────────────────────────────────────────────
  const exempt = await cli(dir, ['exempt', 'alice@example.com', '--until', until, '--reason', 'phone in the lake'])
  t.equal(exempt.code, 0, exempt.stderr)
  t.equal(exempt.stdout, `u-1: exempt from every two-factor rule until ${until} 00:00 UTC; it ends by itself then.\n`)
  t.match(exempt.stderr, '"alice@example.com" is user id "u-1".', 'the login name was looked up through the config file')
  const status = await cliHere(dir, ['status', 'alice@example.com', '--json'])
  t.equal(status.code, 0, status.stderr)
  t.match(JSON.parse(status.stdout), { userId: 'u-1', exemptUntil: `${until}T00:00:00.000Z`, exemptReason: 'phone in the lake' }, 'status shows the exemption')
  const statusText = await cliHere(dir, ['status', 'u-1'])
  t.match(statusText.stdout, `Exempt:           from every rule until ${until} 00:00 UTC (phone in the lake)`, 'by id too')
  const off = await cliHere(dir, ['exempt', 'alice@example.com', '--off'])
  t.equal(off.stdout, 'u-1: the exemption has ended; the usual rules apply again.\n')
  const offAgain = await cliHere(dir, ['exempt', 'u-1', '--off', '--json'])
  t.same(JSON.parse(offAgain.stdout), { userId: 'u-1', exemptUntil: null, ended: false }, 'ending it twice changes nothing')

  // ── <user>: ids first, no guessing ──────────────────────────────────────────────────────
  const ambiguous = await cliHere(dir, ['status', 'shadow'])
  t.equal(ambiguous.code, 1)
  t.match(ambiguous.stderr, '"shadow" is the id of one user and the login name of another (id "u-9")', 'an id that is also another user’s login is refused')
  const nobody = await cliHere(dir, ['unlock', 'nobody@example.com'])
  t.equal(nobody.code, 1)
  t.match(nobody.stderr, 'No user "nobody@example.com": the app has no user with that id or login name')
  const named = await cliHere(join(dir, '..'), ['status', 'bob@example.com', '--json', '--config', join(dir, 'two-factor.config.mjs')])
  t.equal(named.code, 0, named.stderr)
  t.match(JSON.parse(named.stdout), { userId: 'u-2', enrolled: true }, '--config FILE from another folder (its dataDir relative to the file)')
  const missing = await cliHere(dir, ['status', 'u-1', '--config', 'nope.mjs'])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /The config file .*nope\.mjs does not exist/)

  // ── policy ──────────────────────────────────────────────────────────────────────────────
  const before = await cliHere(dir, ['policy', '--json'])
  t.same(JSON.parse(before.stdout), { requireAll: false, requireAllSince: null, graceDays: 7, requiredRoles: [], exemptRoles: [], allowSkip: true }, 'policy show: the defaults')
  const set = await cli(dir, ['policy', 'set', '--everyone', 'on', '--grace-days', '3', '--roles', 'ops,finance', '--exempt-roles', 'bots'])
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, /Require for everyone:\s+on since \d{4}-\d\d-\d\d \d\d:\d\d UTC; grace until/)
  t.match(set.stdout, /Required roles:\s+ops, finance/)
  t.match(set.stdout, /may skip for 3 days/)
  const shown = JSON.parse((await cliHere(dir, ['policy', 'show', '--json'])).stdout)
  t.match(shown, { requireAll: true, graceDays: 3, requiredRoles: ['ops', 'finance'], exemptRoles: ['bots'], allowSkip: true })
  t.ok(Date.now() - Date.parse(shown.requireAllSince) < 5 * 60_000, 'the grace period started when it was switched on')
  const same = await cliHere(dir, ['policy', 'set', '--grace-days', '3'])
  t.equal(same.stdout, 'The policy already says that; nothing changed.\n')
  const cleared = await cliHere(dir, ['policy', 'set', '--roles', '', '--allow-skip', 'off', '--json'])
  t.match(JSON.parse(cleared.stdout), { requiredRoles: [], allowSkip: false, requireAllSince: shown.requireAllSince, changed: true }, 'an empty list clears; the grace period keeps its start')

  // ── prune-events ────────────────────────────────────────────────────────────────────────
  const prune = await cli(dir, ['prune-events', '--older-than', '30'])
  t.equal(prune.code, 0, prune.stderr)
  t.match(prune.stdout, /^Deleted 3 audit events older than 30 days \(before \d{4}-\d\d-\d\d \d\d:\d\d UTC\); the deletion is logged as events\.pruned\.\n$/)
  const pruneAgain = await cliHere(dir, ['prune-events', '--older-than', '30', '--json'])
  t.match(JSON.parse(pruneAgain.stdout), { deleted: 0, olderThanDays: 30 }, 'nothing left to delete')

  // ── events ──────────────────────────────────────────────────────────────────────────────
  const all = jsonLines((await cliHere(dir, ['events', '--format', 'jsonl'])).stdout)
  t.same(all.map((e) => [e.type, e.userId, e.actor]), [
    ['events.pruned', null, 'cli'],
    ['policy.changed', null, 'cli'],
    ['policy.changed', null, 'cli'],
    ['exempt.off', 'u-1', 'cli'],
    ['exempt.on', 'u-1', 'cli'],
    ['challenge.failed', 'u-2', null]
  ], 'newest first; every change audited with actor cli; the 10-day-old event kept')
  t.match(all[0]!.details, { olderThanDays: 30, deleted: 3 })
  t.match(all[4]!.details, { until: `${until}T00:00:00.000Z`, reason: 'phone in the lake' })
  t.match(all[2]!.details, { before: { requireAll: false }, after: { requireAll: true, graceDays: 3 } })
  const alices = jsonLines((await cliHere(dir, ['events', '--user', 'alice@example.com', '--json'])).stdout)
  t.same(alices.map((e) => e.type), ['exempt.off', 'exempt.on'], '--user takes a login name')
  const typed = jsonLines((await cliHere(dir, ['events', '--type', 'policy.changed', '--limit', '1', '--format', 'jsonl'])).stdout)
  t.same(typed.map((e) => e.details.after.allowSkip), [false], '--type and --limit')
  const recent = await cliHere(dir, ['events', '--since', new Date(Date.now() - 5 * DAY).toISOString().slice(0, 10)])
  t.equal(recent.code, 0, recent.stderr)
  t.equal(recent.stdout.trim().split('\n').length, 5, '--since leaves out the older event')
  t.match(recent.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC {2}events\.pruned {2}- {2}by cli {2}\{"before":"[^"]+","deleted":3,"olderThanDays":30\}\n/, 'text: one event a line')
  t.match(recent.stdout, / {2}exempt\.on {2}u-1 {2}by cli {2}\{"until":/)
  const one = await cliHere(dir, ['events', '--limit', '1'])
  t.match(one.stdout, /^[^\n]+events\.pruned[^\n]+\n\nThe newest 1 event shown; --limit N shows more/)
  const none = await cliHere(dir, ['events', '--type', 'device.used'])
  t.equal(none.stdout, 'No events match.\n')

  // ── doctor ──────────────────────────────────────────────────────────────────────────────
  const healthy = await cli(dir, ['doctor'])
  t.equal(healthy.code, 0, healthy.stderr + healthy.stdout)
  t.match(healthy.stdout, '[ok]   Migrations: all ')
  t.match(healthy.stdout, '[ok]   Secrets: all 4 stored secrets open under the key ring (3 under "k1", 1 under "k0").')
  t.match(healthy.stdout, /\[ok\] {3}Clock: the database's clock is \d+\.\d s (ahead of|behind) this machine's\./)
  t.match(healthy.stdout, '[note] Keys: keep a copy of TWO_FACTOR_KEYS ("k1", "k0") somewhere safe')
  t.match(healthy.stdout, /All checks passed\.\n$/)

  // The same database with k0 gone from the ring (TWO_FACTOR_KEYS wins over the config's keys).
  const keyLost = await cli(dir, ['doctor'], { TWO_FACTOR_KEYS: K1 })
  t.equal(keyLost.code, 1, 'a secret that does not open fails the check')
  t.match(keyLost.stdout, '[FAIL] Secrets: 3 open, 1 do not:\n         u-old (active secret): sealed under key "k0", which the key ring does not hold')
  t.match(keyLost.stdout, '[warn] Recovery codes: 2 unused codes made under "k0"')
  t.match(keyLost.stdout, /Some checks failed \(exit 1\)\.\n$/)
  t.equal(keyLost.stderr, '')
  const asJson = await cliHere(dir, ['doctor', '--json'], { TWO_FACTOR_KEYS: K1 })
  t.equal(asJson.code, 1)
  t.match(JSON.parse(asJson.stdout), {
    ok: false,
    secrets: { opened: 3, failed: 1, failures: [{ userId: 'u-old', column: 'secret', keyId: 'k0', reason: 'unknown-key' }], verdict: 'fail' },
    recoveryCodesUnderMissingKeys: { k0: 2 },
    migrations: { verdict: 'ok' },
    clock: { verdict: 'ok' }
  })
})

t.test('auditRetentionDays: checked at register, and old events go at startup', async (t) => {
  const database = await createTestDatabase(t)
  await t.rejects(createHarness(t, { database, app: { twoFactor: { auditRetentionDays: 0 } } }), /option "auditRetentionDays" must be an integer between 1 and 36500/)
  await migrate(database.db)
  const clock = new TestClock(Date.now())
  await database.db.insert(events).values([
    { at: new Date(clock.ms - 91 * DAY), userId: 'u-1', type: 'challenge.succeeded' },
    { at: new Date(clock.ms - 89 * DAY), userId: 'u-1', type: 'challenge.failed' }
  ])
  const h = await createHarness(t, { database, clock, app: { twoFactor: { auditRetentionDays: 90 } } })
  const left = await database.db.select().from(events)
  t.same(left.map((e) => [e.type, e.actor]).sort(), [['challenge.failed', null], ['events.pruned', 'retention']], 'the 91-day-old event went, the deletion is logged')
  t.match(left.find((e) => e.type === 'events.pruned')?.details, { olderThanDays: 90, deleted: 1 })
  t.ok(h.events.some((e) => e.type === 'events.pruned'), 'and reaches onEvent')
})
