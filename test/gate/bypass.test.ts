// Attack: reach a protected route with a half-signed-in session.
//
// The routes are not listed by hand: every route the app registers (the host's, the plugin's,
// and any added later such as the admin panel) is collected with an `onRoute` hook, and each is
// tried with a pending and a pending-setup session, in every shape a client can ask for.
import t, { type Test } from 'tap'
import type { FastifyInstance, FastifyReply, FastifyRequest, LightMyRequestResponse, RouteOptions } from 'fastify'
import { type Client, answerOf } from '../helpers/client.ts'
import { createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'
import { eq } from 'drizzle-orm'
import { enrolments } from '../../plugin/db/schema.ts'
import { accountOf, sessionIdOf, signedInClient } from '../helpers/states.ts'

interface SeenRoute { method: string, url: string, open: boolean, freshWithin: string | undefined }

const freshWithinOf = (route: RouteOptions): string | undefined => {
  const config = route.config?.twoFactor
  return config === false || config === undefined ? undefined : config.freshWithin
}

// The only routes that may opt out of the gate: the host's password page, the sign-in steps,
// the plugin's static files and logout. A new opt-out must be added here on purpose.
const ALLOW_LIST = [
  /^\/login$/,
  /^\/2fa\/challenge$/,
  /^\/2fa\/setup(\/[a-z-]+)?$/,
  /^\/2fa\/assets\/[\w.-]+$/,
  /^\/2fa\/logout$/,
  // The host's sign-out: a half-signed-in session must be able to undo the password step.
  /^\/logout$/
]

const GATE_MESSAGE = 'Enter your second factor to continue.'
const SHAPES = [
  { name: 'page', headers: {} },
  { name: 'htmx', headers: { 'hx-request': 'true' } },
  { name: 'htmx full-page', headers: { 'hx-request': 'true', 'hx-request-type': 'full' } },
  { name: 'JSON', headers: { accept: 'application/json' } },
  { name: 'JSON before HTML', headers: { accept: 'application/json, text/html;q=0.9' } },
  { name: 'htmx + JSON', headers: { 'hx-request': 'true', accept: 'application/json' } }
] as const

/** A concrete URL for a route pattern: parameters become a real user id. */
const concrete = (url: string): string => url.replace(/:\w+/g, 'alice').replace(/\*$/, 'x')

/** Text that only a signed-in user's pages hold: user names (dashboard, nav, admin lists). */
const PROTECTED_MARKUP = /\b(alice|bob)\b|Welcome,|Sign out|recovery codes? (left|remaining)/i

t.test('gate bypass', async (t) => {
  const routes: SeenRoute[] = []
  // Every handler notes that it ran: a refusal must stop the handler, not only replace the answer.
  const handled: string[] = []
  const h = await createHarness(t, {
    app: {
      onRoute: (route: RouteOptions) => {
        for (const method of [route.method].flat()) routes.push({ method, url: route.url, open: route.config?.twoFactor === false, freshWithin: freshWithinOf(route) })
        const handler = route.handler
        route.handler = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
          handled.push(`${request.method} ${route.url}`)
          return handler.call(this, request, reply)
        }
      }
    }
  })
  const { manualKey: aliceKey } = await enrol(h, 'alice', PASSWORDS.alice)

  const pending = h.client()
  t.equal((await passwordStep(pending, 'alice', PASSWORDS.alice)).headers.location, '/2fa/challenge')
  const pendingSetup = h.client()
  t.equal((await passwordStep(pendingSetup, 'admin', PASSWORDS.admin)).headers.location, '/2fa/setup', 'admins must enrol: pending-setup')
  // The pages each state may see hand out the session's CSRF token: the attacks below carry it.
  t.equal((await pending.get('/2fa/challenge')).statusCode, 200)
  t.equal((await pendingSetup.get('/2fa/setup')).statusCode, 200)
  const sessions: Array<{ state: string, client: Client, next: string }> = [
    { state: 'pending', client: pending, next: '/2fa/challenge' },
    { state: 'pending-setup', client: pendingSetup, next: '/2fa/setup' }
  ]

  const gatedPaths = [...new Set(routes.filter((r) => !r.open).map((r) => r.url))]
  const registered = new Set(routes.map((r) => `${r.method} ${r.url}`))

  t.test('only the allow-list opts out of the gate', async (t) => {
    t.ok(routes.length >= 20, `${routes.length} routes seen`)
    t.ok(gatedPaths.includes('/') && gatedPaths.includes('/2fa/settings') && gatedPaths.includes('/admin'), 'host and plugin pages are gated')
    const stray = routes.filter((r) => r.open && !ALLOW_LIST.some((pattern) => pattern.test(r.url)))
    t.same(stray, [], 'no route outside the allow-list has config.twoFactor = false')
  })

  function assertBlocked (t: Test, response: LightMyRequestResponse, method: string, headers: Record<string, string>, next: string, label: string) {
    t.equal(response.headers['cache-control'], 'no-store', `${label}: the refusal is not cached`)
    const json = (headers.accept ?? '').startsWith('application/json')
    const body = method === 'HEAD' ? '' : response.body
    if (json) {
      t.equal(response.statusCode, 401, `${label}: 401`)
      if (method !== 'HEAD') t.same(answerOf({ body }), { error: 'second_factor_required', message: GATE_MESSAGE, next }, `${label}: only the gate's JSON`)
    } else if (headers['hx-request'] === 'true') {
      t.equal(response.statusCode, 200, `${label}: 200 for htmx`)
      t.equal(response.headers['hx-redirect'], next, `${label}: HX-Redirect to ${next}`)
      t.equal(body, '', `${label}: empty body`)
    } else {
      t.equal(response.statusCode, 303, `${label}: 303`)
      t.equal(response.headers.location, next, `${label}: to ${next}`)
      t.equal(body, '', `${label}: empty body`)
    }
  }

  t.test('every gated route answers a half-signed-in session with the gate and nothing else', async (t) => {
    let tried = 0
    for (const { state, client, next } of sessions) {
      for (const path of gatedPaths) {
        for (const method of ['GET', 'HEAD', 'POST']) {
          for (const shape of SHAPES) {
            const headers: Record<string, string> = { ...shape.headers, cookie: cookieOf(client) }
            // A valid CSRF token, so the gate (not the token check) is what stops the POST.
            if (method === 'POST') Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': client.csrfToken ?? '' })
            handled.length = 0
            const response = await h.app.inject({ method: method as 'GET', url: concrete(path), headers, ...(method === 'POST' ? { payload: 'password=x&required=false&reason=x' } : {}) })
            const label = `${state} ${method} ${path} as ${shape.name}`
            await new Promise((resolve) => setImmediate(resolve))
            t.same(handled, [], `${label}: the route's handler did not run`)
            tried++
            if (registered.has(`${method} ${path}`)) assertBlocked(t, response, method, headers, next, label)
            else t.ok(response.statusCode === 404 || response.statusCode === 401 || response.statusCode === 303 || response.body === '', `${label}: not served`)
            t.notMatch(response.body, PROTECTED_MARKUP, `${label}: no protected markup`)
          }
        }
      }
    }
    t.ok(tried >= 200, `${tried} requests tried`)
    // The attempts changed nothing: alice is still enrolled, nobody disabled anything.
    t.ok((await accountOf(h, 'alice'))?.secret, 'alice still has her secret')
  })

  t.test('spelling a gated path differently reaches no protected page', async (t) => {
    for (const { state, client, next } of sessions) {
      for (const path of gatedPaths.map(concrete)) {
        const variants = [
          path === '/' ? '/?' : `${path}/`,
          path.toUpperCase(),
          `/${path}`,
          path.replace(/\/([a-z])/, (_m, c: string) => `/%${c.charCodeAt(0).toString(16)}`),
          `${path};x=1`,
          `${path}?next=${encodeURIComponent(next)}`,
          `${path}#${next}`
        ]
        for (const url of variants) {
          for (const shape of [SHAPES[0], SHAPES[3]]) {
            const response = await h.app.inject({ method: 'GET', url, headers: { ...shape.headers, cookie: cookieOf(client) } })
            const label = `${state} GET ${url} as ${shape.name}`
            t.notMatch(response.body, PROTECTED_MARKUP, `${label}: no protected markup`)
            t.ok(response.statusCode !== 200 || response.body === '' || response.headers['hx-redirect'] === next, `${label}: not served (${response.statusCode})`)
          }
        }
      }
    }
  })

  t.test('the pending session id as a bearer token is just an anonymous request', async (t) => {
    for (const { state, client } of sessions) {
      const sid = sessionIdOf(client)
      for (const path of gatedPaths.filter((p) => registered.has(`GET ${p}`)).map(concrete)) {
        const anonymous = await h.app.inject({ method: 'GET', url: path })
        for (const token of [sid, client.sessionCookie()!]) {
          for (const shape of SHAPES.slice(0, 4)) {
            const response = await h.app.inject({ method: 'GET', url: path, headers: { ...shape.headers, authorization: `Bearer ${token}` } })
            const label = `${state} GET ${path} with Bearer as ${shape.name}`
            t.notMatch(response.body, PROTECTED_MARKUP, `${label}: no protected markup`)
            if (shape.name === 'page') {
              t.equal(response.statusCode, anonymous.statusCode, `${label}: same status as anonymous`)
              t.equal(response.headers.location, anonymous.headers.location, `${label}: same redirect as anonymous`)
            }
            const sentOn = response.statusCode === 200 && response.headers['hx-redirect'] !== undefined && response.body === ''
            t.ok(response.statusCode >= 300 || sentOn, `${label}: not served (${response.statusCode})`)
          }
        }
      }
    }
  })

  t.test('the allow-listed steps do not serve the other state', async (t) => {
    // A pending (code) session can't use the wizard to enrol a secret of its own.
    for (const [method, url] of [['GET', '/2fa/setup'], ['GET', '/2fa/setup/confirm'], ['POST', '/2fa/setup/confirm'], ['POST', '/2fa/setup/finish'], ['POST', '/2fa/setup/skip']] as const) {
      const response = method === 'GET' ? await pending.get(url) : await pending.post(url, { code: '123456' })
      t.equal(response.statusCode, 303, `pending ${method} ${url}: redirected`)
      t.equal(response.headers.location, '/2fa/challenge', `pending ${method} ${url}: to the challenge`)
    }
    t.same(await h.database.db.select().from(enrolments).where(eq(enrolments.userId, 'alice')), [], 'no enrolment was started for alice')
    t.equal((await pending.get('/')).headers.location, '/2fa/challenge', 'alice is still pending')

    // A pending-setup session has no code to enter: the challenge sends it back to the wizard.
    t.equal((await pendingSetup.get('/2fa/challenge')).headers.location, '/2fa/setup')
    const posted = await pendingSetup.post('/2fa/challenge', { code: '123456' })
    t.equal(posted.statusCode, 401, 'pending-setup POST /2fa/challenge: refused')
    const finish = await pendingSetup.post('/2fa/setup/finish')
    t.equal(finish.headers.location, '/2fa/setup', 'finishing before confirming goes back to the wizard')
    t.equal((await pendingSetup.get('/')).headers.location, '/2fa/setup', 'admin is still pending-setup')
  })

  // Last: it moves the clock past the pending states' lifetime.
  t.test('a step-up route neither answers nor runs for a session whose code is not fresh', async (t) => {
    const stepUp = routes.filter((r) => r.freshWithin !== undefined)
    t.ok(stepUp.length >= 1, `${stepUp.length} step-up routes`)
    const signedIn = await signedInClient(h, 'alice', PASSWORDS.alice, aliceKey)
    h.clock.advance(60 * 60_000)
    for (const route of stepUp) {
      for (const shape of SHAPES) {
        handled.length = 0
        const headers = { ...shape.headers, cookie: cookieOf(signedIn) }
        const response = await h.app.inject({ method: route.method as 'GET', url: concrete(route.url), headers })
        await new Promise((resolve) => setImmediate(resolve))
        const label = `${route.method} ${route.url} as ${shape.name}`
        assertStepUp(t, response, route.method, headers, route.url, label)
        t.same(handled, [], `${label}: the route's handler did not run`)
      }
    }
  })
})

