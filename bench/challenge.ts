// 2. Challenge throughput: POST /2fa/challenge, each request one real
// verification for its own user's pending sign-in, against a bare route that runs only the
// single-use UPDATE (AccountsStore.consumeStep) for fresh users.
//
// Valid codes: every user of the pool is signed in to the password step first (real /login
// requests), then each measured request submits that user's current code: decrypt the secret,
// verify, the conditional UPDATE, the audit event, a new session id, the host's onSignedIn.
// Wrong codes: a separate pool, each pending sign-in gets WRONG_CODES_PER_USER (4) wrong codes,
// below both the 5 attempts a pending sign-in allows and the 5 failures that lock an account,
// in round-robin so no two requests of one session overlap. Their counters are reset after.
import type autocannon from 'autocannon'
import type { BenchContext } from './context.ts'
import { countOf, load } from './lib/load.ts'
import { codeOf, idsOf, PASSWORD, POOLS, sizeOf, WRONG_CODES_PER_USER, wrongCodeOf, userId } from './lib/population.ts'
import { figure, type Figure } from './lib/report.ts'
import { inParallel, pendingChallenge, type PreparedSession } from './lib/session-client.ts'
import { timeStep } from '../plugin/core/totp.ts'

const PREPARE_CONCURRENCY = 32
const FORM = 'application/x-www-form-urlencoded'

async function prepare (ctx: BenchContext, ids: string[]): Promise<PreparedSession[]> {
  return await inParallel(ids, PREPARE_CONCURRENCY, async (id) => await pendingChallenge(ctx.plugin.origin, id, PASSWORD))
}

/** Hands out one prepared request after another; autocannon builds a few it never sends. */
function sequence<T> (items: readonly T[], build: (item: T, index: number) => autocannon.Request) {
  let next = 0
  return (request: autocannon.Request): autocannon.Request => {
    const index = next++
    return { ...request, ...build(items[index % items.length]!, index) }
  }
}

export async function challengeThroughput (ctx: BenchContext): Promise<Figure[]> {
  const slack = 2 * ctx.connections

  // The baseline: the same single-row UPDATE, once per fresh user, and nothing else.
  const bareIds = [...idsOf(POOLS.bareUpdate)]
  const bare = await load({
    url: `${ctx.baseline.origin}/bench/consume-step`,
    method: 'POST',
    connections: ctx.connections,
    amount: bareIds.length - slack,
    headers: { 'content-type': FORM },
    setupRequest: sequence(bareIds, (id) => ({
      body: new URLSearchParams({ userId: id, step: String(timeStep(Date.now(), 30)) }).toString()
    }))
  })
  if (countOf(bare, 200) !== bare.requests) throw new Error(`bare UPDATE: unexpected statuses ${JSON.stringify(bare.statuses)}`)
  ctx.log(`  bare UPDATE: ${bare.requestsPerSecond.toFixed(0)} req/s, p99 ${bare.p99.toFixed(2)} ms`)

  ctx.log(`  signing in ${sizeOf(POOLS.challengeValid)} users to the challenge…`)
  const valid = await prepare(ctx, [...idsOf(POOLS.challengeValid)])
  const validRun = await load({
    url: `${ctx.plugin.origin}/2fa/challenge`,
    method: 'POST',
    connections: ctx.connections,
    amount: valid.length - slack,
    setupRequest: sequence(valid, (session) => ({
      headers: { 'content-type': FORM, cookie: session.cookie },
      body: new URLSearchParams({ _csrf: session.csrfToken, code: codeOf(session.userId) }).toString()
    }))
  })
  if (countOf(validRun, 303) !== validRun.requests) throw new Error(`valid codes: not all signed in: ${JSON.stringify(validRun.statuses)}`)
  ctx.signIns += validRun.requests
  ctx.log(`  valid codes: ${validRun.requestsPerSecond.toFixed(0)} req/s, p99 ${validRun.p99.toFixed(2)} ms`)

  const wrongIds = [...idsOf(POOLS.challengeWrong)]
  ctx.log(`  signing in ${wrongIds.length} users for wrong codes…`)
  const wrong = await prepare(ctx, wrongIds)
  const wrongCodes = new Map(wrong.map((s) => [s.userId, wrongCodeOf(s.userId)]))
  const wrongRun = await load({
    url: `${ctx.plugin.origin}/2fa/challenge`,
    method: 'POST',
    connections: ctx.connections,
    amount: wrong.length * WRONG_CODES_PER_USER - slack,
    setupRequest: sequence(wrong, (session) => ({
      headers: { 'content-type': FORM, cookie: session.cookie },
      body: new URLSearchParams({ _csrf: session.csrfToken, code: wrongCodes.get(session.userId)! }).toString()
    }))
  })
  if (countOf(wrongRun, 422) !== wrongRun.requests) throw new Error(`wrong codes: expected 422 for all: ${JSON.stringify(wrongRun.statuses)}`)
  ctx.log(`  wrong codes: ${wrongRun.requestsPerSecond.toFixed(0)} req/s, p99 ${wrongRun.p99.toFixed(2)} ms`)
  const [{ locked }] = await ctx.database.sql<[{ locked: number }]>`
    select count(*)::int as locked from two_factor.accounts
    where user_id between ${userId(POOLS.challengeWrong[0])} and ${userId(POOLS.challengeWrong[1])} and locked_until is not null`
  if (locked !== 0) throw new Error(`wrong codes locked ${locked} accounts; the pool is too small for the run`)
  await ctx.database.sql`update two_factor.accounts set failed_attempts = 0
    where user_id between ${userId(POOLS.challengeWrong[0])} and ${userId(POOLS.challengeWrong[1])}`

  const baselineName = 'bare route, same UPDATE'
  return [
    figure({ key: 'verify', section: 'Challenge', name: 'valid code (303), req/s', value: validRun.requestsPerSecond, baselineName, baseline: bare.requestsPerSecond, unit: 'req/s' }),
    figure({ section: 'Challenge', name: 'valid code, p99 latency', value: validRun.p99, baselineName, baseline: bare.p99, unit: 'ms' }),
    figure({ section: 'Challenge', name: 'wrong code (422), req/s', value: wrongRun.requestsPerSecond, baselineName, baseline: bare.requestsPerSecond, unit: 'req/s' }),
    figure({ section: 'Challenge', name: 'wrong code, p99 latency', value: wrongRun.p99, baselineName, baseline: bare.p99, unit: 'ms' })
  ]
}
