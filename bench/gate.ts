// 1. Gate overhead: a signed-in session on a trivial route, the demo app with the
// plugin against the same sessions without it. The plugin's security headers go on its own
// pages by default; the demo as shipped puts them on every route (`helmet: 'app'`), which is
// measured against the baseline plus the same headers, so the headers' cost is told from the
// gate's (on this 2-core machine the load generator parses ~600 bytes of headers a response on
// the same cores).
//
// The machine is small and shared, so throughput drifts between runs by more than the 5 % being
// measured, and one process of an app can be several per cent slower than another process of
// the same code for its whole life (seen here: 9 µs a request apart, JIT and memory layout).
// So each side runs in INSTANCES processes; each round runs every side once, on the round's
// instance, in a rotating order; a round's ratio compares runs made seconds apart; the figure is
// the median of the rounds' ratios. The apps' own CPU time per request is reported too: it is
// what the plugin adds, and far less disturbed by other load than req/s.
//
// Then a signed-in request end to end, the session read and the gate, against a request with no
// session at all: the plugin app's signed-in GET /bench/ping against the baseline app's
// GET /bench/bare without a cookie, in shorter rounds (END_TO_END_ROUNDS of
// END_TO_END_SECONDS, alternating which goes first) on the same processes.
import type { BenchContext } from './context.ts'
import { load, type LoadResult } from './lib/load.ts'
import { GATE_USER, PASSWORD } from './lib/population.ts'
import { figure, median, type Figure } from './lib/report.ts'
import { ServerProcess } from './lib/server-process.ts'
import type { AppVariant } from './server.ts'
import { passwordStep } from './lib/session-client.ts'

const WARM_UP_SECONDS = 1
const RUN_SECONDS = 2
const INSTANCES = 3
const ROUNDS = 9
export const GATE_TARGET = 0.95
const END_TO_END_ROUNDS = 6
const END_TO_END_SECONDS = 1

type Side = 'baseline' | 'headers' | 'plugin' | 'pluginHeaders'
interface Run { result: LoadResult, cpuMicrosPerRequest: number }

