// Attack: send whatever a parser might choke on (input checks, errors, fail closed).
// fast-check generates bodies, content types, headers and path parameters for every route the
// app registers (collected with `onRoute`), from sessions in every sign-in state, each holding
// a valid CSRF token so the input reaches the handlers. Properties: never a 5xx, and input that
// is refused changes nothing that matters.
import t from 'tap'
import fc from 'fast-check'
import { sql } from 'drizzle-orm'
import type { InjectOptions, RouteOptions } from 'fastify'
import { rowsOf } from '../../plugin/db/database.ts'
import type { Client } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep, type Harness } from '../helpers/demo.ts'
import { clearFailures, sessionIdOf } from '../helpers/states.ts'
import { hashSessionId } from '../../plugin/db/session-store.ts'

// FUZZ_RUNS raises the depth for a longer hunt; the default keeps the file well under a minute.
const RUNS_PER_POST_ROUTE = Number(process.env.FUZZ_RUNS ?? 120)
const RUNS_PER_GET_ROUTE = Math.ceil(RUNS_PER_POST_ROUTE / 4)
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)

// Logout takes no input and ends the session that sends it: nothing to fuzz.
const NO_INPUT = new Set(['/logout', '/2fa/logout'])

const FIELDS = ['code', 'recoveryCode', 'password', 'currentPassword', 'newPassword', 'username', 'returnTo', 'required',
  'reason', 'requireAll', 'graceDays', 'requiredRoles', 'exemptRoles', 'allowSkip', 'method', 'q', 'status', 'page',
  'user', 'type', 'before', '_method', '__proto__', 'constructor', 'toString', 'length', '0'] as const

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.stringMatching(/^[0-9 ]{0,9}$/),
  fc.stringMatching(/^[0-9A-Za-z -]{0,24}$/),
  fc.constantFrom('', 'true', 'false', 'null', '0', '-1', '1e400', 'NaN', '[]', '{}', '１２３４５６', '٠١٢٣٤٥', '\u0000', '../../etc/passwd', '%00', '<script>', "' or 1=1 --", 'x'.repeat(5000))
)
const field = fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 12 }))
const formBody = fc.array(fc.tuple(field, text), { maxLength: 8 })
const jsonBody = fc.oneof(
  fc.dictionary(field, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 }),
  fc.jsonValue({ maxDepth: 3 })
)
const rawBody = fc.record({
  type: fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x',
    'application/json; charset=utf-16', 'application/xml', 'application/x-www-form-urlencoded; charset=latin1', ''),
  payload: fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.constantFrom('{"code":', '{"__proto__":{"x":1}}', 'code=1&code=2&code[]=3', '%', '\u0000'))
})
const body = fc.oneof(
  fc.record({ kind: fc.constant('form' as const), fields: formBody }),
  fc.record({ kind: fc.constant('json' as const), value: jsonBody }),
  fc.record({ kind: fc.constant('raw' as const), raw: rawBody })
)
const param = fc.oneof(fc.constantFrom('bob', 'carol', 'nobody', 'admin'), fc.string({ maxLength: 20 }))
const accept = fc.constantFrom(undefined, 'application/json', 'text/html', '*/*', 'application/json, text/html', 'text/html;q=0.1, application/json', 'garbage/;;')
const hx = fc.constantFrom(undefined, 'true', 'false', '1')

type State = 'anonymous' | 'signed-in' | 'pending' | 'pending-setup'
const STATES: State[] = ['anonymous', 'signed-in', 'pending', 'pending-setup']

/**
 * What a refused input must leave alone: the active factor, who must use it, the single-use
 * step, recovery codes, settings, the host's users, the security events, and who is signed
 * in. (Failure counters, pending attempts and pending enrolment secrets change by design.)
 */
