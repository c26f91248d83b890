// 8. Sustained load, per driver: the plugin app (bench/apps.ts, in its own process) once on
// postgres.js and once on node-postgres, the same pool size (POOL_SIZE, 10), under RUN_SECONDS
// of steady load on the sign-in verify route, POST /2fa/challenge with a valid code, every
// request a different user's pending sign-in (as bench/challenge.ts posts them). The figure is
// the rate in the last WINDOW_SECONDS against the rate in the first: a driver whose throughput
// falls as the load goes on shows a ratio below 1. The app's CPU time per request in each
// WINDOW_SECONDS (process.cpuUsage, asked over IPC at the windows' edges) is logged next to the
// rates: on this shared machine the rate also moves with everything else running, the CPU time
// per request much less.
//
// A minute at several hundred sign-ins a second needs tens of thousands of pending sign-ins, and
// preparing them over HTTP (GET /login, POST /login with scrypt, GET /2fa/challenge) runs at
// 45–80 a second here: several minutes per driver, past the prompt's 5-minute life. So
// one pending sign-in is made over HTTP on the app under test (the template), and the others
// are written the way the seeder writes users: copies of the template's session row, each with
// its own session id (a cookie signed with the app's secret), its own user and its own attempts
// counter id (the prompt's `challengeId`; the counter row is made by the first attempt, as for
// any prompt). Everything the measured request does is then the same as for a sign-in made
// through the pages: the session read, the attempt counter, the account, the code, the
// single-use UPDATE and its audit event, the old session's delete, the host's onSignedIn and the
// new session's insert. The copies share the template's CSRF secret, so the form's token is the
// template's; checking it costs the same.
//
// The users (POOLS.sustained) are added by this section, after the population the other
// sections measured. Both drivers use them: a user signed in at one TOTP step can't be at the
// same step again, so the second run waits for a fresh step. Between the runs the pool's
// sessions and attempt counters are deleted, and before each run the tables it writes are
// vacuumed and a checkpoint is made, so each run starts from the same tables. postgres.js runs
// first, then node-postgres. A WARM_UP_SECONDS run on the same route comes first (a fresh
// process's JIT); the measured run starts right after it, with the pool still busy.
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import fastifyCookie from '@fastify/cookie'
import type autocannon from 'autocannon'
import { timeStep } from '../plugin/core/totp.ts'
import { hashSessionId } from '../plugin/db/session-store.ts'
import { DEFAULTS } from '../plugin/options.ts'
import { newChallengeId } from '../plugin/routes/context.ts'
import type { BenchContext } from './context.ts'
import { countOf, load, type LoadResult } from './lib/load.ts'
import { codeOf, idsOf, PASSWORD, POOLS, sizeOf, userId } from './lib/population.ts'
import { figure, type Figure } from './lib/report.ts'
import { DRIVER_NAMES, POOL_SIZE, ServerProcess, type Driver } from './lib/server-process.ts'
import { pendingChallenge, type PreparedSession } from './lib/session-client.ts'

export const RUN_SECONDS = 60
export const WINDOW_SECONDS = 10
const WARM_UP_SECONDS = 10
const DRIVERS: Driver[] = ['postgres-js', 'pg']
const FORGE_BATCH = 5000
const FORM = 'application/x-www-form-urlencoded'
const STEP_SECONDS = 30

export interface SustainedRun {
  driver: Driver
  /** Requests per second in the first and the last WINDOW_SECONDS of the run. */
  first: number
  last: number
  /** The app's CPU time per request in the same windows, µs. */
  firstCpu: number
  lastCpu: number
  run: LoadResult
}

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))
const rateOf = (perSecond: readonly number[], from: number, to: number) =>
  perSecond.slice(from, to).reduce((sum, n) => sum + n, 0) / (to - from)

/**
 * `ids.length` pending sign-ins at the code prompt of the app at `origin`: one over HTTP, the
 * others copies of its session row (see the top of this file).
 */
