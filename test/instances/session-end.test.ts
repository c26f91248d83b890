// Rule: ending a session (by its owner from another session, or by an admin reset) takes effect at that session's next request on every instance sharing the session store.
//
// Two Fastify instances (two hosts on one database, one clock), sharing the plugin's
// Postgres-backed session store; a browser whose requests a load balancer sends to either.
import t from 'tap'
import { answerOf, type Client } from '../helpers/client.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, login, type Host } from '../fixtures/host.ts'
import { manualKeyOf, PASSWORD } from '../sign-in/support.ts'

/** One browser, one cookie jar, whichever instance answers. */
class Roaming {
  private readonly clients: Client[]
  private last: Client
  constructor (hosts: Host[]) {
    const first = hosts[0]!.client()
    this.clients = hosts.map((h, i) => {
      if (i === 0) return first
      const client = h.client();
      (client as { cookies: Map<string, string> }).cookies = first.cookies
      return client
    })
    this.last = first
  }

  /** The client for instance `i` (0: A, 1: B), holding the jar and the latest CSRF token. */
  on (i: 0 | 1): Client {
    const client = this.clients[i]!
    client.csrfToken = this.last.csrfToken
    this.last = client
    return client
  }
}

async function whoIs (client: Client): Promise<string | null> {
  const home = await client.get('/', { json: true })
  return home.statusCode === 200 ? (JSON.parse(home.body) as { userId: string | null }).userId : null
}

const database = await createTestDatabase(t)
const a = await createHost(t, { database })
const b = await createHost(t, { database, clock: a.clock })
const A = 0
const B = 1

t.test('a session signed in on A works on B; ended from another session on B, it is signed out on A', async (t) => {
  const laptop = new Roaming([a, b])
  t.match(answerOf(await login(laptop.on(A), 'alice', PASSWORD.alice!)), { state: 'signed-in' }, 'signed in on A')
  t.equal(await whoIs(laptop.on(B)), 'alice', 'the same cookie works on B')
  t.equal(await whoIs(laptop.on(A)), 'alice', 'and on A')

  const phone = new Roaming([a, b])
  await login(phone.on(B), 'alice', PASSWORD.alice!)
  const list = answerOf(await phone.on(B).get('/2fa/sessions', { json: true })) as { sessions: Array<{ id: string, current: boolean }> }
  t.equal(list.sessions.length, 2, 'B lists both sessions, the one made on A too')

  const ended = await phone.on(B).post('/2fa/sessions/end-others', {}, { json: true })
  t.equal(ended.statusCode, 200)
  t.equal((answerOf(ended) as { ended: number }).ended, 1, 'end-others on B ends one')
  t.equal(await whoIs(laptop.on(A)), null, 'the laptop’s next request, on A, is signed out')
  t.equal(await whoIs(laptop.on(B)), null, 'and on B')
  t.equal((await laptop.on(A).get('/2fa/sessions', { json: true })).statusCode, 401, 'A gives it no list')
  t.equal(await whoIs(phone.on(A)), 'alice', 'the phone stays signed in, on A')
  t.equal(await whoIs(phone.on(B)), 'alice', 'and on B')
  t.ok(b.events.some((e) => e.type === 'sessions.ended' && e.userId === 'alice' && e.details.reason === 'user'), 'audited on B')
})

t.test('one session ended by its handle on B is signed out on A', async (t) => {
  const laptop = new Roaming([a, b])
  await login(laptop.on(A), 'alice', PASSWORD.alice!)
  const phone = new Roaming([a, b])
  await login(phone.on(A), 'alice', PASSWORD.alice!)
  const { sessions } = answerOf(await laptop.on(A).get('/2fa/sessions', { json: true })) as { sessions: Array<{ id: string, current: boolean }> }
  const laptopHandle = sessions.find((s) => s.current)!.id

  t.equal((await phone.on(B).post(`/2fa/sessions/${laptopHandle}/end`, {}, { json: true })).statusCode, 200, 'the phone ends the laptop’s session on B')
  t.equal(await whoIs(laptop.on(A)), null, 'the laptop is signed out on A')
  t.equal(await whoIs(phone.on(A)), 'alice', 'the phone is not')
})

t.test('an admin reset on A ends the user’s sessions seen on B', async (t) => {
  const enrolling = new Roaming([a, b])
  await login(enrolling.on(B), 'bob', PASSWORD.bob!)
  const key = await manualKeyOf(enrolling.on(B))
  t.equal((await enrolling.on(B).post('/2fa/setup/confirm', { code: codeFor(key, a.clock.ms) }, { json: true })).statusCode, 200, 'bob enrols on B')
  t.equal((await enrolling.on(B).post('/2fa/setup/finish', {}, { json: true })).statusCode, 200)
  a.clock.advance(30_000)

  const other = new Roaming([a, b])
  t.match(answerOf(await login(other.on(B), 'bob', PASSWORD.bob!)), { state: 'pending' })
  t.equal((await other.on(A).post('/2fa/challenge', { code: codeFor(key, a.clock.ms) }, { json: true })).statusCode, 200, 'password on B, code on A')
  a.clock.advance(30_000)
  const atPrompt = new Roaming([a, b])
  await login(atPrompt.on(B), 'bob', PASSWORD.bob!)
  t.equal(await whoIs(enrolling.on(B)), 'bob')
  t.equal(await whoIs(other.on(B)), 'bob')

  await a.app.twoFactor.reset('bob', { actor: 'admin', reason: 'lost phone' })
  t.equal(await whoIs(enrolling.on(B)), null, 'the session that enrolled is signed out on B')
  t.equal(await whoIs(other.on(B)), null, 'the other signed-in one too')
  const prompt = await atPrompt.on(B).post('/2fa/challenge', { code: codeFor(key, a.clock.ms) }, { json: true })
  // Its session is gone, CSRF secret and all: refused as a forged post (403) or a lapsed prompt (401).
  t.ok(prompt.statusCode === 401 || prompt.statusCode === 403, `the code prompt on B has lapsed, though its code would have been right (${prompt.statusCode})`)
  t.equal(await whoIs(atPrompt.on(A)), null)
  t.ok(a.events.some((e) => e.type === 'sessions.ended' && e.userId === 'bob' && e.details.reason === 'reset'), 'audited on A')
})