async function guardedState (h: Harness): Promise<string> {
  const rows = rowsOf<{ state: unknown }>(await h.database.db.execute(sql`select json_build_object(
    'accounts', (select json_agg(json_build_array(user_id, secret, enabled_at, required, last_used_step) order by user_id) from two_factor.accounts),
    'recovery', (select json_agg(json_build_array(user_id, digest, used_at) order by user_id, digest) from two_factor.recovery_codes),
    'settings', (select json_agg(json_build_array(key, value) order by key) from two_factor.settings),
    'events', (select json_agg(json_build_array(id, type) order by id) from two_factor.events
               where type not in ('challenge.failed', 'lockout.started', 'admin.denied', 'enrolment.started', 'wizard.shown')),
    'users', (select json_agg(json_build_array(id, password_hash, role) order by id) from demo_users),
    'signedIn', (select json_agg(json_build_array(sid_hash, user_id) order by sid_hash) from two_factor.sessions where data->'twoFactor'->>'state' = 'signed-in')
  ) as state`))
  return JSON.stringify(rows[0]!.state)
}

t.test('fuzz', async (t) => {
  const routes: Array<{ method: string, url: string }> = []
  const h = await createHarness(t, {
    app: {
      onRoute: (route: RouteOptions) => { for (const method of [route.method].flat()) routes.push({ method, url: route.url }) },
      // Room for thousands of refused codes without the lockout or the pending limit ending the run.
      twoFactor: { lockoutThreshold: 100, pendingAttempts: 100 }
    },
    users: [
      { username: 'admin', password: PASSWORDS.admin, role: 'admin' },
      { username: 'alice', password: PASSWORDS.alice },
      { username: 'bob', password: PASSWORDS.bob },
      { username: 'carol', password: 'carol-password-123' }
    ]
  })
  const { manualKey: adminKey } = await enrol(h, 'admin', PASSWORDS.admin)
  await enrol(h, 'alice', PASSWORDS.alice)
  await h.app.twoFactor.setRequired('bob', true, { actor: 'test' })

  // One browser per state, re-established whenever an accepted input (a skip, a finished
  // setup, a lockout) moved it to another state.
  const expectedState: Record<State, string | null> = { anonymous: null, 'signed-in': 'signed-in', pending: 'pending', 'pending-setup': 'pending-setup' }
  const browsers = new Map<State, Client>()
  async function establish (state: State): Promise<Client> {
    const client = h.client()
    if (state === 'anonymous') await client.get('/login')
    if (state === 'pending') { await clearFailures(h, 'alice'); await passwordStep(client, 'alice', PASSWORDS.alice); await client.get('/2fa/challenge') }
    if (state === 'pending-setup') {
      await h.app.twoFactor.setRequired('bob', true, { actor: 'test' })
      await passwordStep(client, 'bob', PASSWORDS.bob)
      await client.get('/2fa/setup')
    }
    if (state === 'signed-in') {
      await clearFailures(h, 'admin')
      await passwordStep(client, 'admin', PASSWORDS.admin)
      await client.get('/2fa/challenge')
      h.clock.advance(30_000)
      await client.post('/2fa/challenge', { code: codeFor(adminKey, h.clock.ms) })
      await client.get('/2fa/settings')
    }
    browsers.set(state, client)
    return client
  }
  // A browser's state is looked up again only after an accepted input, or now and then (the
  // pending state's attempts run out after many refusals): a refused input can't move it.
  const unchecked = new Map<State, number>()
  async function browser (state: State): Promise<Client> {
    const client = browsers.get(state)
    const runs = unchecked.get(state) ?? 0
    if (client !== undefined && runs >= 0 && runs < 25) return client
    if (client !== undefined && client.sessionCookie() !== undefined) {
      const row = rowsOf<{ state: string | null }>(await h.database.db.execute(
        sql`select data->'twoFactor'->>'state' as state from two_factor.sessions where sid_hash = ${hashSessionId(sessionIdOf(client))}`))[0]
      if (row !== undefined && row.state === expectedState[state]) {
        unchecked.set(state, 0)
        return client
      }
    }
    unchecked.set(state, 0)
    const fresh = await establish(state)
    baseline = null
    return fresh
  }
  /** Counts a run against a browser; an accepted input forces a look at its state next time. */
  function ran (state: State, accepted: boolean): void {
    unchecked.set(state, accepted ? -1 : (unchecked.get(state) ?? 0) + 1)
  }
  for (const state of STATES) await establish(state)
  // The guarded state before the next run; null when an accepted input may have changed it.
  let baseline: string | null = null

  const concrete = (url: string, id: string) => url.replace(/:\w+/g, encodeURIComponent(id)).replace(/\*$/, 'x')
  let requests = 0
  const statuses = new Map<number, number>()

  async function send (options: InjectOptions) {
    const response = await h.app.inject(options)
    requests++
    statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
    return response
  }

  const posts = routes.filter((r) => r.method === 'POST' && !NO_INPUT.has(r.url))
  const gets = [...new Set(routes.filter((r) => r.method === 'GET').map((r) => r.url))]
  t.ok(posts.length >= 10, `${posts.length} form/JSON routes to fuzz`)
  const started = Date.now()

  for (const route of posts) {
    t.test(`POST ${route.url}: never a 5xx; a refused input changes nothing`, async (t) => {
      await fc.assert(fc.asyncProperty(fc.constantFrom(...STATES), body, param, accept, hx, async (state, input, id, acceptHeader, hxHeader) => {
        const client = await browser(state)
        baseline ??= await guardedState(h)
        const headers: Record<string, string> = {
          cookie: [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
          'x-csrf-token': client.csrfToken ?? ''
        }
        if (acceptHeader !== undefined) headers.accept = acceptHeader
        if (hxHeader !== undefined) headers['hx-request'] = hxHeader
        let payload: string
        if (input.kind === 'form') {
          headers['content-type'] = 'application/x-www-form-urlencoded'
          payload = new URLSearchParams(input.fields).toString()
        } else if (input.kind === 'json') {
          headers['content-type'] = 'application/json'
          payload = JSON.stringify(input.value)
        } else {
          if (input.raw.type !== '') headers['content-type'] = input.raw.type
          payload = input.raw.payload
        }
        const response = await send({ method: 'POST', url: concrete(route.url, id), headers, payload })
        if (response.statusCode >= 500) throw new Error(`${response.statusCode} for ${state}: ${response.body.slice(0, 300)}`)
        // A lockout (423) is what refused codes are for: it ends the user's sessions by design.
        const moved = response.statusCode < 400 || response.statusCode === 423
        ran(state, moved)
        if (moved) baseline = null
        else if (await guardedState(h) !== baseline) throw new Error(`a refused input (${response.statusCode}) changed guarded state`)
      }), { numRuns: RUNS_PER_POST_ROUTE, seed: SEED, endOnFailure: true })
      t.pass(`${RUNS_PER_POST_ROUTE} runs`)
    })
  }

  t.test('GET routes with fuzzed queries and headers: never a 5xx, nothing guarded changes', async (t) => {
    const query = fc.array(fc.tuple(field, text), { maxLength: 6 })
    for (const url of gets) {
      await fc.assert(fc.asyncProperty(fc.constantFrom(...STATES), query, param, accept, hx, async (state, pairs, id, acceptHeader, hxHeader) => {
        const client = await browser(state)
        baseline ??= await guardedState(h)
        const headers: Record<string, string> = { cookie: [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ') }
        if (acceptHeader !== undefined) headers.accept = acceptHeader
        if (hxHeader !== undefined) headers['hx-request'] = hxHeader
        const search = new URLSearchParams(pairs).toString()
        const response = await send({ method: 'GET', url: concrete(url, id) + (search === '' ? '' : `?${search}`), headers })
        if (response.statusCode >= 500) throw new Error(`${response.statusCode} for GET ${url} as ${state}: ${response.body.slice(0, 300)}`)
        ran(state, response.statusCode < 400)
        if (await guardedState(h) !== baseline) throw new Error(`GET ${url} changed guarded state`)
      }), { numRuns: RUNS_PER_GET_ROUTE, seed: SEED, endOnFailure: true })
    }
    t.pass(`${gets.length} GET routes × ${RUNS_PER_GET_ROUTE} runs`)
  })

  t.test('summary', async (t) => {
    const seconds = (Date.now() - started) / 1000
    t.comment(`${requests} fuzzed requests in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`)
    t.ok(requests >= 2000, 'thousands of runs in total')
    t.notOk([...statuses.keys()].some((status) => status >= 500), 'no 5xx at all')
    // A handler running behind a refusal shows up as this warning even when the answer looks right.
    t.same(h.logs.filter((line) => line.includes('already sent')).map((line) => line.slice(0, 200)), [], 'no reply was sent twice')
    t.same(h.logs.filter((line) => /"level":(50|60)/.test(line)).map((line) => line.slice(0, 200)), [], 'nothing logged as an error')
  })
})
