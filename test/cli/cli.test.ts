// The operator CLI run as a child process, as an operator runs it, against a test
// database: a PGlite folder in a temporary directory (the app closes it while the CLI runs, as
// an operator must stop the demo), or a fresh database on the real server when DATABASE_URL is
// set. Users are enrolled through the demo app's pages, changed by the CLI, then sign in again.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { PGlite } from '@electric-sql/pglite'
import { eq } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/pglite'
import { createDemoUser, ensureDemoSchema } from '../../demo-app/app.ts'
import { Keyring, type TwoFactorDatabase } from '../../plugin/index.ts'
import { accounts, enrolments, events } from '../../plugin/db/schema.ts'
import { main } from '../../plugin/cli/main.ts'
import { createTestDatabase, usingPostgres, type TestDatabase } from '../helpers/db.ts'
import { codeFor, createHarness, enrol, manualKeyFrom, passwordStep, TEST_KEYS, TestClock, type Harness } from '../helpers/demo.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLI = join(ROOT, 'plugin', 'cli.ts')
const PASSWORD = 'cli-test-password-123'
const USERS = ['admin', 'alice', 'bob', 'carol', 'dave', 'erin']

interface Run { code: number, stdout: string, stderr: string }

/**
 * The same CLI in this process: its code runs unchanged, without a second PGlite start-up per
 * call. The flows the issue names (reset, rotate-keys, bad arguments) run as child processes.
 */
async function cliHere (args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await main(args, { env, cwd: ROOT, stdout: (text) => { stdout += text }, stderr: (text) => { stderr += text } })
  return { code, stdout, stderr }
}

/** Runs the CLI from source, as `npm run two-factor -- …` does. */
function cli (args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const childEnv: Record<string, string> = {}
  for (const [key, value] of Object.entries({ ...process.env, DATABASE_URL: undefined, TWO_FACTOR_KEYS: undefined, ...env })) {
    if (value !== undefined) childEnv[key] = value
  }
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import=tsx', CLI, ...args], { cwd: ROOT, env: childEnv, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

/**
 * The database the app and the CLI share. PGlite allows one process at a time, so `release`
 * closes it (and `open` opens it again); a Postgres database stays open throughout.
 */
async function sharedDatabase (t: Test): Promise<{ open (): Promise<TestDatabase>, release (): Promise<void>, cliArgs: string[], demoKeysFile: string | null }> {
  if (usingPostgres()) {
    const database = await createTestDatabase(t)
    return { open: async () => ({ ...database, close: async () => {} }), release: async () => {}, cliArgs: ['--database-url', database.url!], demoKeysFile: null }
  }
  const dir = mkdtempSync(join(tmpdir(), 'two-factor-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'pglite')
  let client: PGlite | null = null
  return {
    async open () {
      client = new PGlite(dataDir)
      await client.waitReady
      const db = drizzle(client) as unknown as TwoFactorDatabase
      return { db, kind: 'pglite', close: async () => {} }
    },
    async release () {
      await client?.close()
      client = null
    },
    cliArgs: ['--data-dir', dataDir],
    demoKeysFile: join(dir, 'two-factor-keys')
  }
}

t.test('bad arguments: a clear message and exit code 2, before any database is opened', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [[], /Which command\? Try: two-factor --help/],
    [['frobnicate'], /Unknown command "frobnicate"/],
    [['list', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['list', '--status', 'happy'], /--status must be one of: enrolled, awaiting, not-required, locked/],
    [['list', '--page', '0'], /--page must be a whole number/],
    [['status'], /"status" needs <user>; missing <user>/],
    [['status', 'a', 'b'], /unexpected "b"/],
    [['require', 'alice'], /missing <on\|off>/],
    [['require', 'alice', 'maybe'], /on or off, not "maybe"/],
    [['reset', 'alice'], /"reset" needs --reason/],
    [['reset', 'alice', '--reason', '   '], /"reset" needs --reason/],
    [['unlock', 'alice', '--reason', 'x'], /"unlock" takes no --reason option/],
    [['list', '--database-url', 'postgres://x', '--data-dir', 'y'], /either --database-url or --data-dir/],
    [['help', 'nothing'], /No help for "nothing"/]
  ]
  // A folder with no database: had any of these got as far as opening one, it would fail with 1.
  const noDatabase = (args: string[]) => args.some((a) => a.startsWith('--data')) ? args : [...args, '--data-dir', '/nonexistent']
  // Three through a real process (the exit code is the process's), the rest in this one.
  const CHILD = new Set([1, 2, 9])
  const runs = await Promise.all(cases.map(async ([args], i) => await (CHILD.has(i) ? cli : cliHere)(noDatabase(args))))
  cases.forEach(([args, message], i) => {
    const run = runs[i]!
    t.equal(run.code, 2, `${args.join(' ') || '(nothing)'}: exit 2`)
    t.match(run.stderr, message, `${args.join(' ') || '(nothing)'}: says what is wrong`)
    t.match(run.stderr, /See: two-factor (\w[\w-]* )?--help/, 'and where to read more')
    t.equal(run.stdout, '')
  })

  const help = await cliHere(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: two-factor <command>/)
  for (const command of ['list', 'status', 'require', 'reset', 'unlock', 'rotate-keys', 'migrate']) t.match(help.stdout, new RegExp(`\\n  ${command}\\b`))
  const resetHelp = await cliHere(['reset', '--help'])
  t.equal(resetHelp.code, 0)
  t.match(resetHelp.stdout, /Usage: two-factor reset <user> --reason "why"/)
})

t.test('failures: a clear message and exit code 1', async (t) => {
  const missing = await cli(['list', '--data-dir', join(tmpdir(), 'no-such-two-factor-folder')])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /No PGlite database in .*no-such-two-factor-folder\. Give --data-dir/)

  const refused = await cli(['list', '--database-url', 'postgres://postgres:sekrit@127.0.0.1:1/none'])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /Could not connect to the database \(connection refused\)/)
  t.notMatch(refused.stderr, /sekrit/, 'the password in the URL is not repeated')
})

