// What the CLI prints when the data is hostile. User ids, actors, event types and policy roles
// are whatever the app or an attacker stored; printed raw, an id holding "\x1b[2K\r" erases the
// operator's line and a newline fakes a row. The text output spells such characters out, --json
// keeps them exact, and a reader that stops early (`| head -1`) ends the CLI quietly.
// The CLI runs as a child process, as an operator runs it, with the ids passed through argv.
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { PGlite } from '@electric-sql/pglite'
import { drizzle } from 'drizzle-orm/pglite'
import type { TwoFactorDatabase } from '../../plugin/index.ts'
import { migrate } from '../../plugin/db/migrate.ts'
import { accounts, events, settings } from '../../plugin/db/schema.ts'
import { main } from '../../plugin/cli/main.ts'
import { terminalText } from '../../plugin/cli/terminal-text.ts'
import { createTestDatabase, usingPostgres } from '../helpers/db.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLI = join(ROOT, 'plugin', 'cli.ts')
// The CLI runs in a folder of its own, as on a server: the checkout's two-factor.config.ts
// (the demo's users) is not this database's. So tsx is named by its path.
const TSX = import.meta.resolve('tsx')
const WORK = mkdtempSync(join(tmpdir(), 'two-factor-cli-cwd-'))
t.teardown(() => rmSync(WORK, { recursive: true, force: true }))

/** Everything a terminal could act on, but the newlines that end the CLI's own lines. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udfff]/u

/** Hostile ids, each with what the text output shows instead. */
const HOSTILE: Array<[id: string, shown: string]> = [
  ['mallory\u001b[2K\r<fake line>', 'mallory\\x1b[2K\\r<fake line>'],
  ['eve\nalice  enrolled', 'eve\\nalice  enrolled'],
  ['csi\u009b2Jgone', 'csi\\x9b2Jgone'],
  ['del\u007fete', 'del\\x7fete'],
  ['line\u2028sep\u2029para', 'line\\u2028sep\\u2029para'],
  ['tab\tbell\u0007', 'tab\\tbell\\x07']
]
/** Ordinary ids print as they are. */
const PLAIN = ['zoë', 'DOMAIN\\bob']
const EVENT_ACTOR = 'ev\u001b]0;owned\u0007il'
const EVENT_TYPE = 'login.ok\r\nFAKE: reset by admin'
const ROLE = 'ops\u001b[8m'
const MANY = 1500

interface Run { code: number | null, stdout: string, stderr: string }

function childEnv (): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries({ ...process.env, DATABASE_URL: undefined, TWO_FACTOR_KEYS: undefined })) {
    if (value !== undefined) env[key] = value
  }
  return env
}

/** Runs the CLI from source, as `npm run two-factor -- …` does; arguments go through argv as they are. */
function cli (args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`--import=${TSX}`, CLI, ...args], { cwd: WORK, env: childEnv(), timeout: 60_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr })
    })
  })
}

/** The same CLI in this process, for what argv can't carry (a lone surrogate) and fewer start-ups. */
async function cliHere (args: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await main(args, { env: {}, cwd: WORK, stdout: (text) => { stdout += text }, stderr: (text) => { stderr += text } })
  return { code, stdout, stderr }
}

/**
 * A migrated database holding the hostile accounts (required, so `list --status awaiting` shows
 * just them), an event on one, a policy with a hostile role, and MANY ordinary accounts for a
 * listing longer than a pipe holds. Returns the CLI's connection arguments; a PGlite folder is
 * closed again before the CLI opens it.
 */
async function seededDatabase (t: Test): Promise<string[]> {
  let db: TwoFactorDatabase
  let done: () => Promise<void>
  let cliArgs: string[]
  if (usingPostgres()) {
    const database = await createTestDatabase(t)
    db = database.db
    done = async () => {}
    cliArgs = ['--database-url', database.url!]
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'two-factor-cli-output-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const dataDir = join(dir, 'pglite')
    const client = new PGlite(dataDir)
    await client.waitReady
    db = drizzle(client) as unknown as TwoFactorDatabase
    done = () => client.close()
    cliArgs = ['--data-dir', dataDir]
  }
  await migrate(db)
  await db.insert(accounts).values([...HOSTILE.map(([id]) => id), ...PLAIN].map((userId) => ({ userId, required: true })))
  await db.insert(accounts).values(Array.from({ length: MANY }, (_, i) => ({ userId: `user-${String(i).padStart(5, '0')}-${'x'.repeat(120)}` })))
  await db.insert(events).values({ userId: HOSTILE[0]![0], actor: EVENT_ACTOR, type: EVENT_TYPE, details: { reason: 'r\u001b[1A' } })
  // An audit log longer than a pipe holds (about 300 kB as JSON lines), on ordinary users.
  const at = Date.now() - 60_000
  await db.insert(events).values(Array.from({ length: MANY }, (_, i) => ({
    at: new Date(at - i * 1000), userId: `user-${String(i).padStart(5, '0')}`, actor: 'cli', type: 'required.on', details: { note: 'y'.repeat(120) }
  })))
  await db.insert(settings).values({ key: 'policy', value: { requiredRoles: [ROLE] } })
  await done()
  return cliArgs
}

