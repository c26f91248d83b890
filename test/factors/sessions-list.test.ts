// Rule: a signed-in user sees only their own signed-in sessions, each named by a handle (never its session id), and can end one or all others (CSRF-checked, audited); nobody else's handle and no half-signed-in session can end or list anything.
//
// Tested at the HTTP level (JSON and page forms), as someone who has only the password, or
// another account, would try. One database for the file.
import t from 'tap'
import { eq } from 'drizzle-orm'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { PgSessionStore } from '../../plugin/index.ts'
import { sessions } from '../../plugin/db/schema.ts'
import { answerOf, Client, type RequestOptions } from '../helpers/client.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, HOST_SESSION_SECRET, login, type Host, type HostUser } from '../fixtures/host.ts'
import { manualKeyOf } from '../sign-in/support.ts'

const UA = {
  firefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  safari: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  chrome: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  edge: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0'
}
const USERS: HostUser[] = ['alice', 'bob', 'carol', 'dave'].map((id) => ({ id, password: `${id}-password` }))
const passwordOf = (id: string): string => `${id}-password`

interface Listed { id: string, current: boolean, userAgent: string | null, browser: string | null, os: string | null, ip: string | null, createdAt: string | null, lastSeenAt: string | null }

class Browser extends Client {
  constructor (app: FastifyInstance, readonly ua: string) { super(app) }
  override async get (url: string, options: RequestOptions = {}): Promise<LightMyRequestResponse> {
    return await super.get(url, { ...options, headers: { 'user-agent': this.ua, ...options.headers } })
  }

  override async post (url: string, body: Record<string, unknown> = {}, options: RequestOptions = {}): Promise<LightMyRequestResponse> {
    return await super.post(url, body, { ...options, headers: { 'user-agent': this.ua, ...options.headers } })
  }
}

async function signedIn (h: Host, id: string, ua: string): Promise<Browser> {
  const browser = new Browser(h.app, ua)
  const answer = answerOf(await login(browser, id, passwordOf(id)))
  if (answer.state !== 'signed-in') throw new Error(`${id}: ${JSON.stringify(answer)}`)
  return browser
}

async function whoIs (client: Client): Promise<string | null> {
  const home = await client.get('/', { json: true })
  return home.statusCode === 200 ? (JSON.parse(home.body) as { userId: string | null }).userId : null
}

async function listOf (browser: Client): Promise<Listed[]> {
  const answer = await browser.get('/2fa/sessions', { json: true })
  if (answer.statusCode !== 200) throw new Error(`GET /2fa/sessions: ${answer.statusCode} ${answer.body.slice(0, 200)}`)
  return (answerOf(answer) as { sessions: Listed[] }).sessions
}

/** The session id inside the signed cookie (`<id>.<signature>`, URL-encoded). */
function sessionIdOf (browser: Client): string {
  return decodeURIComponent(browser.sessionCookie()!).split('.')[0]!
}

async function storedSessionsOf (h: Host, id: string): Promise<number> {
  return (await h.database.db.select().from(sessions).where(eq(sessions.userId, id))).length
}

const database = await createTestDatabase(t)
const h = await createHost(t, { database, users: USERS })

