// Signing out works from every sign-in state. The attacker review found that a session at the
// code prompt or in the forced wizard could not sign out (the gate answered the demo's logout
// with 401 and sent it back to the prompt), so on a shared computer the next person found a
// half-signed-in session waiting for a code or an enrolment. Here the host's own logout route
// (marked `config: { twoFactor: false }`) and the plugin's POST /2fa/logout are tried from each
// state, anonymous, pending, pending-setup and signed-in: the answer is not an error, GET / is
// anonymous afterwards, and the old session cookie opens nothing any more.
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { Client } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'
import { createHost, login, type Host } from '../fixtures/host.ts'
import { enrolled, PASSWORD, sameCookies, whoIs } from './support.ts'

type State = 'anonymous' | 'pending' | 'pending-setup' | 'signed-in'
const STATES: State[] = ['anonymous', 'pending', 'pending-setup', 'signed-in']

interface Way {
  name: string
  logout (client: Client): Promise<LightMyRequestResponse>
  /** What a good answer looks like. */
  check (t: Test, response: LightMyRequestResponse): void
}

const WAYS: Way[] = [
  {
    name: 'the host’s POST /logout (JSON)',
    logout: async (client) => await client.post('/logout', {}, { json: true }),
    check: (t, response) => {
      t.equal(response.statusCode, 200, '200')
      t.match(JSON.parse(response.body), { state: 'anonymous', csrfToken: String }, 'anonymous, with a token for the next POST')
    }
  },
  {
    name: 'the host’s POST /logout (form)',
    logout: async (client) => await client.post('/logout'),
    check: (t, response) => { t.equal(response.statusCode, 200, '200') }
  },
  {
    name: 'POST /2fa/logout (page)',
    logout: async (client) => await client.post('/2fa/logout'),
    check: (t, response) => {
      t.equal(response.statusCode, 303, '303')
      t.equal(response.headers.location, '/login', 'to the login page')
    }
  },
  {
    name: 'POST /2fa/logout (htmx)',
    logout: async (client) => await client.post('/2fa/logout', {}, { htmx: true }),
    check: (t, response) => {
      t.equal(response.statusCode, 200, '200')
      t.equal(response.headers['hx-redirect'], '/login', 'to the login page')
    }
  },
  {
    name: 'POST /2fa/logout (JSON)',
    logout: async (client) => await client.post('/2fa/logout', {}, { json: true }),
    check: (t, response) => {
      t.equal(response.statusCode, 200, '200')
      t.match(JSON.parse(response.body), { state: 'anonymous', next: '/login', csrfToken: String }, 'anonymous, next /login, with a token for the next POST')
    }
  }
]

/** A client in `state`, and what a session in that state could do (which must fail once signed out). */
async function inState (host: Host, state: State, manualKey: string): Promise<{ client: Client, use: (client: Client) => Promise<LightMyRequestResponse> }> {
  const client = host.client()
  host.clock.advance(30_000)
  switch (state) {
    case 'anonymous':
      await client.get('/login', { json: true })
      return { client, use: async (c) => await c.get('/2fa/settings', { json: true }) }
    case 'pending':
      await login(client, 'alice', PASSWORD.alice!)
      return { client, use: async (c) => await c.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) }, { json: true }) }
    case 'pending-setup':
      await login(client, 'admin', PASSWORD.admin!)
      return { client, use: async (c) => await c.get('/2fa/setup', { json: true }) }
    case 'signed-in':
      await login(client, 'bob', PASSWORD.bob!)
      return { client, use: async (c) => await c.get('/2fa/settings', { json: true }) }
  }
}

const expectedBefore: Record<State, { state: string, userId: string | null }> = {
  anonymous: { state: 'anonymous', userId: null },
  pending: { state: 'second_factor_required', userId: null },
  'pending-setup': { state: 'second_factor_required', userId: null },
  'signed-in': { state: 'signed-in', userId: 'bob' }
}

t.test('signing out works from every sign-in state, and the old cookie is dead', async (t) => {
  const host = await createHost(t)
  // alice has 2FA (the code prompt); admin is required and has none (the forced wizard); bob has none.
  const { manualKey } = await enrolled(host, 'alice')
  for (const way of WAYS) {
    await t.test(way.name, async (t) => {
      for (const state of STATES) {
        await t.test(`from ${state}`, async (t) => {
          const { client, use } = await inState(host, state, manualKey)
          t.match(await whoIs(client), expectedBefore[state], `the session is ${state}`)
          const old = sameCookies(host, client)
          const response = await way.logout(client)
          t.ok(response.statusCode < 500, `no 5xx (${response.statusCode} ${response.body.slice(0, 120)})`)
          way.check(t, response)
          t.same(await whoIs(client), { status: 200, userId: null, state: 'anonymous' }, 'GET /: anonymous')
          t.same(await whoIs(old), { status: 200, userId: null, state: 'anonymous' }, 'the old cookie: GET / is anonymous')
          const used = await use(old)
          t.not(used.statusCode, 200, `the old cookie opens nothing (${used.statusCode})`)
          if (state === 'pending') t.equal(used.statusCode, 401, 'not even the code prompt, with the right code')
        })
      }
    })
  }
})

t.test('the demo app’s POST /logout works at the code prompt and in the forced wizard', async (t) => {
  const h = await createHarness(t)
  await enrol(h, 'alice', PASSWORDS.alice)
  const situations = [
    { name: 'at the code prompt', user: 'alice' as const, at: '/2fa/challenge' },
    { name: 'in the forced wizard', user: 'admin' as const, at: '/2fa/setup' }
  ]
  for (const { name, user, at } of situations) {
    await t.test(name, async (t) => {
      for (const json of [false, true]) {
        const client = h.client()
        const password = await passwordStep(client, user, PASSWORDS[user])
        t.equal(password.headers.location, at, `${user} is ${name}`)
        await client.get(at)
        const old = sameCookies(h, client)
        const response = await client.post('/logout', {}, { json })
        if (json) {
          t.equal(response.statusCode, 200, `JSON: 200 (${response.statusCode} ${response.body.slice(0, 120)})`)
          t.match(response.statusCode === 200 ? JSON.parse(response.body) : {}, { state: 'anonymous', next: '/login', csrfToken: String }, 'JSON: anonymous, next /login')
        } else {
          t.equal(response.statusCode, 303, 'page: 303')
          t.equal(response.headers.location, '/login', 'page: to the login page')
        }
        const home = await client.get('/')
        t.equal(home.headers.location, '/login', 'GET / goes to the login page')
        t.equal((await old.get('/')).headers.location, '/login', 'so does the old cookie')
        t.equal((await old.get(at)).statusCode >= 400, true, `the old cookie gets no ${at}`)
      }
    })
  }
})
