// 5. Footprint: the demo app's memory when idle and after 10 000 complete sign-ins (password,
// then a code; a leak per sign-in or per session would show here), and what the plugin's pages
// weigh on the wire.
import { gzipSync } from 'node:zlib'
import type { BenchContext } from './context.ts'
import { codeOf, idsOf, PASSWORD, POOLS, REAL_SECRETS_UP_TO, SIGN_INS_FOR_MEMORY, userId } from './lib/population.ts'
import { figure, type Figure } from './lib/report.ts'
import { inParallel, passwordStep, pendingChallenge, submitCode } from './lib/session-client.ts'

const MB = 1024 * 1024
const KB = 1024
const SIGN_IN_CONCURRENCY = 32

type Memory = { rss: number, heapUsed: number }

interface Weight { html: number, gzip: number, assets: number, assetsGzip: number }

async function weigh (origin: string, path: string, cookie: string | undefined): Promise<Weight> {
  const response = await fetch(`${origin}${path}`, { headers: { accept: 'text/html', ...(cookie === undefined ? {} : { cookie }) }, redirect: 'manual' })
  const html = Buffer.from(await response.arrayBuffer())
  if (response.status !== 200) throw new Error(`GET ${path}: HTTP ${response.status}`)
  // Scripts and styles load once and are cached for a year (hashed URLs); counted apart.
  const urls = [...html.toString('utf8').matchAll(/<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+)"/g)].map((m) => m[1]!.replaceAll('&amp;', '&'))
  let assets = 0
  let assetsGzip = 0
  for (const url of urls.filter((u) => u.startsWith('/'))) {
    const body = Buffer.from(await (await fetch(`${origin}${url}`)).arrayBuffer())
    assets += body.length
    assetsGzip += gzipSync(body).length
  }
  return { html: html.length, gzip: gzipSync(html).length, assets, assetsGzip }
}

export async function pageWeights (ctx: BenchContext): Promise<Figure[]> {
  const origin = ctx.plugin.origin
  const login = await weigh(origin, '/login', undefined)
  const challengeUser = userId(POOLS.challengeWrong[0])
  const pending = await pendingChallenge(origin, challengeUser, PASSWORD)
  const challenge = await weigh(origin, '/2fa/challenge', pending.cookie)
  // A user the plugin has never seen: signed in by the password alone, then turns 2FA on.
  let fresh = REAL_SECRETS_UP_TO + 1
  while (fresh % 10 !== 9) fresh++
  const signedIn = await passwordStep(origin, userId(fresh), PASSWORD)
  if (signedIn.state !== 'signed-in') throw new Error(`setup page user: expected signed-in, got ${signedIn.state}`)
  const setup = await weigh(origin, '/2fa/setup', signedIn.cookie)

  const baselineName = 'host /login page'
  const rows: Figure[] = []
  for (const [name, weight] of [['challenge page', challenge], ['setup page (QR code)', setup]] as const) {
    rows.push(
      figure({ section: 'Footprint', name: `${name}, HTML`, value: weight.html / KB, baselineName, baseline: login.html / KB, unit: 'KB' }),
      figure({ section: 'Footprint', name: `${name}, HTML gzip`, value: weight.gzip / KB, baselineName, baseline: login.gzip / KB, unit: 'KB' })
    )
  }
  rows.push(figure({
    section: 'Footprint',
    name: 'scripts + styles, first visit, gzip',
    value: challenge.assetsGzip / KB,
    baselineName,
    baseline: login.assetsGzip / KB,
    unit: 'KB',
    note: `raw ${(challenge.assets / KB).toFixed(1)} KB; cached for a year after`
  }))
  return rows
}

/**
 * The plugin app's memory when it had just started (measured by the runner before any request)
 * and once it has served SIGN_INS_FOR_MEMORY complete sign-ins: the challenge benchmark's and
 * then as many more as needed, each by its own user (everything else the suite sent it too).
 * The baseline is the plugin-less app, idle.
 */
export async function memoryFootprint (ctx: BenchContext, idle: { plugin: Memory, baseline: Memory }): Promise<Figure[]> {
  const ids = [...idsOf(POOLS.signIns)].slice(0, Math.max(0, SIGN_INS_FOR_MEMORY - ctx.signIns))
  if (ctx.signIns + ids.length < SIGN_INS_FOR_MEMORY) throw new Error('the sign-in pool is too small')
  ctx.log(`  ${ids.length} more sign-ins (password, then code), ${ctx.signIns} done before…`)
  const started = Date.now()
  const signIn = async (id: string) => {
    const pending = await pendingChallenge(ctx.plugin.origin, id, PASSWORD)
    const { status } = await submitCode(ctx.plugin.origin, pending, codeOf(id))
    if (status !== 303) throw new Error(`sign-in ${id}: HTTP ${status}`)
    ctx.signIns++
  }
  // Halfway too: memory that keeps growing with sign-ins would be a leak, a step is warm-up.
  const halfway = Math.max(0, SIGN_INS_FOR_MEMORY / 2 - ctx.signIns)
  await inParallel(ids.slice(0, halfway), SIGN_IN_CONCURRENCY, signIn)
  const middle = { signIns: ctx.signIns, ...await ctx.plugin.memory() }
  await inParallel(ids.slice(halfway), SIGN_IN_CONCURRENCY, signIn)
  const seconds = (Date.now() - started) / 1000
  ctx.log(`  … ${seconds.toFixed(1)} s, ${(ids.length / seconds).toFixed(0)} sign-ins/s`)
  const after = await ctx.plugin.memory()
  const count = (n: number) => n.toLocaleString('en')
  return [
    figure({ section: 'Footprint', name: 'RSS, demo app idle', value: idle.plugin.rss / MB, baselineName: 'no plugin, idle', baseline: idle.baseline.rss / MB, unit: 'MB' }),
    figure({ section: 'Footprint', name: 'live heap, demo app idle', value: idle.plugin.heapUsed / MB, baselineName: 'no plugin, idle', baseline: idle.baseline.heapUsed / MB, unit: 'MB' }),
    figure({ key: 'rss-growth', section: 'Footprint', name: `RSS after ${count(ctx.signIns)} sign-ins`, value: after.rss / MB, baselineName: 'same app idle', baseline: idle.plugin.rss / MB, unit: 'MB' }),
    figure({ section: 'Footprint', name: `live heap after ${count(ctx.signIns)} sign-ins`, value: after.heapUsed / MB, baselineName: 'same app idle', baseline: idle.plugin.heapUsed / MB, unit: 'MB' }),
    figure({ section: 'Footprint', name: `live heap after ${count(ctx.signIns)} sign-ins`, value: after.heapUsed / MB, baselineName: `after ${count(middle.signIns)}`, baseline: middle.heapUsed / MB, unit: 'MB' })
  ]
}