t.test('GET /2fa/sessions lists the account’s signed-in sessions: browser, system, IP, started, last seen, this one marked; a handle, never the session id', async (t) => {
  const started = h.clock.ms
  const laptop = await signedIn(h, 'alice', UA.firefox)
  h.clock.advance(60_000)
  const phone = await signedIn(h, 'alice', UA.safari)
  const bobs = await signedIn(h, 'bob', UA.chrome)

  const list = await listOf(laptop)
  t.equal(list.length, 2, 'alice’s two sessions, not bob’s')
  const mine = list.find((s) => s.current)!
  const other = list.find((s) => !s.current)!
  t.ok(mine, 'this one is marked current')
  t.equal(list.filter((s) => s.current).length, 1, 'only this one')
  t.match(mine, { browser: 'Firefox', os: 'Linux', userAgent: UA.firefox, ip: '127.0.0.1', createdAt: new Date(started).toISOString(), lastSeenAt: new Date(started).toISOString() }, 'the laptop: Firefox on Linux, from where and since when')
  t.match(other, { browser: 'Safari', os: 'iOS', ip: '127.0.0.1', createdAt: new Date(started + 60_000).toISOString() }, 'the phone: Safari on iOS')
  t.same((await listOf(phone)).find((s) => s.current)?.id, other.id, 'the phone sees itself as current, by the same handle')

  for (const session of list) t.match(session.id, /^[A-Za-z0-9_-]{22}$/, 'a handle')
  const ids = [laptop, phone, bobs].map(sessionIdOf)
  const texts = [
    (await laptop.get('/2fa/sessions', { json: true })).body,
    (await laptop.get('/2fa/sessions')).body,
    (await laptop.get('/2fa/sessions', { htmx: true })).body,
    (await laptop.get('/2fa/settings')).body
  ]
  for (const text of texts) {
    for (const id of ids) t.notOk(text.includes(id), 'no session id in the answer')
    t.notOk(text.includes(laptop.sessionCookie()!), 'nor the cookie')
  }
  const page = texts[1]!
  t.match(page, /Firefox · Linux/, 'the page names the laptop')
  t.match(page, /Safari · iOS/, 'and the phone')
  t.match(page, /this browser/, 'and marks this one')
  t.match(page, new RegExp(`action="/2fa/sessions/${other.id}/end"`), 'with "Sign out" for the other one')
  t.notMatch(page, new RegExp(`/2fa/sessions/${mine.id}/end`), 'and none for this one')
  t.match(page, /action="\/2fa\/sessions\/end-others"/, 'and "Sign out all other sessions"')
  t.notMatch(page, /Chrome/, 'nothing of bob’s')
  t.match(String((await laptop.get('/2fa/sessions', { json: true })).headers['cache-control']), /no-store/)

  // Last seen moves with use (a few minutes at a time).
  h.clock.advance(6 * 60_000)
  t.equal(await whoIs(phone), 'alice')
  const seen = (await listOf(laptop)).find((s) => s.id === other.id)!
  t.equal(seen.lastSeenAt, new Date(h.clock.ms).toISOString(), 'the phone’s last request shows as last seen')
  t.equal((await listOf(laptop))[0]!.id, other.id, 'most recently seen first')
})

t.test('a half-signed-in session (password only, at the code prompt) lists nothing and ends nothing', async (t) => {
  const owner = await signedIn(h, 'carol', UA.firefox)
  const key = await manualKeyOf(owner)
  t.equal((await owner.post('/2fa/setup/confirm', { code: codeFor(key, h.clock.ms) }, { json: true })).statusCode, 200)
  t.equal((await owner.post('/2fa/setup/finish', {}, { json: true })).statusCode, 200)
  h.clock.advance(30_000)
  const second = new Browser(h.app, UA.safari)
  await login(second, 'carol', passwordOf('carol'))
  t.equal((await second.post('/2fa/challenge', { code: codeFor(key, h.clock.ms) }, { json: true })).statusCode, 200)
  h.clock.advance(30_000)
  const [handle] = (await listOf(owner)).filter((s) => !s.current).map((s) => s.id)

  const attacker = new Browser(h.app, UA.chrome)
  t.match(answerOf(await login(attacker, 'carol', passwordOf('carol'))), { state: 'pending' }, 'the attacker has the password: the code prompt')
  const json = await attacker.get('/2fa/sessions', { json: true })
  t.equal(json.statusCode, 401, 'GET (JSON): refused')
  t.match(answerOf(json), { error: 'second_factor_required', next: '/2fa/challenge' })
  t.notOk('sessions' in JSON.parse(json.body), 'no list')
  const page = await attacker.get('/2fa/sessions')
  t.equal(page.statusCode, 303, 'GET (page): sent to the code prompt')
  t.equal(page.headers.location, '/2fa/challenge')
  t.notMatch(page.body, /Firefox|Safari/)
  t.equal((await attacker.post('/2fa/sessions/end-others', {}, { json: true })).statusCode, 401, 'end-others: refused')
  t.equal((await attacker.post(`/2fa/sessions/${handle}/end`, {}, { json: true })).statusCode, 401, 'ending one by its handle: refused')
  t.equal((await attacker.post(`/2fa/sessions/${handle}/end`, {})).statusCode, 303, '(form: sent to the prompt)')
  t.equal(await whoIs(owner), 'carol', 'carol’s sessions are untouched')
  t.equal(await whoIs(second), 'carol')
  t.equal((await listOf(owner)).length, 2, 'the prompt is not listed as a signed-in session')
  t.equal(await storedSessionsOf(h, 'carol'), 3, '(it is stored: three sessions of carol)')
  t.equal((await new Browser(h.app, UA.chrome).get('/2fa/sessions', { json: true })).statusCode, 401, 'an anonymous request gets no list either')
})