t.test('reset, unlock, require and rotate-keys against a live database', async (t) => {
  const shared = await sharedDatabase(t)
  const clock = new TestClock(Date.now()) // the CLI runs on the real clock: keep them together
  let database = await shared.open()
  let keys = TEST_KEYS

  async function app (): Promise<Harness> {
    const h = await createHarness(t, { database, clock, app: { keys } })
    return h
  }

  // ── Before: enrolled users, a locked one, one half-way through setup ───────────────────────
  let h = await app()
  await ensureDemoSchema(database.db)
  for (const username of USERS) {
    await createDemoUser(database.db, { username, password: PASSWORD, role: username === 'admin' ? 'admin' : 'user' })
    await h.app.twoFactor.onUserCreated(username)
  }
  // A user whose id is not their user name, never signed in: the CLI finds him by his login.
  await createDemoUser(database.db, { id: 'u-frank', username: 'frank', password: PASSWORD })
  const alice = await enrol(h, 'alice', PASSWORD)
  const bob = await enrol(h, 'bob', PASSWORD)
  const carol = await enrol(h, 'carol', PASSWORD)
  const guesser = h.client()
  await passwordStep(guesser, 'carol', PASSWORD)
  await guesser.get('/2fa/challenge')
  for (let i = 0; i < 5; i++) await guesser.post('/2fa/challenge', { code: '000000' })
  const dave = h.client()
  await passwordStep(dave, 'dave', PASSWORD)
  await dave.get('/')
  const daveKey = manualKeyFrom((await dave.get('/2fa/setup')).body)
  t.ok((await database.db.select().from(accounts).where(eq(accounts.userId, 'carol')))[0]?.lockedUntil, 'carol is locked')
  await h.app.close()
  await shared.release()

  // ── The operator's commands ────────────────────────────────────────────────────────────────
  const env = { TWO_FACTOR_KEYS: keys }
  const list = await cliHere(['list', '--json', ...shared.cliArgs], env)
  t.equal(list.code, 0, list.stderr)
  const listed = JSON.parse(list.stdout) as { users: Array<{ userId: string, status: string }>, total: number }
  t.same(Object.fromEntries(listed.users.map((u) => [u.userId, u.status])), {
    admin: 'awaiting', alice: 'enrolled', bob: 'enrolled', carol: 'locked', dave: 'not-required', erin: 'not-required'
  }, 'list reports what the tables know')
  const locked = await cliHere(['list', '--status', 'locked', ...shared.cliArgs], env)
  t.match(locked.stdout, /^USER\s+STATUS\s+REQUIRED FLAG\s+DETAILS\ncarol\s+locked\s+-\s+until \d{4}-\d\d-\d\d \d\d:\d\d UTC\n\n1–1 of 1\n$/)

  const status = await cliHere(['status', 'alice', ...shared.cliArgs], env)
  t.equal(status.code, 0)
  t.match(status.stdout, /Two-factor:\s+on since/)
  t.match(status.stdout, /Recovery codes:\s+10 unused/)
  const ghost = await cliHere(['status', 'ghost', ...shared.cliArgs], env)
  t.equal(ghost.code, 1)
  t.match(ghost.stderr, /no record of user "ghost"/)

  const reset = await cli(['reset', 'alice', '--reason', 'lost phone and codes', ...shared.cliArgs], env)
  t.equal(reset.code, 0, reset.stderr)
  t.match(reset.stdout, /alice: two-factor was reset/)
  const unlock = await cliHere(['unlock', 'carol', ...shared.cliArgs], env)
  t.equal(unlock.code, 0)
  t.match(unlock.stdout, /carol: unlocked\./)
  const again = await cliHere(['unlock', 'carol', ...shared.cliArgs], env)
  t.match(again.stdout, /carol is not locked; nothing to do\./)
  const require = await cliHere(['require', 'erin', 'on', ...shared.cliArgs], env)
  t.equal(require.code, 0)
  t.match(require.stdout, /erin: two-factor is now required; they set it up at their next sign-in\./)
  // The checkout's two-factor.config.ts hands the CLI the demo's adapter: user names work.
  const byLogin = await cli(['require', 'frank', 'on', ...shared.cliArgs], env)
  t.equal(byLogin.code, 0, byLogin.stderr)
  t.equal(byLogin.stdout, 'u-frank: two-factor is now required; they set it up at their next sign-in.\n', 'a login name, through the demo’s config file')
  t.match(byLogin.stderr, '"frank" is user id "u-frank".')
  const stranger = await cliHere(['require', 'nobody', 'on', ...shared.cliArgs], env)
  t.equal(stranger.code, 1, 'with the app’s adapter, a user the app does not have is refused')
  t.match(stranger.stderr, 'No user "nobody": the app has no user with that id or login name')

  const rotatedKeys = `${Keyring.generateSpec('k2')},${keys}`
  const badKeys = await cliHere(['rotate-keys', ...shared.cliArgs], { TWO_FACTOR_KEYS: 'k2:short' })
  t.equal(badKeys.code, 1)
  t.match(badKeys.stderr, /TWO_FACTOR_KEYS is invalid/, 'a bad key ring names the variable')
  const rotate = await cli(['rotate-keys', '--batch-size', '2', ...shared.cliArgs], { TWO_FACTOR_KEYS: rotatedKeys })
  t.equal(rotate.code, 0, rotate.stderr)
  t.match(rotate.stdout, /Re-sealed 2 secrets and 1 pending setup under key "k2"/)
  t.match(rotate.stdout, /Unused recovery codes made under older keys: 20 under "k1"/, 'recovery codes keep the old key in use')
  const twice = await cliHere(['rotate-keys', '--json', ...shared.cliArgs], { TWO_FACTOR_KEYS: rotatedKeys })
  t.match(JSON.parse(twice.stdout), { secrets: 0, pendingSecrets: 0, remaining: 0, failures: [] }, 'running it again finds nothing to do')

  const migrate = await cliHere(['migrate', ...shared.cliArgs], env)
  t.equal(migrate.code, 0)
  t.match(migrate.stdout, /up to date/)

  // ── After: the app again, on the new key alone ───────────────────────────────────────────
  database = await shared.open()
  const sealed = await database.db.select({ userId: accounts.userId, secret: accounts.secret }).from(accounts)
  const pending = await database.db.select({ userId: enrolments.userId, secret: enrolments.secret }).from(enrolments)
  for (const row of [...sealed, ...pending]) {
    if (row.secret !== null) t.match(row.secret, /^v1\.k2\./, `${row.userId}: sealed under k2`)
  }
  const cliEvents = await database.db.select().from(events).where(eq(events.actor, 'cli'))
  t.same(cliEvents.map((e) => [e.type, e.userId]).sort(), [
    ['disabled.by_admin', 'alice'], ['keys.rotated', null], ['keys.rotated', null], ['lockout.cleared', 'carol'], ['required.on', 'erin'], ['required.on', 'u-frank'], ['sessions.ended', 'alice']
  ].sort(), 'every change audited with actor cli')
  t.match(cliEvents.find((e) => e.type === 'disabled.by_admin')?.details, { reason: 'lost phone and codes' })
  t.match(cliEvents.find((e) => e.type === 'keys.rotated')?.details, { currentKeyId: 'k2', secrets: 2, pendingSecrets: 1 })

  keys = rotatedKeys.split(',')[0]!
  // Past every step used before (the enrolments moved the clock ahead of real time).
  clock.ms = Math.max(Date.now(), clock.ms) + 60_000
  h = await app()
  const aliceLogin = await passwordStep(h.client(), 'alice', PASSWORD)
  t.equal(aliceLogin.headers.location, '/', 'after the reset alice signs in with her password alone')
  t.equal((await passwordStep(h.client(), 'erin', PASSWORD)).headers.location, '/2fa/setup', 'erin is asked to set up 2FA')

  for (const [user, key] of [['bob', bob.manualKey], ['carol', carol.manualKey]] as const) {
    const client = h.client()
    t.equal((await passwordStep(client, user, PASSWORD)).headers.location, '/2fa/challenge')
    await client.get('/2fa/challenge')
    const done = await client.post('/2fa/challenge', { code: codeFor(key, clock.ms) })
    t.equal(done.statusCode, 303, `${user} signs in with the same authenticator, key k1 gone`)
    t.equal(done.headers.location, '/')
  }
  // The same browser, on the restarted app: a pending secret belongs to the session that opened it.
  const daveAgain = h.client()
  for (const [name, value] of dave.cookies) daveAgain.cookies.set(name, value)
  t.equal(manualKeyFrom((await daveAgain.get('/2fa/setup')).body), daveKey, 'dave’s pending setup survived the rotation')
  t.equal((await daveAgain.post('/2fa/setup/confirm', { code: codeFor(daveKey, clock.ms) })).statusCode, 200, 'and confirms with his code')
  void alice
  await h.app.close()
  await shared.release()

  // The demo keeps its key ring in a file beside its PGlite folder; the CLI finds it there.
  if (shared.demoKeysFile !== null) {
    const noKeys = await cli(['rotate-keys', ...shared.cliArgs])
    t.equal(noKeys.code, 1)
    t.match(noKeys.stderr, /TWO_FACTOR_KEYS is not set/, 'no key ring anywhere: says which variable')
    writeFileSync(shared.demoKeysFile, keys + '\n')
    const fromFile = await cli(['rotate-keys', ...shared.cliArgs])
    t.equal(fromFile.code, 0, fromFile.stderr)
    t.match(fromFile.stdout, /Re-sealed 0 secrets and 0 pending setups under key "k2"/, 'the demo’s key file was read')
  }
})
