// Attack: make a signed-in (or half-signed-in) browser send a request it did not mean to
//. Every state-changing route, found with an `onRoute` hook so that routes added
// later are covered too, is sent forged requests from every session state; none changes
// anything. And no GET changes anything that matters, whatever its query says.
import t from 'tap'
import { sql } from 'drizzle-orm'
import type { RouteOptions } from 'fastify'
import { rowsOf } from '../../plugin/db/database.ts'
import type { Client } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep, type Harness } from '../helpers/demo.ts'
import { pendingClient, sessionIdOf } from '../helpers/states.ts'

const concrete = (url: string): string => url.replace(/:\w+/g, 'alice').replace(/\*$/, 'x')

/**
 * What must not move: every account, recovery code, setting and audit event, the host's
 * users, and every session that belongs to a user. (Anonymous sessions may come and go: an
 * error page hands out a CSRF token, which needs one.)
 */
async function snapshot (h: Harness): Promise<string> {
  const q = async (query: ReturnType<typeof sql>) => rowsOf(await h.database.db.execute(query))
  return JSON.stringify({
    accounts: await q(sql`select * from two_factor.accounts order by user_id`),
    recovery: await q(sql`select * from two_factor.recovery_codes order by user_id, digest`),
    settings: await q(sql`select * from two_factor.settings order by key`),
    events: await q(sql`select id, type, user_id from two_factor.events order by id`),
    sessions: await q(sql`select sid_hash, user_id, data->'twoFactor' as state from two_factor.sessions where user_id is not null order by sid_hash`),
    users: await q(sql`select id, password_hash, role, failed_logins, locked_until from demo_users order by id`)
  })
}