t.test('POST /2fa/sessions/:id/end ends that session at its next request; another user’s handle is refused', async (t) => {
  const laptop = await signedIn(h, 'dave', UA.firefox)
  const phone = await signedIn(h, 'dave', UA.safari)
  const tablet = await signedIn(h, 'dave', UA.edge)
  const bobs = await signedIn(h, 'bob', UA.chrome)
  const handles = (list: Listed[], ua: string) => list.find((s) => s.userAgent === ua)!.id

  const bobsHandle = (await listOf(bobs)).find((s) => s.current)!.id
  for (const [name, options] of [['JSON', { json: true }], ['form', {}]] as const) {
    const foreign = await laptop.post(`/2fa/sessions/${bobsHandle}/end`, {}, options)
    t.equal(foreign.statusCode, 404, `bob’s handle (${name}): not found`)
  }
  t.equal((await laptop.post('/2fa/sessions/not-a-handle/end', {}, { json: true })).statusCode, 404, 'a made-up handle: not found')
  t.equal(await whoIs(bobs), 'bob', 'bob is still signed in')
  const eventsBefore = h.events.filter((e) => e.type === 'sessions.ended').length

  const phoneHandle = handles(await listOf(laptop), UA.safari)
  for (const [name, options] of [['JSON', { json: true, noCsrf: true }], ['form', { noCsrf: true }]] as const) {
    t.equal((await laptop.post(`/2fa/sessions/${phoneHandle}/end`, {}, options)).statusCode, 403, `without the CSRF token (${name}): refused`)
    t.equal((await laptop.post('/2fa/sessions/end-others', {}, options)).statusCode, 403, `end-others without the CSRF token (${name}): refused`)
  }
  t.equal(await whoIs(phone), 'dave', 'nothing ended')
  t.equal(h.events.filter((e) => e.type === 'sessions.ended').length, eventsBefore, 'and nothing audited')

  const ended = await laptop.post(`/2fa/sessions/${phoneHandle}/end`, {}, { json: true })
  t.equal(ended.statusCode, 200, 'end one (JSON)')
  const left = (answerOf(ended) as { sessions: Listed[], ended: number }).sessions
  t.equal(left.length, 2, 'two left')
  t.notOk(left.some((s) => s.id === phoneHandle), 'the phone is gone from the list')
  t.equal(await whoIs(phone), null, 'the phone’s next request is signed out')
  t.equal((await phone.get('/2fa/sessions', { json: true })).statusCode, 401, 'and it lists nothing')
  t.equal(await whoIs(laptop), 'dave', 'the laptop stays')
  t.equal(await whoIs(tablet), 'dave', 'the tablet stays')
  const event = h.events.findLast((e) => e.type === 'sessions.ended' && e.userId === 'dave')
  t.match(event?.details, { count: 1, reason: 'user' }, 'sessions.ended is audited')
  t.notOk(JSON.stringify(h.events).includes(sessionIdOf(phone)), 'no event holds a session id')
  t.equal((await laptop.post(`/2fa/sessions/${phoneHandle}/end`, {}, { json: true })).statusCode, 404, 'ending it again: not found')

  const tabletHandle = handles(left, UA.edge)
  const form = await laptop.post(`/2fa/sessions/${tabletHandle}/end`, {})
  t.equal(form.statusCode, 303, 'end one (form): back to settings')
  t.equal(form.headers.location, '/2fa/settings')
  t.equal(await whoIs(tablet), null, 'the tablet is signed out')
  const htmx = await laptop.post(`/2fa/sessions/${tabletHandle}/end`, {}, { htmx: true })
  t.equal(htmx.statusCode, 404, 'htmx: an ended one is not found')
})

