// Attack: ride on a session — fix its id before sign-in, keep an old one after, read the
// cookie from script or over plain HTTP, or stay signed in after the factor changed
//.
import t from 'tap'
import { eq } from 'drizzle-orm'
import type { LightMyRequestResponse, RouteOptions } from 'fastify'
import { hashSessionId, PgSessionStore } from '../../plugin/db/session-store.ts'
import { sessions } from '../../plugin/db/schema.ts'
import { Client } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, manualKeyFrom, PASSWORDS, passwordStep, SESSION_SECRET, type Harness } from '../helpers/demo.ts'
import { pendingClient, sessionIdOf, signedInClient } from '../helpers/states.ts'

async function storedSession (h: Harness, sessionId: string) {
  return (await h.database.db.select().from(sessions).where(eq(sessions.sidHash, hashSessionId(sessionId))))[0]
}

/** Sends a request with a given raw cookie value, as an attacker who planted or kept it would. */
async function withCookie (h: Harness, cookie: string, url = '/') {
  return await h.app.inject({ method: 'GET', url, headers: { cookie, accept: 'application/json' } })
}

function setCookieHeader (response: LightMyRequestResponse): string {
  const header = response.headers['set-cookie']
  return (Array.isArray(header) ? header : [header ?? '']).find((c) => c.includes('tf.sid')) ?? ''
}

