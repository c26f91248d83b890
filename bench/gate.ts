// 1. Gate overhead (SPEC §11): a signed-in session on a trivial route, the demo app with the
// plugin against the same sessions without it. A third app, the baseline plus the plugin's
// security headers, tells what the headers cost from what the gate costs: the plugin puts
// helmet's headers on every response of the host (a host that already uses helmet pays them
// anyway), and on this 2-core machine the load generator parses them on the same cores.
//
// The machine is small and shared, so throughput drifts between runs by more than the 5 % being
// measured. Runs therefore rotate (each round runs the three apps one after the other, in a
// different order each round), each round's ratio compares runs made seconds apart, and the
// figure is the median of those ratios. The apps' own CPU time per request is reported too: it
// is what the plugin adds, and it is far less disturbed by other load than req/s.
import type { BenchContext } from './context.ts'
import { load, type LoadResult } from './lib/load.ts'
import { GATE_USER, PASSWORD } from './lib/population.ts'
import { figure, median, type Figure } from './lib/report.ts'
import { ServerProcess } from './lib/server-process.ts'
import { passwordStep } from './lib/session-client.ts'

const WARM_UP_SECONDS = 2
const RUN_SECONDS = 2
const ROUNDS = 8
export const GATE_TARGET = 0.95

type Side = 'baseline' | 'headers' | 'plugin'
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

export async function gateOverhead (ctx: BenchContext): Promise<Figure[]> {
  const headersApp = await ServerProcess.start('baseline-headers', ctx.settings)
  try {
    const plugin = await passwordStep(ctx.plugin.origin, GATE_USER, PASSWORD)
    if (plugin.state !== 'signed-in') throw new Error(`gate user: expected signed-in, got ${plugin.state}`)
    const sides: Record<Side, { app: ServerProcess, cookie: string, runs: Run[] }> = {
      baseline: { app: ctx.baseline, cookie: await baselineSession(ctx.baseline.origin), runs: [] },
      headers: { app: headersApp, cookie: await baselineSession(headersApp.origin), runs: [] },
      plugin: { app: ctx.plugin, cookie: plugin.cookie, runs: [] }
    }
    const run = async (side: Side, duration: number): Promise<Run> => {
      const { app, cookie } = sides[side]
      const cpuBefore = await app.cpuMicros()
      const result = await load({ url: `${app.origin}/bench/ping`, connections: ctx.connections, duration, headers: { cookie } })
      const cpuMicrosPerRequest = (await app.cpuMicros() - cpuBefore) / result.requests
      if (result.statuses['200'] !== result.requests) throw new Error(`gate ${side}: not every response was 200: ${JSON.stringify(result.statuses)}`)
      return { result, cpuMicrosPerRequest }
    }

    const order: Side[] = ['baseline', 'headers', 'plugin']
    for (const side of order) {
      await checkSignedIn(sides[side].app.origin, sides[side].cookie, side)
      await run(side, WARM_UP_SECONDS)
    }
    const ratios: Record<'baseline' | 'headers', number[]> = { baseline: [], headers: [] }
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of [...order.slice(round % 3), ...order.slice(0, round % 3)]) sides[side].runs.push(await run(side, RUN_SECONDS))
      const rps = (side: Side) => sides[side].runs[round]!.result.requestsPerSecond
      ratios.baseline.push(rps('plugin') / rps('baseline'))
      ratios.headers.push(rps('plugin') / rps('headers'))
      ctx.log(`  gate round ${round + 1}: baseline ${rps('baseline').toFixed(0)}, with headers ${rps('headers').toFixed(0)}, plugin ${rps('plugin').toFixed(0)} req/s`)
    }

    const of = (side: Side, pick: (run: Run) => number) => median(sides[side].runs.map(pick))
    const rps = (run: Run) => run.result.requestsPerSecond
    const note = (list: number[]) => `median of ${ROUNDS} rounds (${list.map((r) => r.toFixed(2)).join(', ')}), ${RUN_SECONDS} s runs, ${ctx.connections} connections`
    const vsBaseline = figure({
      section: 'Gate',
      name: 'signed-in GET, req/s',
      value: of('plugin', rps),
      baselineName: 'same sessions, no plugin',
      baseline: of('baseline', rps),
      ratio: median(ratios.baseline),
      unit: 'req/s',
      target: `≥ ${GATE_TARGET}`,
      note: note(ratios.baseline)
    })
    vsBaseline.pass = vsBaseline.ratio >= GATE_TARGET
    const cpu = (run: Run) => run.cpuMicrosPerRequest
    return [
      vsBaseline,
      figure({ section: 'Gate', name: 'signed-in GET, req/s', value: of('plugin', rps), baselineName: 'same + security headers', baseline: of('headers', rps), ratio: median(ratios.headers), unit: 'req/s', note: note(ratios.headers) }),
      figure({ section: 'Gate', name: 'signed-in GET, p99 latency', value: of('plugin', (r) => r.result.p99), baselineName: 'same sessions, no plugin', baseline: of('baseline', (r) => r.result.p99), unit: 'ms' }),
      figure({ section: 'Gate', name: 'app CPU per request', value: of('plugin', cpu), baselineName: 'same sessions, no plugin', baseline: of('baseline', cpu), unit: 'µs' }),
      figure({ section: 'Gate', name: 'app CPU per request', value: of('plugin', cpu), baselineName: 'same + security headers', baseline: of('headers', cpu), unit: 'µs' })
    ]
  } finally {
    await headersApp.stop()
  }
}