t.test('POST /2fa/sessions/end-others ends every session of the account but this one', async (t) => {
  const here = await signedIn(h, 'alice', UA.firefox)
  const others = [await signedIn(h, 'alice', UA.safari), await signedIn(h, 'alice', UA.chrome)]
  const before = (await listOf(here)).length
  t.ok(before >= 3, `alice has ${before} sessions`)
  const bobs = await signedIn(h, 'bob', UA.chrome)

  const json = await here.post('/2fa/sessions/end-others', {}, { json: true })
  t.equal(json.statusCode, 200, 'end-others (JSON)')
  const answer = answerOf(json) as { sessions: Listed[], ended: number }
  t.equal(answer.ended, before - 1, 'says how many ended')
  t.equal(answer.sessions.length, 1, 'this one is left')
  t.equal(answer.sessions[0]!.current, true)
  for (const other of others) t.equal(await whoIs(other), null, 'each other session is signed out')
  t.equal(await whoIs(here), 'alice', 'this one stays')
  t.equal(await whoIs(bobs), 'bob', 'another account is untouched')
  t.equal(await storedSessionsOf(h, 'alice'), 1)
  t.ok(h.events.some((e) => e.type === 'sessions.ended' && e.userId === 'alice' && e.details.reason === 'user' && e.details.count === before - 1), 'audited with the count')

  const again = await signedIn(h, 'alice', UA.safari)
  const form = await here.post('/2fa/sessions/end-others', {})
  t.equal(form.statusCode, 303, 'end-others (form): back to settings')
  t.equal(form.headers.location, '/2fa/settings')
  t.equal(await whoIs(again), null)
  t.equal(await whoIs(here), 'alice')
  const page = await here.get('/2fa/sessions')
  t.match(page.body, /This is your only signed-in session\./, 'the page says this is the only one')
})

t.test('a signed-out session leaves the list, and a copy of its cookie is signed out too', async (t) => {
  const here = await signedIn(h, 'bob', UA.firefox)
  const leaving = await signedIn(h, 'bob', UA.safari)
  const copy = new Browser(h.app, UA.safari)
  for (const [name, value] of leaving.cookies) copy.cookies.set(name, value)
  const handle = (await listOf(leaving)).find((s) => s.current)!.id
  t.ok((await listOf(here)).some((s) => s.id === handle), 'listed while signed in')
  t.equal((await leaving.post('/logout', {}, { json: true })).statusCode, 200, 'signs out')
  t.notOk((await listOf(here)).some((s) => s.id === handle), 'gone from the list')
  t.equal(await whoIs(copy), null, 'the old cookie (a copy kept from before) is signed out')
  t.equal((await here.post(`/2fa/sessions/${handle}/end`, {}, { json: true })).statusCode, 404, 'and there is nothing to end')
})

t.test('a request in flight when its session is ended does not bring the session back', async (t) => {
  // The store holds one read until told: that request has loaded its session, the session is
  // then ended (by its owner elsewhere, or an admin), and the request goes on, noting "last
  // seen", which writes the session.
  class PausingStore extends PgSessionStore {
    pause: { loaded: () => void, release: Promise<void> } | null = null
    override get (sessionId: string, callback: Parameters<PgSessionStore['get']>[1]): void {
      const pause = this.pause
      if (pause === null) { super.get(sessionId, callback); return }
      this.pause = null
      super.get(sessionId, (error, value) => {
        pause.loaded()
        void pause.release.then(() => callback(error, value))
      })
    }
  }
  const store = new PausingStore(database.db, h.clock.now)
  const paused = await createHost(t, { database, users: USERS, clock: h.clock, twoFactor: { session: { secret: HOST_SESSION_SECRET, secure: false, store } } })

  const cases: Array<[string, string, (here: Client, handle: string) => Promise<number>]> = [
    ['end-others', 'alice', async (here) => (await here.post('/2fa/sessions/end-others', {}, { json: true })).statusCode],
    ['end one', 'alice', async (here, handle) => (await here.post(`/2fa/sessions/${handle}/end`, {}, { json: true })).statusCode],
    ['an admin reset', 'bob', async () => { await paused.app.twoFactor.reset('bob', { actor: 'admin', reason: 'test' }); return 200 }]
  ]
  for (const [name, id, end] of cases) {
    const here = await signedIn(paused, id, UA.firefox)
    const other = await signedIn(paused, id, UA.chrome)
    const handle = (await listOf(other)).find((s) => s.current)!.id
    h.clock.advance(6 * 60_000) // the other's next request notes "last seen": a write

    let loaded!: () => void
    let release!: () => void
    const isLoaded = new Promise<void>((resolve) => { loaded = resolve })
    store.pause = { loaded: () => loaded(), release: new Promise<void>((resolve) => { release = resolve }) }
    const inFlight = other.get('/', { json: true })
    await isLoaded
    t.equal(await end(here, handle), 200, `${name}: done while a request of the other session is in flight`)
    release()
    await inFlight
    t.equal(await whoIs(other), null, `${name}: the next request of the ended session is signed out`)
    t.equal(await storedSessionsOf(h, id), name === 'an admin reset' ? 0 : 1, `${name}: no ended session came back to the store`)
    await here.post('/logout', {}, { json: true })
  }
})
