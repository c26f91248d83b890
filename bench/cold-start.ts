// 7. Cold start: the demo as a new user starts it, `node --import=tsx demo-app/server.ts` on a
// fresh data directory (embedded PGlite, no DATABASE_URL), so the first run's work is all in it:
// keys and session secret generated, PGlite created, the plugin's migrations and the demo's
// schema, two users seeded with the demo's own scrypt cost. The PGlite cluster comes from the
// empty one the repository ships (demo-app/empty-cluster/, what a fresh clone has); the same
// start with DEMO_EMPTY_CLUSTER=off, where PGlite's initdb makes it, is measured too. Timed from the spawn until
// GET /login answers 200 (polled every POLL_MS), then the process is stopped and the directory
// removed. RUNS fresh starts, one after another; the figure is their median. The demo's output
// is timestamped too, to tell where the time goes (start of the script, users created,
// listening). tsx's transform cache is warm (the runner has loaded the same files), as it is
// for anyone's second `npm start`. The baseline is bench/lib/bare-server.ts started the same
// way: Fastify under tsx answering GET /login, the floor any app started like this pays.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchContext } from './context.ts'
import { median, figure, type Figure } from './lib/report.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEMO = 'demo-app/server.ts'
const BARE = 'bench/lib/bare-server.ts'
const RUNS = 3
const POLL_MS = 25
const GIVE_UP_MS = 60_000

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export interface ColdStart {
  /** Spawn to the first 200 of GET /login, s. */
  seconds: number
  /** When the demo printed each line, s after the spawn. */
  milestones: Array<{ at: number, line: string }>
}

/** One fresh start of `entry` (the demo); stopped (SIGTERM, SIGKILL after 5 s) and its directory removed. */
export async function coldStartOnce (entry = DEMO, extraEnv: NodeJS.ProcessEnv = {}): Promise<ColdStart> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tf-bench-cold-'))
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env, DEMO_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }
  // A fresh start: nothing from the runner's environment decides the database, keys or users.
  for (const name of ['DATABASE_URL', 'TWO_FACTOR_KEYS', 'SESSION_SECRET', 'DEMO_ADMIN_PASSWORD', 'DEMO_USER_PASSWORD', 'NODE_ENV', 'DEMO_EMPTY_CLUSTER']) delete env[name]
  Object.assign(env, extraEnv)
  const started = process.hrtime.bigint()
  const since = () => Number(process.hrtime.bigint() - started) / 1e9
  const child = spawn(process.execPath, ['--import=tsx', entry], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const milestones: ColdStart['milestones'] = []
  const output: string[] = []
  for (const stream of [child.stdout, child.stderr]) {
    let partial = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop()!
      for (const line of lines) {
        output.push(line)
        // Passwords the demo prints once are not kept.
        milestones.push({ at: since(), line: line.replace(/password: \S+/, 'password: …').slice(0, 100) })
      }
    })
  }
  let exited: number | null | undefined
  const exit = new Promise<void>((resolve) => child.once('exit', (code) => { exited = code; resolve() }))
  try {
    for (;;) {
      if (exited !== undefined) throw new Error(`${entry} exited with code ${exited} before answering: ${output.slice(-5).join(' | ')}`)
      if (since() * 1000 > GIVE_UP_MS) throw new Error(`${entry} did not answer GET /login within ${GIVE_UP_MS / 1000} s`)
      const status = await fetch(`http://127.0.0.1:${port}/login`, { signal: AbortSignal.timeout(2000) })
        .then(async (response) => { await response.arrayBuffer(); return response.status }, () => 0)
      if (status === 200) return { seconds: since(), milestones }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS))
    }
  } finally {
    if (exited === undefined) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exit
      clearTimeout(timer)
    }
    rmSync(dataDir, { recursive: true, force: true })
  }
}

export async function coldStart (ctx: BenchContext): Promise<Figure[]> {
  const runs: ColdStart[] = []
  const initdbRuns: ColdStart[] = []
  const bare: number[] = []
  const milestones = (run: ColdStart) => run.milestones.map((m) => `${m.at.toFixed(2)} s ${m.line.slice(0, 40)}`).join('; ') || 'no output'
  // Alternating, so that load on the shared machine falls on all three alike.
  for (let i = 0; i < RUNS; i++) {
    bare.push((await coldStartOnce(BARE)).seconds)
    const run = await coldStartOnce()
    runs.push(run)
    const initdb = await coldStartOnce(DEMO, { DEMO_EMPTY_CLUSTER: 'off' })
    initdbRuns.push(initdb)
    ctx.log(`  cold start ${i + 1}: ${run.seconds.toFixed(2)} s to the first 200 (bare Fastify ${bare[i]!.toFixed(2)} s); ${milestones(run)}`)
    ctx.log(`  cold start ${i + 1}, PGlite initdb (DEMO_EMPTY_CLUSTER=off): ${initdb.seconds.toFixed(2)} s; ${milestones(initdb)}`)
  }
  const seconds = runs.map((r) => r.seconds)
  const initdbSeconds = initdbRuns.map((r) => r.seconds)
  return [figure({
    key: 'cold-start',
    section: 'Cold start',
    name: 'demo, fresh data dir: spawn to first GET /login 200',
    value: median(seconds),
    baselineName: 'bare Fastify under tsx',
    baseline: median(bare),
    unit: 's',
    note: `median of ${RUNS} fresh starts (${seconds.map((s) => s.toFixed(2)).join(', ')} s), embedded PGlite from the shipped empty cluster`
  }), figure({
    section: 'Cold start',
    name: 'demo, fresh data dir, cluster made by PGlite initdb (DEMO_EMPTY_CLUSTER=off)',
    value: median(initdbSeconds),
    baselineName: 'bare Fastify under tsx',
    baseline: median(bare),
    unit: 's',
    note: `median of ${RUNS} fresh starts (${initdbSeconds.map((s) => s.toFixed(2)).join(', ')} s)`
  })]
}