async function baselineSession (origin: string): Promise<string> {
  const response = await fetch(`${origin}/bench/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: GATE_USER })
  })
  const cookie = response.headers.getSetCookie().map((c) => c.split(';', 1)[0]!).find((c) => c.startsWith('tf.sid='))
  if (!response.ok || cookie === undefined) throw new Error(`baseline sign-in failed: HTTP ${response.status}`)
  return cookie
}

async function checkSignedIn (origin: string, cookie: string, side: string): Promise<void> {
  const response = await fetch(`${origin}/bench/ping`, { headers: { cookie } })
  const body = await response.json() as { userId?: unknown }
  if (response.status !== 200 || body.userId !== GATE_USER) throw new Error(`${side}: the session is not signed in (HTTP ${response.status})`)
}

const VARIANTS: Record<Side, AppVariant> = { baseline: 'baseline', headers: 'baseline-headers', plugin: 'plugin', pluginHeaders: 'plugin-headers' }
const ORDER: Side[] = ['baseline', 'plugin', 'headers', 'pluginHeaders']

export async function gateOverhead (ctx: BenchContext): Promise<Figure[]> {
  // The suite's own baseline and plugin apps are the first instance of their sides.
  const started: ServerProcess[] = []
  const start = async (side: Side): Promise<ServerProcess> => {
    const app = await ServerProcess.start(VARIANTS[side], ctx.settings)
    started.push(app)
    return app
  }
  try {
    const signIn = async (side: Side, app: ServerProcess): Promise<string> => {
      if (side === 'baseline' || side === 'headers') return await baselineSession(app.origin)
      const signedIn = await passwordStep(app.origin, GATE_USER, PASSWORD)
      if (signedIn.state !== 'signed-in') throw new Error(`gate user: expected signed-in, got ${signedIn.state}`)
      return signedIn.cookie
    }
    const instances = {} as Record<Side, Array<{ app: ServerProcess, cookie: string }>>
    for (const side of ORDER) {
      const apps = side === 'baseline' ? [ctx.baseline] : side === 'plugin' ? [ctx.plugin] : []
      while (apps.length < INSTANCES) apps.push(await start(side))
      instances[side] = []
      for (const app of apps) instances[side].push({ app, cookie: await signIn(side, app) })
    }
    const runs = Object.fromEntries(ORDER.map((side) => [side, [] as Run[]])) as Record<Side, Run[]>
    /** `bare`: the baseline app's GET /bench/bare, without a cookie (no session at all). */
    const run = async (side: Side, instance: number, duration: number, bare = false): Promise<Run> => {
      const { app, cookie } = instances[side][instance]!
      const cpuBefore = await app.cpuMicros()
      const result = bare
        ? await load({ url: `${app.origin}/bench/bare`, connections: ctx.connections, duration })
        : await load({ url: `${app.origin}/bench/ping`, connections: ctx.connections, duration, headers: { cookie } })
      const cpuMicrosPerRequest = (await app.cpuMicros() - cpuBefore) / result.requests
      if (result.statuses['200'] !== result.requests) throw new Error(`gate ${side}${bare ? ' (bare)' : ''}: not every response was 200: ${JSON.stringify(result.statuses)}`)
      return { result, cpuMicrosPerRequest }
    }

    for (const side of ORDER) {
      for (let instance = 0; instance < INSTANCES; instance++) {
        const { app, cookie } = instances[side][instance]!
        await checkSignedIn(app.origin, cookie, side)
        await run(side, instance, WARM_UP_SECONDS)
      }
    }
    const ratios: Record<'plugin' | 'pluginHeaders', number[]> = { plugin: [], pluginHeaders: [] }
    for (let round = 0; round < ROUNDS; round++) {
      const instance = round % INSTANCES
      const shift = round % ORDER.length
      for (const side of [...ORDER.slice(shift), ...ORDER.slice(0, shift)]) runs[side].push(await run(side, instance, RUN_SECONDS))
      const rps = (side: Side) => runs[side][round]!.result.requestsPerSecond
      ratios.plugin.push(rps('plugin') / rps('baseline'))
      ratios.pluginHeaders.push(rps('pluginHeaders') / rps('headers'))
      ctx.log(`  gate round ${round + 1} (instance ${instance + 1}): baseline ${rps('baseline').toFixed(0)}, plugin ${rps('plugin').toFixed(0)}; ` +
        `with headers ${rps('headers').toFixed(0)}, plugin with headers ${rps('pluginHeaders').toFixed(0)} req/s`)
    }

    // End to end: the signed-in request against one with no session at all.
    for (let instance = 0; instance < INSTANCES; instance++) await run('baseline', instance, WARM_UP_SECONDS, true)
    const endToEnd = { bare: [] as Run[], signedIn: [] as Run[], ratios: [] as number[] }
    for (let round = 0; round < END_TO_END_ROUNDS; round++) {
      const instance = round % INSTANCES
      const measure = {
        bare: async () => endToEnd.bare.push(await run('baseline', instance, END_TO_END_SECONDS, true)),
        signedIn: async () => endToEnd.signedIn.push(await run('plugin', instance, END_TO_END_SECONDS))
      }
      for (const which of round % 2 === 0 ? ['bare', 'signedIn'] as const : ['signedIn', 'bare'] as const) await measure[which]()
      const [bare, signedIn] = [endToEnd.bare[round]!.result.requestsPerSecond, endToEnd.signedIn[round]!.result.requestsPerSecond]
      endToEnd.ratios.push(signedIn / bare)
      ctx.log(`  end-to-end round ${round + 1} (instance ${instance + 1}): bare route, no session ${bare.toFixed(0)}, plugin signed-in ${signedIn.toFixed(0)} req/s`)
    }

    const of = (side: Side, pick: (run: Run) => number) => median(runs[side].map(pick))
    const rps = (run: Run) => run.result.requestsPerSecond
    const cpu = (run: Run) => run.cpuMicrosPerRequest
    const note = (list: number[]) => `median of ${ROUNDS} rounds (${list.map((r) => r.toFixed(2)).join(', ')}), ${INSTANCES} processes a side, ${RUN_SECONDS} s runs, ${ctx.connections} connections`
    const vsBaseline = figure({
      key: 'gate',
      section: 'Gate',
      name: 'signed-in GET, req/s',
      value: of('plugin', rps),
      baselineName: 'same sessions, no plugin',
      baseline: of('baseline', rps),
      ratio: median(ratios.plugin),
      unit: 'req/s',
      target: `≥ ${GATE_TARGET}`,
      note: note(ratios.plugin)
    })
    vsBaseline.pass = vsBaseline.ratio >= GATE_TARGET
    const withHeaders = 'demo as shipped (helmet: \'app\'), '
    return [
      vsBaseline,
      figure({ section: 'Gate', name: 'signed-in GET, p99 latency', value: of('plugin', (r) => r.result.p99), baselineName: 'same sessions, no plugin', baseline: of('baseline', (r) => r.result.p99), unit: 'ms' }),
      figure({ section: 'Gate', name: 'app CPU per request', value: of('plugin', cpu), baselineName: 'same sessions, no plugin', baseline: of('baseline', cpu), unit: 'µs' }),
      figure({ section: 'Gate', name: withHeaders + 'signed-in GET, req/s', value: of('pluginHeaders', rps), baselineName: 'same sessions + the same headers', baseline: of('headers', rps), ratio: median(ratios.pluginHeaders), unit: 'req/s', note: note(ratios.pluginHeaders) }),
      figure({ section: 'Gate', name: withHeaders + 'app CPU per request', value: of('pluginHeaders', cpu), baselineName: 'same sessions + the same headers', baseline: of('headers', cpu), unit: 'µs' }),
      figure({
        key: 'signed-in',
        section: 'Gate',
        name: 'signed-in GET end to end (session read + gate), req/s',
        value: median(endToEnd.signedIn.map(rps)),
        baselineName: 'bare route, no session',
        baseline: median(endToEnd.bare.map(rps)),
        ratio: median(endToEnd.ratios),
        unit: 'req/s',
        note: `median of ${END_TO_END_ROUNDS} rounds (${endToEnd.ratios.map((r) => r.toFixed(2)).join(', ')}), ${END_TO_END_SECONDS} s runs, the gate's processes`
      }),
      figure({ section: 'Gate', name: 'signed-in GET end to end, app CPU per request', value: median(endToEnd.signedIn.map(cpu)), baselineName: 'bare route, no session', baseline: median(endToEnd.bare.map(cpu)), unit: 'µs' })
    ]
  } finally {
    for (const app of started) await app.stop()
  }
}
