// `npm run bench [-- --write]`: the whole benchmark suite, end to end, on the machine's real
// Postgres (DATABASE_URL or postgres://postgres@127.0.0.1:5432). Every figure is printed next to
// a baseline measured in the same run, with their ratio; after the table, a machine-readable
// summary (bench/lib/summary.ts), `goals-missed: …` last. `--write` puts the table, the summary
// and the machine into bench/README.md. `--only a,b` runs only those sections (names in
// SECTIONS) on the same seeded database, without `--write`. Not part of `npm test`.
import { randomBytes } from 'node:crypto'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { ensureDemoSchema } from '../demo-app/app.ts'
import { Keyring, migrate } from '../plugin/index.ts'
import { adminListAtScale } from './admin-list.ts'
import { challengeThroughput } from './challenge.ts'
import { coldStart } from './cold-start.ts'
import type { BenchContext } from './context.ts'
import { memoryFootprint, pageWeights } from './footprint.ts'
import { gateOverhead } from './gate.ts'
import { createBenchDatabase, SMALL_BENCH_DATABASE } from './lib/database.ts'
import { LARGE_POPULATION, SMALL_POPULATION } from './lib/population.ts'
import { markdownTable, replaceSection, textTable, type Figure } from './lib/report.ts'
import { Seeder } from './lib/seed.ts'
import { ServerProcess } from './lib/server-process.ts'
import { summarise, summaryLines, summaryMarkdown } from './lib/summary.ts'
import { recoveryCodeCost } from './recovery.ts'
import { statementsPerSignIn } from './statements.ts'
import { sustainedLoad } from './sustained.ts'

const README = fileURLToPath(new URL('README.md', import.meta.url))
const CONNECTIONS = 10
const write = process.argv.includes('--write')
const SECTIONS = ['gate', 'challenge', 'statements', 'recovery', 'admin-list', 'footprint', 'cold-start', 'sustained'] as const
type Section = typeof SECTIONS[number]

/** `--only a,b` (or `--only=a,b`): the sections to run; every one without it. */
function onlyArgument (): Section[] | undefined {
  const args = process.argv.slice(2)
  const at = args.findIndex((a) => a === '--only' || a.startsWith('--only='))
  if (at === -1) return undefined
  const value = args[at]!.includes('=') ? args[at]!.slice('--only='.length) : args[at + 1] ?? ''
  const names = value.split(',').filter((n) => n !== '')
  const unknown = names.filter((n) => !(SECTIONS as readonly string[]).includes(n))
  if (names.length === 0 || unknown.length > 0) {
    console.error(`--only takes section names, comma-separated: ${SECTIONS.join(', ')}${unknown.length > 0 ? ` (not: ${unknown.join(', ')})` : ''}`)
    process.exit(2)
  }
  if (write) {
    console.error('--write rewrites the whole table: run every section for it (no --only)')
    process.exit(2)
  }
  return names as Section[]
}
const only = onlyArgument()
const selected = (section: Section): boolean => only === undefined || only.includes(section)
const suiteStarted = Date.now()
const loadAtStart = loadavg()[0]!

const log = (message: string) => console.log(`[${((Date.now() - suiteStarted) / 1000).toFixed(0).padStart(3)} s] ${message}`)