/** The answer to a signed-in session whose code is not fresh: to the step-up prompt, in each client's shape. */
function assertStepUp (t: Test, response: LightMyRequestResponse, method: string, headers: Record<string, string>, url: string, label: string) {
  t.equal(response.headers['cache-control'], 'no-store', `${label}: not cached`)
  const json = (headers.accept ?? '').startsWith('application/json')
  if (json) {
    t.equal(response.statusCode, 401, `${label}: 401`)
    if (method !== 'HEAD') t.match(answerOf(response), { error: 'step_up_required', next: '/2fa/step-up' }, `${label}: step_up_required`)
  } else if (headers['hx-request'] === 'true') {
    t.equal(response.statusCode, 401, `${label}: 401 for htmx`)
    t.match(response.headers['hx-redirect'], /^\/2fa\/step-up\?returnTo=/, `${label}: HX-Redirect to the prompt`)
  } else if (method === 'GET' || method === 'HEAD') {
    t.equal(response.statusCode, 303, `${label}: 303`)
    t.equal(response.headers.location, `/2fa/step-up?returnTo=${encodeURIComponent(url)}`, `${label}: to the prompt, and back`)
  } else {
    t.equal(response.statusCode, 401, `${label}: a form gets the prompt`)
    t.match(response.body, /action="\/2fa\/step-up"/, `${label}: the prompt`)
  }
}

function cookieOf (client: Client): string {
  return [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
}