t.test('terminalText spells out what a terminal would act on, and nothing else', async (t) => {
  // Test names stay printable themselves: a raw U+2028 in one breaks the TAP stream.
  for (const [id, shown] of HOSTILE) t.equal(terminalText(id), shown, shown)
  t.equal(terminalText('\u0000\u001f\u0080\u009f'), '\\x00\\x1f\\x80\\x9f', 'both ends of C0 and C1')
  t.equal(terminalText('a\ud800b\udfffc'), 'a\\ud800b\\udfffc', 'lone surrogates')
  t.equal(terminalText('\ud83d'), '\\ud83d', 'a high surrogate at the end')
  for (const plain of [...PLAIN, '😀 emoji', '日本語', 'ä\u0308', '\u00a0nbsp', '']) t.equal(terminalText(plain), plain, `unchanged: ${plain}`)
  for (const [id] of HOSTILE) {
    t.notMatch(terminalText(id), RAW_CONTROL, 'no raw control left')
    t.equal(terminalText(terminalText(id)), terminalText(id), 'escaping twice changes nothing')
  }
})

t.test('text output escapes stored and typed text; --json keeps it exact', async (t) => {
  const cliArgs = await seededDatabase(t)
  const ids = [...HOSTILE.map(([id]) => id), ...PLAIN]
  const shownOf = new Map([...HOSTILE, ...PLAIN.map((id) => [id, id] as [string, string])])

  // ── list ─────────────────────────────────────────────────────────────────────────────────
  const list = await cli(['list', '--status', 'awaiting', ...cliArgs])
  t.equal(list.code, 0, list.stderr)
  t.notMatch(list.stdout, RAW_CONTROL, 'list: no raw control characters')
  const lines = list.stdout.split('\n')
  const rows = lines.slice(1, 1 + ids.length)
  t.match(lines[0], /^USER\s+STATUS\s+REQUIRED FLAG\s+DETAILS$/)
  t.equal(lines[1 + ids.length], '', 'one line per account: no id started a line of its own')
  t.equal(lines[2 + ids.length], `1–${ids.length} of ${ids.length}`)
  t.same(rows.map((row) => row.slice(0, lines[0]!.indexOf('STATUS')).trimEnd()).sort(), [...shownOf.values()].sort(), 'each id shown escaped')
  const statusColumn = lines[0]!.indexOf('STATUS')
  const widest = Math.max(...[...shownOf.values()].map((s) => s.length))
  t.equal(statusColumn, widest + 2, 'the columns are as wide as the escaped ids')
  for (const row of rows) t.equal(row.indexOf('awaiting setup'), statusColumn, `aligned: ${row}`)
  t.match(list.stdout, 'roles ops\\x1b[8m', 'policy roles are escaped too')

  const listJson = await cli(['list', '--status', 'awaiting', '--json', ...cliArgs])
  t.equal(listJson.code, 0, listJson.stderr)
  t.notMatch(listJson.stdout.replace(/\n$/, ''), /[\u0000-\u001f]/, 'JSON escapes C0 itself')
  t.same((JSON.parse(listJson.stdout) as { users: Array<{ userId: string }> }).users.map((u) => u.userId).sort(), [...ids].sort(), '--json gives the exact ids')

  // ── status, the id given through argv as it is ───────────────────────────────────────────
  const [mallory, mallorysShown] = HOSTILE[0]!
  const status = await cli(['status', mallory, ...cliArgs])
  t.equal(status.code, 0, status.stderr)
  t.notMatch(status.stdout, RAW_CONTROL, 'status: no raw control characters')
  t.match(status.stdout, `User:             ${mallorysShown}\n`)
  t.match(status.stdout, '  login.ok\\r\\nFAKE: reset by admin (by ev\\x1b]0;owned\\x07il)\n', 'event type and actor escaped')
  t.notMatch(status.stdout, /^FAKE/m, 'no faked line')
  // Two more in this process: the same code, without a PGlite start-up in a new process each.
  for (const [id, shown] of HOSTILE.slice(1, 3)) {
    const run = await cliHere(['status', id, ...cliArgs])
    t.equal(run.code, 0, run.stderr)
    t.notMatch(run.stdout, RAW_CONTROL)
    t.match(run.stdout, `User:             ${shown}\n`, `status ${shown}`)
  }

  const statusJson = await cli(['status', mallory, '--json', ...cliArgs])
  t.equal(statusJson.code, 0, statusJson.stderr)
  const parsed = JSON.parse(statusJson.stdout) as { userId: string, recentEvents: Array<{ type: string, actor: string }> }
  t.equal(parsed.userId, mallory, '--json status gives the exact id')
  t.match(parsed.recentEvents, [{ type: EVENT_TYPE, actor: EVENT_ACTOR }], 'and the exact event')

  // ── messages that quote what was typed ───────────────────────────────────────────────────
  const unknown = await cliHere(['status', 'ghost\u001b[2K\r', ...cliArgs])
  t.equal(unknown.code, 1)
  t.notMatch(unknown.stderr, RAW_CONTROL)
  t.match(unknown.stderr, 'no record of user "ghost\\x1b[2K\\r"')
  const usage = await cliHere(['require', 'ghost', 'maybe\ud800\u009b', ...cliArgs])
  t.equal(usage.code, 2)
  t.notMatch(usage.stderr, RAW_CONTROL)
  t.match(usage.stderr, 'not "maybe\\ud800\\x9b"', 'a lone surrogate typed (in-process: argv can’t carry one)')
  const command = await cliHere(['frob\u001b[2K', ...cliArgs])
  t.match(command.stderr, 'Unknown command "frob\\x1b[2K"')
  const option = await cliHere(['list', '--fr\u001bob', ...cliArgs])
  t.equal(option.code, 2)
  t.notMatch(option.stderr, RAW_CONTROL, 'node’s own message about an option is escaped too')

  const eventsText = await cliHere(['events', '--limit', '2', ...cliArgs])
  t.equal(eventsText.code, 0, eventsText.stderr)
  t.notMatch(eventsText.stdout, RAW_CONTROL, 'events: no raw control characters')
  t.match(eventsText.stdout, `  login.ok\\r\\nFAKE: reset by admin  ${mallorysShown}  by ev\\x1b]0;owned\\x07il  {"reason":"r\\u001b[1A"}\n`, 'events: type, user, actor and details escaped')
  t.notMatch(eventsText.stdout, /^FAKE/m, 'no faked line')

  const unlock = await cliHere(['unlock', HOSTILE[1]![0], ...cliArgs])
  t.equal(unlock.stdout, 'eve\\nalice  enrolled is not locked; nothing to do.\n')
  // Last: it writes a row.
  const required = await cliHere(['require', 'new\u001b[1Aone', 'on', ...cliArgs])
  t.equal(required.code, 0, required.stderr)
  t.equal(required.stdout, 'new\\x1b[1Aone: two-factor is now required; they set it up at their next sign-in.\n')
  t.match(required.stderr, 'no sign-in by "new\\x1b[1Aone"')

  // ── a reader that stops early ────────────────────────────────────────────────────────────
  // About 200 kB in one write, more than a pipe holds: the CLI is still writing when the
  // pipe closes after the first chunk, and that write fails with EPIPE.
  const child = spawn(process.execPath, [`--import=${TSX}`, CLI, 'list', '--status', 'not-required', '--limit', '1000', ...cliArgs], {
    cwd: WORK, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe']
  })
  let first = ''
  let stderr = ''
  child.stdout.once('data', (chunk: Buffer) => {
    first = chunk.toString()
    child.stdout.destroy()
  })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  t.match(first, /^USER\s+STATUS/, 'the reader got the start of the list')
  t.equal(code, 0, 'a closed pipe ends the CLI with its own exit code')
  t.equal(stderr, '', 'and quietly: no EPIPE, no stack trace')

  // The export as an operator pipes it: a real `head`, and the CLI's own exit status (pipefail).
  const head = await new Promise<Run>((resolve) => {
    execFile('bash', ['-c', 'set -o pipefail; "$@" | head -1', 'bash', process.execPath, `--import=${TSX}`, CLI, 'events', '--format', 'jsonl', ...cliArgs],
      { cwd: WORK, env: childEnv(), timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr })
      })
  })
  t.equal(head.code, 0, 'events --format jsonl | head -1: exit 0')
  t.equal(head.stderr, '', 'no EPIPE, no stack trace')
  t.equal(head.stdout.split('\n').length, 2, 'one line')
  t.match(JSON.parse(head.stdout), { type: 'required.on', userId: 'new\u001b[1Aone', actor: 'cli' }, 'the newest event (the require above), exact')
})