t.test('CSRF', async (t) => {
  const routes: Array<{ method: string, url: string }> = []
  const h = await createHarness(t, {
    app: { onRoute: (route: RouteOptions) => { for (const method of [route.method].flat()) routes.push({ method, url: route.url }) } }
  })
  const { manualKey: adminKey } = await enrol(h, 'admin', PASSWORDS.admin)
  const { manualKey: aliceKey } = await enrol(h, 'alice', PASSWORDS.alice)
  await h.app.twoFactor.setRequired('bob', true, { actor: 'test' })

  // One browser in each state, each holding its own valid token.
  const anonymous = h.client()
  await anonymous.get('/login')
  const signedIn = await pendingClient(h, 'admin', PASSWORDS.admin)
  t.equal((await signedIn.post('/2fa/challenge', { code: codeFor(adminKey, h.clock.ms) })).headers.location, '/')
  await signedIn.get('/2fa/settings')
  const pending = await pendingClient(h, 'alice', PASSWORDS.alice)
  const pendingSetup = h.client()
  t.equal((await passwordStep(pendingSetup, 'bob', PASSWORDS.bob)).headers.location, '/2fa/setup')
  await pendingSetup.get('/2fa/setup')
  const browsers: Array<[string, Client]> = [['anonymous', anonymous], ['signed-in', signedIn], ['pending', pending], ['pending-setup', pendingSetup]]
  const attacker = h.client()
  await attacker.get('/login')

  const stateChanging = routes.filter((r) => !['GET', 'HEAD', 'OPTIONS'].includes(r.method))
  t.ok(stateChanging.length >= 9, `${stateChanging.length} state-changing routes`)

  t.test('every state-changing route refuses a missing, wrong or cross-site token, and nothing changes', async (t) => {
    const before = await snapshot(h)
    let refused = 0
    for (const route of stateChanging) {
      for (const [state, browser] of browsers) {
        // A body that would do real harm if it got through: right passwords, the right code.
        const body = {
          username: 'alice',
          password: state === 'signed-in' ? PASSWORDS.admin : PASSWORDS.alice,
          currentPassword: PASSWORDS.admin,
          newPassword: 'attacker-chosen-password',
          code: codeFor(aliceKey, h.clock.ms),
          required: 'false',
          requireAll: 'true',
          reason: 'forged',
          confirm: 'true'
        }
        const cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
        const attacks: Array<[string, Record<string, string>, Record<string, string>]> = [
          ['no token', {}, {}],
          ['the attacker’s own token', { 'x-csrf-token': attacker.csrfToken! }, {}],
          ['the attacker’s token in the form', {}, { _csrf: attacker.csrfToken! }],
          ['a made-up token', { 'x-csrf-token': 'x'.repeat(52) }, {}],
          ['an empty token', { 'x-csrf-token': '' }, { _csrf: '' }],
          ['the browser’s token, sent cross-site', { 'x-csrf-token': browser.csrfToken!, 'sec-fetch-site': 'cross-site' }, {}],
          ['the browser’s token in the form, sent cross-site', { 'sec-fetch-site': 'cross-site' }, { _csrf: browser.csrfToken! }]
        ]
        for (const [index, [attack, headers, extra]] of attacks.entries()) {
          // Every attack as JSON; the form encoding for the missing and the cross-site token.
          for (const json of index === 0 || index >= 5 ? [false, true] : [true]) {
            const response = await h.app.inject({
              method: route.method as 'POST',
              url: concrete(route.url),
              headers: { cookie, ...headers, ...(json ? { accept: 'application/json' } : { 'content-type': 'application/x-www-form-urlencoded' }) },
              payload: json ? { ...body, ...extra } : new URLSearchParams({ ...body, ...extra }).toString()
            })
            const label = `${route.method} ${route.url} as ${state}, ${attack}${json ? ' (JSON)' : ''}`
            // A half-signed-in session meets the gate before the token check on gated routes.
            const gated = (state === 'pending' || state === 'pending-setup') && [303, 401].includes(response.statusCode)
            t.ok(response.statusCode === 403 || gated, `${label}: refused (${response.statusCode})`)
            // The admin pages turn away a non-admin before looking at the token; both are refusals.
            const expected = state === 'signed-in' ? ['csrf'] : ['csrf', 'forbidden']
            if (response.statusCode === 403 && json) t.ok(expected.includes(JSON.parse(response.body).error), `${label}: error ${JSON.parse(response.body).error}`)
            refused++
          }
        }
      }
    }
    t.comment(`${refused} forged requests refused`)
    t.equal(await snapshot(h), before, 'no account, code, setting, event, user or session state changed')
    t.equal((await signedIn.get('/')).statusCode, 200, 'the signed-in browser is still signed in')
    t.equal((await pending.get('/')).headers.location, '/2fa/challenge', 'the pending browser is still pending')
  })

  t.test('the token is bound to the session: a token from before sign-in stops working after it', async (t) => {
    const client = h.client()
    await client.get('/login')
    const oldToken = client.csrfToken!
    await client.post('/login', { username: 'alice', password: PASSWORDS.alice })
    const response = await h.app.inject({
      method: 'POST',
      url: '/2fa/challenge',
      headers: { cookie: [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; '), 'x-csrf-token': oldToken, accept: 'application/json' },
      payload: { code: codeFor(aliceKey, h.clock.ms) }
    })
    t.equal(response.statusCode, 403, 'the anonymous session’s token is refused in the pending session')
    t.equal((await client.get('/')).headers.location, '/2fa/challenge', 'still pending')
    t.ok(sessionIdOf(client))
  })

  t.test('no GET changes state, whatever its query asks', async (t) => {
    const gets = [...new Set(routes.filter((r) => r.method === 'GET').map((r) => r.url))]
    // The one GET with a side effect by design: the wizard's first step creates or
    // resumes a *pending* secret, which changes nothing until a code confirms it.
    const wizard = new Set(['/2fa/setup', '/2fa/setup/confirm'])
    const query = '?password=x&required=false&requireAll=true&code=123456&reason=x&_method=POST'
    const before = await snapshot(h)
    for (const url of gets.filter((u) => !wizard.has(u))) {
      for (const [state, browser] of browsers) {
        for (const json of [false, true]) {
          const response = await browser.get(concrete(url) + query, { json, headers: { 'x-http-method-override': 'POST' } })
          t.ok(response.statusCode < 500, `GET ${url} as ${state}: ${response.statusCode}`)
        }
      }
    }
    t.equal(await snapshot(h), before, 'nothing changed')

    // State-changing paths do not answer GET at all.
    for (const route of stateChanging) {
      if (routes.some((r) => r.method === 'GET' && r.url === route.url)) continue
      const response = await signedIn.get(concrete(route.url) + query, { headers: { 'x-http-method-override': 'POST' } })
      t.equal(response.statusCode, 404, `GET ${route.url}: not found`)
    }
    t.equal(await snapshot(h), before, 'still nothing changed')
  })
})
