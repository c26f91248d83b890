// 6. SQL statements per sign-in: how many statements one POST /2fa/challenge with a valid code
// sends to the database. In the runner process, the plugin app is built as bench/apps.ts builds
// it, on its own postgres.js client whose `debug` option sees every statement sent (transaction
// BEGIN / COMMIT included). Each user of the pool is signed in through `app.inject` up to the
// code prompt (GET /login, POST /login, GET /2fa/challenge), the counter is reset, the valid
// code is posted (a form post, as the page sends it; the answer must be the 303 of a finished
// sign-in) and the statements sent until the answer (and a short settle after it, for anything
// the request left running) are counted; the figure is the average over the pool. The baseline
// is the bare consume-step route of the baseline app, counted the same way: the one UPDATE.
import { drizzle } from 'drizzle-orm/postgres-js'
import type { FastifyInstance } from 'fastify'
import postgres from 'postgres'
import { timeStep } from '../plugin/core/totp.ts'
import type { TwoFactorDatabase } from '../plugin/index.ts'
import { DEFAULTS } from '../plugin/options.ts'
import { buildBaselineApp, buildPluginApp } from './apps.ts'
import type { BenchContext } from './context.ts'
import { codeOf, idsOf, PASSWORD, POOLS } from './lib/population.ts'
import { figure, type Figure } from './lib/report.ts'

const SETTLE_MS = 50
const FORM = 'application/x-www-form-urlencoded'
const JSON_ACCEPT = 'application/json'

interface Statement { connection: number, text: string, parameters: number }

/** A postgres.js client that records every statement it sends while `recording` is on. */
function countingClient (url: string) {
  const recorder = { recording: false, statements: [] as Statement[] }
  const sql = postgres(url, {
    max: 4,
    onnotice: () => {},
    debug: (connection, query, parameters) => {
      if (recorder.recording) recorder.statements.push({ connection, text: query, parameters: parameters.length })
    }
  })
  return { sql, db: drizzle(sql) as unknown as TwoFactorDatabase, recorder }
}

type Injected = Awaited<ReturnType<FastifyInstance['inject']>>

function sessionCookie (response: Injected, previous: string | undefined): string | undefined {
  const header = response.headers['set-cookie']
  for (const line of Array.isArray(header) ? header : header === undefined ? [] : [header]) {
    const pair = line.split(';', 1)[0]!
    if (pair.startsWith(`${DEFAULTS.cookieName}=`)) return pair
  }
  return previous
}

function jsonOf (response: Injected, what: string): Record<string, unknown> {
  if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`${what}: HTTP ${response.statusCode} ${response.body.slice(0, 200)}`)
  return response.json()
}

/** GET /login, POST /login, GET /2fa/challenge: the session and CSRF token of the code prompt. */
async function toCodePrompt (app: FastifyInstance, userId: string): Promise<{ cookie: string, csrfToken: string }> {
  const login = await app.inject({ method: 'GET', url: '/login', headers: { accept: JSON_ACCEPT } })
  const { csrfToken } = jsonOf(login, 'GET /login') as { csrfToken: string }
  let cookie = sessionCookie(login, undefined)
  const password = await app.inject({
    method: 'POST',
    url: '/login',
    headers: { accept: JSON_ACCEPT, 'content-type': 'application/json', 'x-csrf-token': csrfToken, cookie: cookie ?? '' },
    payload: JSON.stringify({ username: userId, password: PASSWORD })
  })
  cookie = sessionCookie(password, cookie)
  const { state } = jsonOf(password, `POST /login (${userId})`) as { state: string }
  if (state !== 'pending' || cookie === undefined) throw new Error(`${userId}: expected a pending sign-in, got ${state}`)
  const prompt = await app.inject({ method: 'GET', url: '/2fa/challenge', headers: { accept: JSON_ACCEPT, cookie } })
  const { csrfToken: promptToken } = jsonOf(prompt, 'GET /2fa/challenge') as { csrfToken: string }
  return { cookie: sessionCookie(prompt, cookie)!, csrfToken: promptToken }
}

/** Runs `send` with the recorder on, until its answer and a short settle after: the statements it sent. */
async function recorded (recorder: ReturnType<typeof countingClient>['recorder'], send: () => Promise<Injected>): Promise<{ response: Injected, statements: Statement[] }> {
  recorder.statements = []
  recorder.recording = true
  const response = await send()
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
  recorder.recording = false
  return { response, statements: recorder.statements }
}

/** One line per statement: whitespace collapsed, long ones cut. */
export function describeStatement (statement: Statement): string {
  const text = statement.text.replace(/\s+/g, ' ').trim()
  return `${text.length > 140 ? text.slice(0, 137) + '…' : text} [${statement.parameters} param${statement.parameters === 1 ? '' : 's'}]`
}

export interface StatementsResult {
  figures: Figure[]
  /** Statements of each counted sign-in. */
  perSignIn: number[]
  /** The statements of the first counted sign-in, in order. */
  example: string[]
}

export async function statementsPerSignIn (ctx: BenchContext): Promise<StatementsResult> {
  const client = countingClient(ctx.database.url)
  const config = { db: client.db, keys: ctx.settings.keys, sessionSecret: ctx.settings.sessionSecret }
  const plugin = await buildPluginApp(config)
  const baseline = await buildBaselineApp(config)
  try {
    await plugin.ready()
    await baseline.ready()
    const ids = [...idsOf(POOLS.statements)]

    // The baseline: the bare route's one UPDATE, for each user at an old step (their sign-in's is later).
    const bare: number[] = []
    for (const id of ids) {
      const step = timeStep(Date.now(), 30) - 2
      const { response, statements } = await recorded(client.recorder, async () => await baseline.inject({
        method: 'POST', url: '/bench/consume-step', headers: { 'content-type': FORM }, payload: new URLSearchParams({ userId: id, step: String(step) }).toString()
      }))
      if (response.statusCode !== 200) throw new Error(`bare consume-step for ${id}: HTTP ${response.statusCode}`)
      bare.push(statements.length)
    }

    const perSignIn: number[] = []
    let example: string[] = []
    for (const id of ids) {
      const prompt = await toCodePrompt(plugin, id)
      const { response, statements } = await recorded(client.recorder, async () => await plugin.inject({
        method: 'POST',
        url: '/2fa/challenge',
        headers: { 'content-type': FORM, cookie: prompt.cookie },
        payload: new URLSearchParams({ _csrf: prompt.csrfToken, code: codeOf(id) }).toString()
      }))
      if (response.statusCode !== 303) throw new Error(`statements: ${id}'s valid code answered HTTP ${response.statusCode} ${response.body.slice(0, 200)}`)
      perSignIn.push(statements.length)
      if (example.length === 0) example = statements.map(describeStatement)
    }

    const average = (list: number[]) => list.reduce((a, b) => a + b, 0) / list.length
    ctx.log(`  statements per valid code: ${perSignIn.join(', ')}; the first sign-in's:`)
    example.forEach((line, i) => ctx.log(`    ${String(i + 1).padStart(2)}. ${line}`))
    return {
      perSignIn,
      example,
      figures: [figure({
        key: 'verify-statements',
        section: 'Challenge',
        name: 'SQL statements per valid code',
        value: average(perSignIn),
        baselineName: 'bare route, same UPDATE',
        baseline: average(bare),
        unit: 'stmts',
        note: `${ids.length} sign-ins in the runner's app (postgres.js debug hook): ${Math.min(...perSignIn)}–${Math.max(...perSignIn)} each`
      })]
    }
  } finally {
    await plugin.close()
    await baseline.close()
    await client.sql.end({ timeout: 5 })
  }
}
