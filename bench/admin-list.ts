// 4. The admin users list at 100 000 users (25 a page, fast at 100 000): the full
// HTML page an admin's browser gets, one request at a time, p50 and p95. The baseline is the
// host's own users query for the same page (the demo's listUsers, on a bare route): what any
// admin list of these users costs before two-factor statuses are added.
import type { BenchContext } from './context.ts'
import { timeRequests } from './lib/load.ts'
import { ADMIN_USER, codeOf, PASSWORD } from './lib/population.ts'
import { figure, type Figure } from './lib/report.ts'
import { pendingChallenge, submitCode } from './lib/session-client.ts'

const SECONDS_PER_QUERY = 3
const MIN_SAMPLES = 10

interface ListQuery {
  name: string
  /** Query string of /2fa/admin/users. */
  query: string
  /** Query string of the host's bare /bench/users for the same page. */
  bare: string
}

const QUERIES: ListQuery[] = [
  { name: 'first page', query: '', bare: '' },
  { name: 'filter enrolled, page 2', query: '?status=enrolled&page=2', bare: '?page=2' },
  { name: 'filter awaiting setup', query: '?status=awaiting', bare: '' },
  { name: 'filter not required', query: '?status=not-required', bare: '' },
  { name: 'filter locked', query: '?status=locked', bare: '' },
  { name: 'search "u0123"', query: '?q=u0123', bare: '?q=u0123' }
]

async function adminSession (ctx: BenchContext): Promise<string> {
  const pending = await pendingChallenge(ctx.plugin.origin, ADMIN_USER, PASSWORD)
  const { status, cookie } = await submitCode(ctx.plugin.origin, pending, codeOf(ADMIN_USER))
  if (status !== 303) throw new Error(`admin sign-in: HTTP ${status}`)
  ctx.signIns++
  return cookie
}

export async function adminListAtScale (ctx: BenchContext): Promise<Figure[]> {
  const cookie = await adminSession(ctx)
  const check = await fetch(`${ctx.plugin.origin}/2fa/admin/users`, { headers: { cookie, accept: 'application/json' } })
  const { total } = await check.json() as { total?: number }
  if (check.status !== 200 || typeof total !== 'number' || total < 100_000) throw new Error(`admin list: HTTP ${check.status}, total ${total}`)

  const figures: Figure[] = []
  for (const q of QUERIES) {
    const bare = await timeRequests(`${ctx.baseline.origin}/bench/users${q.bare}`, {}, SECONDS_PER_QUERY, MIN_SAMPLES)
    const page = await timeRequests(`${ctx.plugin.origin}/2fa/admin/users${q.query}`, { cookie, accept: 'text/html' }, SECONDS_PER_QUERY, MIN_SAMPLES)
    ctx.log(`  admin list ${q.name}: p50 ${page.p50.toFixed(1)} ms, p95 ${page.p95.toFixed(1)} ms (${page.samples} requests); host query p50 ${bare.p50.toFixed(1)} ms`)
    const baselineName = `host query${q.bare === '' ? '' : ` ${q.bare}`}`
    figures.push(
      figure({ section: 'Admin list', name: `${q.name}, p50`, value: page.p50, baselineName, baseline: bare.p50, unit: 'ms', note: `${page.samples} requests, one at a time` }),
      figure({ key: 'admin-p95', section: 'Admin list', name: `${q.name}, p95`, value: page.p95, baselineName, baseline: bare.p95, unit: 'ms' })
    )
  }
  return figures
}