t.test('sessions', async (t) => {
  const h = await createHarness(t)
  const { manualKey: aliceKey } = await enrol(h, 'alice', PASSWORDS.alice)

  t.test('the session id changes when the pending state starts and when sign-in completes; old ids are gone', async (t) => {
    for (const json of [false, true]) {
      const client = h.client()
      await client.get('/login', { json })
      const anonymous = sessionIdOf(client)
      await client.post('/login', { username: 'alice', password: PASSWORDS.alice }, { json })
      const pending = sessionIdOf(client)
      t.not(pending, anonymous, 'a new id for the pending state')
      await client.get('/2fa/challenge', { json })
      await client.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) }, { json })
      h.clock.advance(30_000)
      const signedIn = sessionIdOf(client)
      t.not(signedIn, pending, 'a new id once signed in')
      t.equal((await client.get('/', { json })).statusCode, 200, 'signed in')
      t.equal(await storedSession(h, anonymous), undefined, 'the anonymous session row is gone')
      t.equal(await storedSession(h, pending), undefined, 'the pending session row is gone')
      t.equal((await storedSession(h, signedIn))?.userId, 'alice', 'the signed-in row names its user')
    }
  })

  t.test('the id changes too when a forced setup finishes', async (t) => {
    const client = h.client()
    await passwordStep(client, 'admin', PASSWORDS.admin)
    const pendingSetup = sessionIdOf(client)
    const manualKey = manualKeyFrom((await client.get('/2fa/setup')).body)
    await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, h.clock.ms) })
    t.equal(sessionIdOf(client), pendingSetup, 'confirming alone does not sign in')
    t.equal((await client.post('/2fa/setup/finish')).headers.location, '/')
    t.not(sessionIdOf(client), pendingSetup, 'a new id once signed in')
    t.equal(await storedSession(h, pendingSetup), undefined, 'the pending-setup row is gone')
    h.clock.advance(30_000)
  })

  t.test('a cookie planted before sign-in is never upgraded', async (t) => {
    // The attacker gets a session from the site and plants its cookie in the victim's browser.
    const attacker = h.client()
    await attacker.get('/login')
    const planted = [...attacker.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const victim = h.client()
    for (const [name, value] of attacker.cookies) victim.cookies.set(name, value)
    victim.csrfToken = attacker.csrfToken

    await victim.post('/login', { username: 'alice', password: PASSWORDS.alice })
    t.equal((await withCookie(h, planted)).statusCode, 303, 'after the password the planted cookie is still anonymous')
    t.equal((await withCookie(h, planted, '/2fa/challenge')).statusCode, 401, 'it does not hold the pending state')
    await victim.get('/2fa/challenge')
    await victim.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) })
    h.clock.advance(30_000)
    t.equal((await victim.get('/')).statusCode, 200, 'the victim is signed in')
    const home = await withCookie(h, planted)
    t.equal(home.statusCode, 303, 'the planted cookie is not')
    t.equal(home.headers.location, '/login')

    // Forged cookies (an unsigned id, a bad signature, a known id re-signed wrongly) are new sessions.
    const known = sessionIdOf(victim)
    for (const forged of [known, `${known}.AAAA`, `${known}.${'x'.repeat(43)}`, encodeURIComponent(`${known}.`), 'tf.sid']) {
      const response = await withCookie(h, `tf.sid=${forged}`)
      t.equal(response.statusCode, 303, `forged cookie ${forged.length} chars: anonymous`)
    }
  })

  t.test('cookie attributes over plain HTTP (the local demo)', async (t) => {
    const client = h.client()
    const response = await client.get('/login')
    const cookie = setCookieHeader(response)
    t.match(cookie, /^tf\.sid=/, 'the plain name')
    t.match(cookie, /; HttpOnly/i, 'HttpOnly')
    t.match(cookie, /; SameSite=Lax/i, 'SameSite=Lax')
    t.match(cookie, /; Path=\//, 'Path=/')
    t.notMatch(cookie, /; Domain=/i, 'no Domain')
  })

  t.test('cookie attributes when served over HTTPS: Secure and __Host-', async (t) => {
    // TLS is terminated in front of this app; a route hook marks each request's socket as
    // encrypted, which is what Fastify reads for `request.protocol`.
    const asTls = (request: { raw: { socket: object } }, _reply: unknown, done: () => void) => {
      Object.defineProperty(request.raw.socket, 'encrypted', { value: true, configurable: true })
      done()
    }
    const secure = await createHarness(t, {
      database: h.database,
      clock: h.clock,
      app: {
        secureCookies: true,
        onRoute: (route: RouteOptions) => { route.onRequest = [asTls as never, ...[route.onRequest ?? []].flat()] }
      }
    })
    const client = secure.client()
    const login = await client.get('/login')
    const cookie = setCookieHeader(login)
    t.match(cookie, /^__Host-tf\.sid=/, 'the __Host- prefix')
    t.match(cookie, /; Secure/i, 'Secure')
    t.match(cookie, /; HttpOnly/i, 'HttpOnly')
    t.match(cookie, /; SameSite=Lax/i, 'SameSite=Lax')
    t.match(cookie, /; Path=\/(;|$)/, '__Host- needs Path=/')
    t.notMatch(cookie, /; Domain=/i, '__Host- forbids Domain')
    t.match(String(login.headers['strict-transport-security']), /max-age=\d+/, 'HSTS over HTTPS')

    await client.post('/login', { username: 'alice', password: PASSWORDS.alice })
    t.equal(client.cookies.has('__Host-tf.sid'), true, 'sign-in works with the secure cookie')
    await client.get('/2fa/challenge')
    await client.post('/2fa/challenge', { code: codeFor(aliceKey, secure.clock.ms) })
    h.clock.advance(30_000)
    t.equal((await client.get('/')).statusCode, 200, 'signed in over HTTPS')

    // Over plain HTTP the secure app never hands out its cookie.
    const plain = await createHarness(t, { database: h.database, clock: h.clock, app: { secureCookies: true } })
    const overHttp = await plain.app.inject({ method: 'GET', url: '/login' })
    t.equal(setCookieHeader(overHttp), '', 'no session cookie over plain HTTP')
    t.notOk(new Client(plain.app).cookies.size)
  })

  t.test('disabling 2FA ends the user’s other sessions, not the one that did it', async (t) => {
    const { manualKey } = await enrol(h, 'bob', PASSWORDS.bob)
    const laptop = await signedInClient(h, 'bob', PASSWORDS.bob, manualKey)
    const phone = await signedInClient(h, 'bob', PASSWORDS.bob, manualKey)
    const halfway = await pendingClient(h, 'bob', PASSWORDS.bob)
    await laptop.get('/2fa/settings')
    const disabled = await laptop.post('/2fa/disable', { password: PASSWORDS.bob }, { json: true })
    t.equal(disabled.statusCode, 200, 'disabled')
    t.equal((await laptop.get('/')).statusCode, 200, 'the laptop stays signed in')
    t.equal((await phone.get('/')).headers.location, '/login', 'the phone is signed out')
    t.equal((await halfway.get('/')).headers.location, '/login', 'a half-done sign-in is dropped too')
  })

  t.test('an admin reset ends all the user’s sessions', async (t) => {
    const { manualKey } = await enrol(h, 'bob', PASSWORDS.bob)
    const a = await signedInClient(h, 'bob', PASSWORDS.bob, manualKey)
    const b = await signedInClient(h, 'bob', PASSWORDS.bob, manualKey)
    const alice = await signedInClient(h, 'alice', PASSWORDS.alice, aliceKey)
    await h.app.twoFactor.reset('bob', { actor: 'admin', reason: 'lost phone' })
    t.equal((await a.get('/')).headers.location, '/login', 'first session ended')
    t.equal((await b.get('/')).headers.location, '/login', 'second session ended')
    t.equal((await alice.get('/')).statusCode, 200, 'other users are untouched')
  })

  t.test('turning a user’s requirement off (which clears their 2FA) ends their sessions', async (t) => {
    const { manualKey } = await enrol(h, 'bob', PASSWORDS.bob)
    const a = await signedInClient(h, 'bob', PASSWORDS.bob, manualKey)
    await h.app.twoFactor.setRequired('bob', true, { actor: 'admin' })
    t.equal((await a.get('/')).statusCode, 200, 'requiring 2FA ends nothing')
    await h.app.twoFactor.setRequired('bob', false, { actor: 'admin' })
    t.equal((await a.get('/')).headers.location, '/login', 'clearing it does')
  })

  t.test('a lockout ends the user’s other sessions', async (t) => {
    const signedIn = await signedInClient(h, 'alice', PASSWORDS.alice, aliceKey)
    const halfway = await pendingClient(h, 'alice', PASSWORDS.alice)
    const guesser = await pendingClient(h, 'alice', PASSWORDS.alice)
    const bob = await signedInClient(h, 'bob', PASSWORDS.bob, (await enrol(h, 'bob', PASSWORDS.bob)).manualKey)
    for (let i = 0; i < 4; i++) t.equal((await guesser.post('/2fa/challenge', { code: '000000' })).statusCode, 422)
    t.equal((await signedIn.get('/')).statusCode, 200, 'failures below the threshold end nothing')
    t.equal((await guesser.post('/2fa/challenge', { code: '000000' })).statusCode, 423, 'the fifth failure locks')
    t.equal((await signedIn.get('/')).headers.location, '/login', 'the signed-in session is ended')
    t.equal((await halfway.get('/')).headers.location, '/login', 'the other pending session is ended')
    t.equal((await bob.get('/')).statusCode, 200, 'other users are untouched')
    await h.app.twoFactor.unlock('alice', { actor: 'test' })
  })

  t.test('logout removes the session from the store', async (t) => {
    const client = await signedInClient(h, 'alice', PASSWORDS.alice, aliceKey)
    const sid = sessionIdOf(client)
    const cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    t.ok(await storedSession(h, sid), 'stored while signed in')
    await client.get('/')
    t.equal((await client.post('/logout')).headers.location, '/login')
    t.equal(await storedSession(h, sid), undefined, 'the row is deleted')
    t.equal((await withCookie(h, cookie)).headers.location, '/login', 'the old cookie is anonymous')
  })

  t.test('the store skips only what regenerate() writes: an untouched, empty session', async (t) => {
    const store = new PgSessionStore(h.database.db)
    const set = async (sid: string, session: Record<string, unknown>) =>
      await new Promise<void>((resolve, reject) => store.set(sid, session, (error) => { if (error) reject(error); else resolve() }))
    const cookie = { expires: new Date(Date.now() + 60_000) }
    await set('fresh-and-empty', { cookie, isModified: () => false })
    t.equal(await storedSession(h, 'fresh-and-empty'), undefined, 'a new empty session needs no row yet')
    await set('holds-state', { cookie, twoFactor: { state: 'pending', userId: 'alice' }, isModified: () => false })
    t.match(await storedSession(h, 'holds-state'), { userId: 'alice' }, 'one holding anything is written')
    await set('holds-state', { cookie, isModified: () => true })
    t.match(await storedSession(h, 'holds-state'), { userId: null, data: { cookie: {} } }, 'one emptied on purpose is written, empty')
    t.notOk((await storedSession(h, 'holds-state'))?.data.twoFactor, 'nothing of the old state is left')
  })

  t.test('a cookie signed with another secret is not accepted', async (t) => {
    const client = await signedInClient(h, 'alice', PASSWORDS.alice, aliceKey)
    const sid = sessionIdOf(client)
    const { createHmac } = await import('node:crypto')
    const resign = (secret: string) => `${sid}.${createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '')}`
    t.equal((await withCookie(h, `tf.sid=${encodeURIComponent(resign(SESSION_SECRET))}`)).statusCode, 200, 'the real signature works (the test signs correctly)')
    t.equal((await withCookie(h, `tf.sid=${encodeURIComponent(resign('another-secret-that-is-long-enough-0123456789'))}`)).statusCode, 303, 'another secret does not')
  })
})