async function pendingSignIns (ctx: BenchContext, origin: string, ids: readonly string[]): Promise<{ sessions: PreparedSession[], expiresAt: number }> {
  const template = await pendingChallenge(origin, ids[0]!, PASSWORD)
  const signed = decodeURIComponent(template.cookie.slice(template.cookie.indexOf('=') + 1))
  const templateHash = hashSessionId(signed.slice(0, signed.lastIndexOf('.')))
  const [row] = await ctx.database.sql<[{ state: string, userId: string, expiresAt: string }?]>`
    select data->'twoFactor'->>'state' as state, data->'twoFactor'->>'userId' as "userId", data->'twoFactor'->>'expiresAt' as "expiresAt"
    from two_factor.sessions where sid_hash = ${templateHash}`
  if (row?.state !== 'pending' || row.userId !== ids[0]) throw new Error(`sustained: the template session is not ${ids[0]}'s pending sign-in: ${JSON.stringify(row)}`)

  const signer = fastifyCookie.signerFactory(ctx.settings.sessionSecret)
  const sessions: PreparedSession[] = []
  for (let from = 0; from < ids.length; from += FORGE_BATCH) {
    const batch = ids.slice(from, from + FORGE_BATCH)
    const hashes: string[] = []
    const challengeIds: string[] = []
    for (const id of batch) {
      const sessionId = randomBytes(24).toString('base64url')
      hashes.push(hashSessionId(sessionId))
      challengeIds.push(newChallengeId())
      sessions.push({ userId: id, cookie: `${DEFAULTS.cookieName}=${encodeURIComponent(signer.sign(sessionId))}`, csrfToken: template.csrfToken })
    }
    await ctx.database.sql`
      insert into two_factor.sessions (sid_hash, user_id, data, expires_at)
      select x.sid_hash, x.user_id,
        jsonb_set(jsonb_set(t.data, '{twoFactor,userId}', to_jsonb(x.user_id)), '{twoFactor,challengeId}', to_jsonb(x.challenge_id)),
        t.expires_at
      from unnest(${hashes}::text[], ${batch as string[]}::text[], ${challengeIds}::text[]) as x(sid_hash, user_id, challenge_id),
        two_factor.sessions t
      where t.sid_hash = ${templateHash}`
  }
  await ctx.database.sql`delete from two_factor.sessions where sid_hash = ${templateHash}`

  // One copy, read back by the app: the prompt of that user, with the template's CSRF token.
  const check = await fetch(`${origin}/2fa/challenge`, { headers: { accept: 'application/json', cookie: sessions[1]!.cookie } })
  const body = await check.json() as { csrfToken?: string }
  if (check.status !== 200 || typeof body.csrfToken !== 'string') throw new Error(`sustained: a copied session is not at the code prompt (HTTP ${check.status})`)
  return { sessions, expiresAt: Number(row.expiresAt) }
}

/** Hands out one session after another across the warm-up and the run; past the end, reuses (and fails). */
function sequence (sessions: readonly PreparedSession[]) {
  let next = 0
  return {
    get handedOut () { return next },
    setupRequest: (request: autocannon.Request): autocannon.Request => {
      const session = sessions[next++ % sessions.length]!
      return {
        ...request,
        headers: { ...request.headers, 'content-type': FORM, cookie: session.cookie },
        body: new URLSearchParams({ _csrf: session.csrfToken, code: codeOf(session.userId) }).toString()
      }
    }
  }
}