async function timed<T> (name: string, task: () => Promise<T>): Promise<T> {
  const started = Date.now()
  log(`${name}…`)
  const result = await task()
  log(`${name}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return result
}

async function machine (database: { sql: import('postgres').Sql }): Promise<string> {
  const [{ version }] = await database.sql<[{ version: string }]>`select current_setting('server_version') as version`
  const cpu = cpus()
  return [
    `- CPU: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown'} (\`nproc\` = ${cpu.length})`,
    `- Memory: ${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `- Node.js ${process.version}, PostgreSQL ${version} on the same machine`,
    `- Load: autocannon in the runner process; each app under test in its own process; ${CONNECTIONS} connections`,
    `- Run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end ` +
      '(the machine is shared: other processes compete for the 2 cores, which is why the gate ratio is the median of rotating rounds)'
  ].join('\n')
}

/** No Postgres, no benchmark: say so in one line rather than with a stack trace. */
function stop (error: unknown): never {
  console.error((error as Error).message)
  process.exit(1)
}

const database = await createBenchDatabase().catch(stop)
// The 1 000-user database is only the recovery codes' baseline.
const smallDatabase = selected('recovery') ? await createBenchDatabase(SMALL_BENCH_DATABASE).catch(stop) : undefined
const children: ServerProcess[] = []
try {
  const keys = Keyring.generateSpec('k1')
  const keyring = Keyring.parse(keys)
  const settings = { databaseUrl: database.url, keys, sessionSecret: randomBytes(32).toString('base64url') }
  const seeders = await timed(`seeding ${SMALL_POPULATION.toLocaleString('en')} and ${LARGE_POPULATION.toLocaleString('en')} users`, async () => {
    const [seeder, smallSeeder] = await Promise.all([database, smallDatabase].map(async (target, i) => {
      if (target === undefined) return undefined
      await migrate(target.db)
      await ensureDemoSchema(target.db)
      const seeder = new Seeder(target.sql, keyring)
      if (i === 0) await seeder.seedSpecialUsers()
      await seeder.seedUsers(1, i === 0 ? LARGE_POPULATION : SMALL_POPULATION)
      return seeder
    }))
    return { seeder: seeder!, smallSeeder }
  })

  const figures: Figure[] = []
  const recovery = smallDatabase === undefined || seeders.smallSeeder === undefined
    ? []
    : await timed('recovery codes, 1 000 vs 100 000 users', async () => await recoveryCodeCost(keyring, settings.sessionSecret,
      { database: smallDatabase, seeder: seeders.smallSeeder! }, { database, seeder: seeders.seeder }))

  const baseline = await ServerProcess.start('baseline', settings)
  children.push(baseline)
  const plugin = await ServerProcess.start('plugin', settings)
  children.push(plugin)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const idle = { baseline: await baseline.memory(), plugin: await plugin.memory() }
  const ctx: BenchContext = { database, keyring, settings, seeder: seeders.seeder, plugin, baseline, signIns: 0, connections: CONNECTIONS, log }

  if (selected('gate')) figures.push(...await timed('gate overhead', async () => await gateOverhead(ctx)))
  if (selected('challenge')) figures.push(...await timed('challenge throughput', async () => await challengeThroughput(ctx)))
  if (selected('statements')) figures.push(...await timed('SQL statements per valid code', async () => (await statementsPerSignIn(ctx)).figures))
  figures.push(...recovery)
  if (selected('admin-list')) figures.push(...await timed('admin list at 100 000 users', async () => await adminListAtScale(ctx)))
  if (selected('footprint')) {
    figures.push(...await timed('page weight', async () => await pageWeights(ctx)))
    figures.push(...await timed('memory after 10 000 sign-ins', async () => await memoryFootprint(ctx, idle)))
  }
  if (selected('cold-start')) figures.push(...await timed('cold start of the demo', async () => await coldStart(ctx)))
  // Last: it adds its own users to the database, after every other figure is measured.
  if (selected('sustained')) figures.push(...await timed('sustained load per driver, 60 s each', async () => await sustainedLoad(ctx)))

  const total = (Date.now() - suiteStarted) / 1000
  console.log('\n' + textTable(figures) + '\n')
  for (const f of figures.filter((f) => f.note !== undefined)) console.log(`  ${f.section} / ${f.name}: ${f.note}`)
  log(`suite: ${total.toFixed(0)} s; load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} now`)

  // With --only, the lines of what ran (the others would read NaN and count as missed goals).
  const summary = summarise(figures).filter((entry) => only === undefined || Number.isFinite(entry.value))
  if (write) {
    replaceSection(README, 'machine', await machine(database))
    replaceSection(README, 'results', markdownTable(figures) + `\n\nWhole suite: ${total.toFixed(0)} s.`)
    replaceSection(README, 'summary', summaryMarkdown(summary))
    log('bench/README.md updated')
  }
  const missed = figures.filter((f) => f.pass === false)
  if (missed.length > 0) {
    console.error(`Missed target: ${missed.map((f) => `${f.section} / ${f.name} (${f.ratio.toFixed(2)} vs ${f.target})`).join('; ')}`)
    process.exitCode = 1
  }
  // Last: the machine-readable summary; the goals it checks never change the exit code.
  console.log('\n' + summaryLines(summary).join('\n'))
} finally {
  for (const child of children) await child.stop()
  await smallDatabase?.drop()
  await database.drop()
}