async function runOn (ctx: BenchContext, driver: Driver, notBeforeStep: number): Promise<SustainedRun> {
  const name = DRIVER_NAMES[driver]
  const [first, last] = POOLS.sustained
  const app = await ServerProcess.start('plugin', { ...ctx.settings, driver })
  try {
    // A user signed in at a step can't be again at that step: wait for a later one.
    const waitMs = (notBeforeStep * STEP_SECONDS * 1000) - Date.now() + 200
    if (waitMs > 0) {
      ctx.log(`  waiting ${(waitMs / 1000).toFixed(0)} s for a fresh TOTP step`)
      await sleep(waitMs)
    }
    const started = Date.now()
    const { sessions, expiresAt } = await pendingSignIns(ctx, app.origin, [...idsOf(POOLS.sustained)])
    // Settled before the run: the written rows vacuumed and flushed, no checkpoint in its first seconds.
    await ctx.database.sql`vacuum analyze two_factor.sessions, two_factor.challenges, two_factor.accounts`
    await ctx.database.sql`checkpoint`
    ctx.log(`  ${name} (pid ${app.pid}, pool of ${POOL_SIZE}): ${sessions.length.toLocaleString('en')} pending sign-ins written in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    if (expiresAt < Date.now() + (WARM_UP_SECONDS + RUN_SECONDS + 30) * 1000) throw new Error('sustained: the pending sign-ins would expire during the run')

    const requests = sequence(sessions)
    const options = { url: `${app.origin}/2fa/challenge`, method: 'POST' as const, connections: ctx.connections, setupRequest: requests.setupRequest }
    const warmUp = await load({ ...options, duration: WARM_UP_SECONDS })
    // The app's CPU time at the windows' edges, asked while the load runs.
    const edges = Array.from({ length: RUN_SECONDS / WINDOW_SECONDS + 1 }, (_, i) => i * WINDOW_SECONDS)
    const cpuAt = edges.map((second) => sleep(second * 1000).then(async () => await app.cpuMicros()))
    const loadBefore = loadavg()[0]!
    const run = await load({ ...options, duration: RUN_SECONDS })
    const cpu = await Promise.all(cpuAt)

    for (const [what, result] of [['warm-up', warmUp], ['run', run]] as const) {
      if (countOf(result, 303) !== result.requests || result.errors > 0) {
        const tooFew = requests.handedOut > sessions.length ? ` (${requests.handedOut.toLocaleString('en')} requests built for ${sessions.length.toLocaleString('en')} users: make POOLS.sustained larger)` : ''
        throw new Error(`sustained, ${name}, ${what}: not all signed in: ${JSON.stringify(result.statuses)}, ${result.errors} errors${tooFew}`)
      }
    }
    ctx.log(`  ${name}: warm-up ${WARM_UP_SECONDS} s, ${warmUp.requestsPerSecond.toFixed(0)} req/s`)
    const perSecond = run.perSecond.slice(0, RUN_SECONDS)
    const firstRate = rateOf(perSecond, 0, WINDOW_SECONDS)
    const lastRate = rateOf(perSecond, RUN_SECONDS - WINDOW_SECONDS, RUN_SECONDS)
    // Per window: req/s and the app's CPU time per request, µs.
    const windows = edges.slice(1).map((end, i) => {
      const rate = rateOf(perSecond, end - WINDOW_SECONDS, end)
      return { rate, cpu: (cpu[i + 1]! - cpu[i]!) / (rate * WINDOW_SECONDS) }
    })
    const firstCpu = windows[0]!.cpu
    const lastCpu = windows.at(-1)!.cpu
    ctx.log(`  ${name}: ${run.requests.toLocaleString('en')} sign-ins in ${run.seconds.toFixed(1)} s, ${run.requestsPerSecond.toFixed(0)} req/s, p99 ${run.p99.toFixed(1)} ms, ` +
      `app CPU ${((cpu.at(-1)! - cpu[0]!) / run.requests).toFixed(0)} µs a request; load average ${loadBefore.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`)
    ctx.log(`  ${name}: first ${WINDOW_SECONDS} s ${firstRate.toFixed(0)} req/s, last ${WINDOW_SECONDS} s ${lastRate.toFixed(0)} req/s, ratio ${(lastRate / firstRate).toFixed(2)}; ` +
      `by ${WINDOW_SECONDS} s, req/s (app CPU µs a request): ${windows.map((w) => `${w.rate.toFixed(0)} (${w.cpu.toFixed(0)})`).join(', ')}`)
    ctx.log(`  ${name}: per second: ${perSecond.join(' ')}`)
    return { driver, first: firstRate, last: lastRate, firstCpu, lastCpu, run }
  } finally {
    await app.stop()
    // The next run starts from the same tables: no sessions or prompts of these users left.
    await ctx.database.sql`delete from two_factor.sessions where user_id between ${userId(first)} and ${userId(last)}`
    await ctx.database.sql`delete from two_factor.challenges where user_id between ${userId(first)} and ${userId(last)}`
  }
}

export async function sustainedLoad (ctx: BenchContext): Promise<Figure[]> {
  const started = Date.now()
  await ctx.seeder.seedSignInUsers(...POOLS.sustained)
  ctx.log(`  ${sizeOf(POOLS.sustained).toLocaleString('en')} users added in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  const runs: SustainedRun[] = []
  let notBeforeStep = 0
  for (const driver of DRIVERS) {
    runs.push(await runOn(ctx, driver, notBeforeStep))
    notBeforeStep = timeStep(Date.now(), STEP_SECONDS) + 1
  }
  const [postgresJs, nodePg] = runs as [SustainedRun, SustainedRun]
  const lastName = `last ${WINDOW_SECONDS} s of ${RUN_SECONDS}, req/s`
  const firstName = `first ${WINDOW_SECONDS} s`
  return [
    figure({ key: 'sustained-postgres-js', section: 'Sustained', name: `postgres.js: valid code (303), ${lastName}`, value: postgresJs.last, baselineName: firstName, baseline: postgresJs.first, unit: 'req/s' }),
    figure({ key: 'sustained-pg', section: 'Sustained', name: `node-postgres: valid code (303), ${lastName}`, value: nodePg.last, baselineName: firstName, baseline: nodePg.first, unit: 'req/s' }),
    figure({ section: 'Sustained', name: `postgres.js: app CPU per request, last ${WINDOW_SECONDS} s`, value: postgresJs.lastCpu, baselineName: firstName, baseline: postgresJs.firstCpu, unit: 'µs' }),
    figure({ section: 'Sustained', name: `node-postgres: app CPU per request, last ${WINDOW_SECONDS} s`, value: nodePg.lastCpu, baselineName: firstName, baseline: nodePg.firstCpu, unit: 'µs' }),
    figure({ section: 'Sustained', name: `node-postgres: valid code (303), ${RUN_SECONDS} s, req/s`, value: nodePg.run.requestsPerSecond, baselineName: 'postgres.js', baseline: postgresJs.run.requestsPerSecond, unit: 'req/s' }),
    figure({ section: 'Sustained', name: `node-postgres: p99 latency over ${RUN_SECONDS} s`, value: nodePg.run.p99, baselineName: 'postgres.js', baseline: postgresJs.run.p99, unit: 'ms' })
  ]
}
