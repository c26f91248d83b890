// Rule: a trusted browser ("don't ask again") skips only the code at sign-in (never the password, never a step-up); its HttpOnly token works once, a replayed old token revokes it, and trust ends on its fixed date or when the factor changes.
//
// Tested at the HTTP level, as an attacker holding the password (and maybe a copied cookie)
// would try: page (form) and JSON forms of the code prompt and the devices routes. One database
// for the file; each test has its own users (and hosts) on it.
import t from 'tap'
import { eq } from 'drizzle-orm'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import twoFactor, { type AccountsAdapter } from '../../plugin/index.ts'
import { trustedDevices } from '../../plugin/db/schema.ts'
import { answerOf, Client, type RequestOptions } from '../helpers/client.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { codeFor, TestClock } from '../helpers/demo.ts'
import { createHost, HOST_KEYS, HOST_SESSION_SECRET, login, type Host, type HostUser } from '../fixtures/host.ts'
import { manualKeyOf } from './support.ts'

const UA = {
  firefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  safari: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  chrome: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'
}
const DAY = 24 * 60 * 60_000
const TRUST = 'tf.trust'
const TOKEN_COOKIE = /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/

const IDS = ['box', 'next', 'copy', 'copy2', 'expiry', 'stepup', 'off', 'dis', 'rep', 'res1', 'res2', 'list', 'other', 'other2', 'sec', 'race', 'locked']
const USERS: HostUser[] = [{ id: 'admin', password: 'admin-password', role: 'admin' }, ...IDS.map((id) => ({ id, password: `${id}-password` }))]
const passwordOf = (id: string): string => USERS.find((u) => u.id === id)!.password

const database = await createTestDatabase(t)

/** A browser: a client that always sends its own User-Agent. */
class Browser extends Client {
  constructor (app: FastifyInstance, readonly ua: string = UA.firefox) { super(app) }
  override async get (url: string, options: RequestOptions = {}): Promise<LightMyRequestResponse> {
    return await super.get(url, { ...options, headers: { 'user-agent': this.ua, ...options.headers } })
  }

  override async post (url: string, body: Record<string, unknown> = {}, options: RequestOptions = {}): Promise<LightMyRequestResponse> {
    return await super.post(url, body, { ...options, headers: { 'user-agent': this.ua, ...options.headers } })
  }
}

async function host (t: Parameters<typeof createHost>[0], options: Parameters<typeof createHost>[1] = {}): Promise<Host> {
  return await createHost(t, { database, users: USERS, ...options })
}

/** The Set-Cookie line of `name` in this answer, or undefined. */
function setCookie (response: LightMyRequestResponse, name: string): string | undefined {
  const raw = response.headers['set-cookie']
  const lines = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]
  return lines.find((line) => line.startsWith(`${name}=`))
}

/** Signs the (not required) user in with the password and enrols; the clock moves past the confirming step. */
async function enrol (h: Host, id: string, ua = UA.firefox): Promise<{ browser: Browser, key: string }> {
  const browser = new Browser(h.app, ua)
  const start = answerOf(await login(browser, id, passwordOf(id)))
  if (start.state !== 'signed-in') throw new Error(`${id}: ${JSON.stringify(start)}`)
  const key = await manualKeyOf(browser)
  const confirm = await browser.post('/2fa/setup/confirm', { code: codeFor(key, h.clock.ms) }, { json: true })
  if (confirm.statusCode !== 200) throw new Error(`confirm: ${confirm.statusCode} ${confirm.body.slice(0, 200)}`)
  const finish = await browser.post('/2fa/setup/finish', {}, { json: true })
  if (finish.statusCode !== 200) throw new Error(`finish: ${finish.statusCode}`)
  h.clock.advance(30_000)
  return { browser, key }
}

/** The password step; returns the JSON answer's state. */
async function password (browser: Client, id: string, pw = passwordOf(id)): Promise<string> {
  const answer = await login(browser, id, pw)
  return answer.statusCode === 200 ? String(answerOf(answer).state) : `status:${answer.statusCode}`
}

/** Password then code, ticking "don't ask again" when `trust`; returns the challenge answer. The clock moves on a step. */
async function signInWithCode (h: Host, browser: Client, id: string, key: string, options: { trust?: boolean, json?: boolean } = {}): Promise<LightMyRequestResponse> {
  const state = await password(browser, id)
  if (state !== 'pending') throw new Error(`${id}: expected the code prompt, got ${state}`)
  const json = options.json === true
  const body: Record<string, unknown> = { code: codeFor(key, h.clock.ms) }
  if (options.trust === true) body.trustDevice = json ? true : 'true'
  const answer = await browser.post('/2fa/challenge', body, { json })
  if (answer.statusCode !== (json ? 200 : 303)) throw new Error(`challenge: ${answer.statusCode} ${answer.body.slice(0, 200)}`)
  h.clock.advance(30_000)
  // As a browser follows the redirect: the next page carries the signed-in session's CSRF token.
  if (!json) await browser.get('/', { json: true })
  return answer
}

/** A new browser of `id` trusted through the code prompt. */
async function trustedBrowser (h: Host, id: string, key: string, ua = UA.firefox, json = false): Promise<Browser> {
  const browser = new Browser(h.app, ua)
  await signInWithCode(h, browser, id, key, { trust: true, json })
  if (browser.cookies.get(TRUST) === undefined) throw new Error('no trust cookie')
  return browser
}

async function whoIs (client: Client): Promise<string | null> {
  const home = await client.get('/', { json: true })
  return home.statusCode === 200 ? (JSON.parse(home.body) as { userId: string | null }).userId : null
}

async function deviceRows (h: Host, id: string) {
  return await h.database.db.select().from(trustedDevices).where(eq(trustedDevices.userId, id))
}

/** A browser holding only `from`'s trust cookie (copied off the disk, say). */
function copyOfTrust (h: Host, from: Client, ua = UA.chrome): Browser {
  const copy = new Browser(h.app, ua)
  copy.cookies.set(TRUST, from.cookies.get(TRUST)!)
  return copy
}

t.test('the box at the code prompt sets its own HttpOnly cookie (page and JSON); a wrong code or no tick sets none', async (t) => {
  const h = await host(t)
  const { key } = await enrol(h, 'box')

  const page = new Browser(h.app)
  t.equal(await password(page, 'box'), 'pending')
  const prompt = await page.get('/2fa/challenge')
  t.match(prompt.body, /<input id="tf-trust-device" type="checkbox" name="trustDevice" value="true">/, 'the prompt has the box')
  t.match(prompt.body, /Don’t ask again on this browser for 30 days/, 'for the configured days')

  const wrong = await page.post('/2fa/challenge', { code: '000000', trustDevice: 'true' })
  t.equal(wrong.statusCode, 422, 'a wrong code with the box ticked')
  t.equal(setCookie(wrong, TRUST), undefined, 'sets no trust cookie')
  t.equal((await deviceRows(h, 'box')).length, 0, 'and trusts nothing')

  const given = h.clock.ms
  const done = await page.post('/2fa/challenge', { code: codeFor(key, h.clock.ms), trustDevice: 'true' })
  h.clock.advance(30_000)
  t.equal(done.statusCode, 303, 'the right code (form): signed in')
  const line = setCookie(done, TRUST)
  t.ok(line, 'a trust cookie is set')
  t.match(line, /; HttpOnly/i, 'HttpOnly')
  t.match(line, /; SameSite=Lax/i, 'SameSite=Lax')
  t.match(line, /; Path=\/(;|$)/, 'Path=/')
  t.notMatch(line, /; Domain=/i, 'no Domain')
  t.notMatch(line, /; Secure/i, 'not Secure on a host without secure cookies')
  t.match(line, new RegExp(`; Expires=${new Date(given + 30 * DAY).toUTCString()}`), 'it lasts 30 days from now, as the record does')
  const value = page.cookies.get(TRUST)!
  t.match(value, TOKEN_COOKIE, 'an id and a 256-bit token')
  t.equal(Buffer.from(value.split('.')[1]!, 'base64url').length, 32, '32 random bytes')
  t.not(value, page.sessionCookie(), 'a cookie of its own, not the session’s')
  t.ok(page.sessionCookie(), 'the session cookie is there too')
  t.equal(await whoIs(page), 'box')

  const rows = await deviceRows(h, 'box')
  t.equal(rows.length, 1, 'one trusted browser stored')
  t.equal(rows[0]!.id, value.split('.')[0], 'under the cookie’s id')
  t.notOk(JSON.stringify(rows).includes(value.split('.')[1]!), 'the token itself is stored nowhere (only its digest)')
  t.equal(rows[0]!.label, 'Firefox · Linux', 'labelled from the user agent')
  t.equal(rows[0]!.expiresAt.getTime(), given + 30 * DAY)
  const trusted = h.events.find((e) => e.type === 'device.trusted' && e.userId === 'box')
  t.ok(trusted, 'device.trusted is audited')
  t.equal(trusted?.details.device, rows[0]!.id)
  t.notOk(JSON.stringify(h.events).includes(value.split('.')[1]!), 'no event holds the token')

  const json = new Browser(h.app, UA.safari)
  const answer = await signInWithCode(h, json, 'box', key, { trust: true, json: true })
  t.match(answerOf(answer), { state: 'signed-in' }, 'JSON: signed in')
  t.match(setCookie(answer, TRUST), /; HttpOnly/i, 'JSON: the same HttpOnly cookie')
  t.match(json.cookies.get(TRUST), TOKEN_COOKIE)
  t.not(json.cookies.get(TRUST), value, 'each browser its own token')
  t.equal((await deviceRows(h, 'box')).length, 2)

  for (const [name, body] of [['no box', {}], ['box unticked ("false")', { trustDevice: 'false' }]] as const) {
    const plain = new Browser(h.app)
    await password(plain, 'box')
    const signed = await plain.post('/2fa/challenge', { code: codeFor(key, h.clock.ms), ...body })
    h.clock.advance(30_000)
    t.equal(signed.statusCode, 303, `${name}: signed in`)
    t.equal(setCookie(signed, TRUST), undefined, `${name}: no trust cookie`)
  }
  t.equal((await deviceRows(h, 'box')).length, 2, 'nothing more trusted')
})

t.test('with secure cookies the trust cookie is __Host-tf.trust, Secure', async (t) => {
  // The fixture serves plain HTTP; this host marks each request as arriving over TLS.
  const clock = new TestClock()
  const users = new Map(USERS.map((u) => [u.id, u]))
  const app = Fastify()
  app.addHook('onRequest', (request, _reply, done) => {
    Object.defineProperty(request.raw.socket, 'encrypted', { value: true, configurable: true })
    done()
  })
  const accounts: AccountsAdapter<HostUser> = {
    findUser: (id) => users.get(id), userId: (u) => u.id, label: (u) => u.id, verifyPassword: (id, pw) => users.get(id)?.password === pw
  }
  await app.register(twoFactor, { database: database.db, accounts, keys: HOST_KEYS, session: { secret: HOST_SESSION_SECRET, secure: true }, rateLimit: false, clock: clock.now })
  app.get('/login', { config: { twoFactor: false } }, async (_request, reply) => ({ csrfToken: reply.generateCsrf() }))
  app.post('/login', { config: { twoFactor: false }, preHandler: app.csrfProtection }, async (request, reply) => {
    const { username = '', password } = request.body as { username?: string, password?: string }
    const user = users.get(username)
    if (user === undefined || user.password !== password) return await reply.code(401).send({ error: 'invalid_credentials' })
    return { ...await request.twoFactor.startLogin(username), csrfToken: reply.generateCsrf() }
  })
  app.get('/', async (request) => ({ userId: request.twoFactor.userId }))
  t.teardown(() => app.close())
  await app.ready()
  await app.twoFactor.onUserCreated('sec')

  const browser = new Browser(app)
  await login(browser, 'sec', passwordOf('sec'))
  const key = await manualKeyOf(browser)
  t.equal((await browser.post('/2fa/setup/confirm', { code: codeFor(key, clock.ms) }, { json: true })).statusCode, 200)
  await browser.post('/2fa/setup/finish', {}, { json: true })
  clock.advance(30_000)

  const other = new Browser(app)
  t.equal(answerOf(await login(other, 'sec', passwordOf('sec'))).state, 'pending')
  const done = await other.post('/2fa/challenge', { code: codeFor(key, clock.ms), trustDevice: 'true' }, { json: true })
  clock.advance(30_000)
  t.equal(done.statusCode, 200)
  const line = setCookie(done, '__Host-tf.trust')
  t.ok(line, 'the __Host- prefix')
  t.match(line, /; Secure/i, 'Secure')
  t.match(line, /; HttpOnly/i, 'HttpOnly')
  t.match(line, /; Path=\/(;|$)/, 'Path=/')
  t.notMatch(line, /; Domain=/i, 'no Domain')
  t.equal(setCookie(done, TRUST), undefined, 'no unprefixed cookie')

  const again = new Browser(app)
  again.cookies.set('__Host-tf.trust', other.cookies.get('__Host-tf.trust')!)
  t.equal(answerOf(await login(again, 'sec', passwordOf('sec'))).state, 'signed-in', 'the secure cookie skips the code at the next sign-in')
})

t.test('the next sign-in in a trusted browser asks only the password; another browser still gets the prompt; the token changes at each use', async (t) => {
  const h = await host(t)
  const { key } = await enrol(h, 'next')
  const trusted = await trustedBrowser(h, 'next', key)
  const first = trusted.cookies.get(TRUST)!
  const firstExpiry = (await deviceRows(h, 'next'))[0]!.expiresAt

  t.equal((await trusted.post('/logout', {}, { json: true })).statusCode, 200, 'signed out')
  t.equal(await whoIs(trusted), null)
  t.equal(trusted.cookies.get(TRUST), first, 'trust survives sign-out')

  const refused = await login(trusted, 'next', 'not-the-password')
  t.equal(refused.statusCode, 401, 'the trust never stands in for the password')
  t.equal(setCookie(refused, TRUST), undefined, 'and a wrong password does not touch the token')
  t.equal(await whoIs(trusted), null)

  const seen = new Set([first])
  for (let round = 1; round <= 3; round++) {
    const before = trusted.cookies.get(TRUST)!
    const answer = await login(trusted, 'next', passwordOf('next'))
    t.match(answerOf(answer), { state: 'signed-in', next: '/' }, `sign-in ${round}: the password alone signs in`)
    t.equal(await whoIs(trusted), 'next', `sign-in ${round}: signed in`)
    const after = trusted.cookies.get(TRUST)!
    t.not(after, before, `sign-in ${round}: the token is replaced`)
    t.notOk(seen.has(after), `sign-in ${round}: by a new one`)
    seen.add(after)
    t.equal(after.split('.')[0], first.split('.')[0], `sign-in ${round}: same browser id`)
    t.match(setCookie(answer, TRUST), new RegExp(`; Expires=${firstExpiry.toUTCString()}`), `sign-in ${round}: the new cookie keeps the first expiry`)
    t.match(setCookie(answer, TRUST), /; HttpOnly/i)
    const page = await trusted.get('/2fa/challenge')
    t.equal(page.statusCode, 303, `sign-in ${round}: no code prompt to show`)
    await trusted.post('/logout', {}, { json: true })
  }
  t.equal(h.events.filter((e) => e.type === 'device.used' && e.userId === 'next').length, 3, 'each use is audited (device.used)')
  t.equal((await deviceRows(h, 'next'))[0]!.expiresAt.getTime(), firstExpiry.getTime(), 'use never extends the trust')

  const elsewhere = new Browser(h.app, UA.safari)
  t.equal(await password(elsewhere, 'next'), 'pending', 'another browser gets the code prompt')
  t.equal(await whoIs(elsewhere), null)
  const prompt = await elsewhere.get('/2fa/challenge', { json: true })
  t.match(answerOf(prompt), { state: 'pending' })

  // Someone else's trusted browser does not skip the code for this account.
  const { key: otherKey } = await enrol(h, 'other')
  const othersTrust = await trustedBrowser(h, 'other', otherKey)
  const borrowed = copyOfTrust(h, othersTrust)
  t.equal(await password(borrowed, 'next'), 'pending', 'another account’s trust cookie: the code is asked')
  t.equal(await whoIs(borrowed), null)
  await othersTrust.post('/logout', {}, { json: true })
  t.equal(await password(othersTrust, 'other'), 'signed-in', 'and that cookie still works for its own account')
})

t.test('a copied cookie works at most once: the old token used again revokes that browser', async (t) => {
  const h = await host(t)
  await t.test('the owner signs in first, then the copy is tried', async (t) => {
    const { key } = await enrol(h, 'copy')
    const owner = await trustedBrowser(h, 'copy', key)
    const thief = copyOfTrust(h, owner)
    const [deviceId] = owner.cookies.get(TRUST)!.split('.')

    await owner.post('/logout', {}, { json: true })
    t.equal(await password(owner, 'copy'), 'signed-in', 'the owner skips the code (token replaced)')

    const replay = await login(thief, 'copy', passwordOf('copy'))
    t.match(answerOf(replay), { state: 'pending', next: '/2fa/challenge' }, 'the copied (old) token, with the password: the code is asked')
    t.match(setCookie(replay, TRUST), /^tf\.trust=;/, 'and the cookie is cleared')
    t.equal(thief.cookies.get(TRUST), undefined)
    t.equal(await whoIs(thief), null)
    const revoked = h.events.find((e) => e.type === 'device.revoked' && e.userId === 'copy')
    t.ok(revoked, 'device.revoked is audited')
    t.match(revoked?.details, { device: deviceId, reason: 'reused' })
    t.equal((await deviceRows(h, 'copy')).length, 0, 'the browser is no longer trusted')

    await owner.post('/logout', {}, { json: true })
    t.equal(await password(owner, 'copy'), 'pending', 'the owner’s current token is worthless too: the code is asked')
    t.equal((await owner.get('/2fa/devices', { json: true })).statusCode, 401, '(the owner is at the prompt: no list for it)')
    t.equal((await owner.post('/2fa/challenge', { code: codeFor(key, h.clock.ms) }, { json: true })).statusCode, 200, 'the code signs the owner in')
    h.clock.advance(30_000)
  })

  await t.test('the copy is used first: it works once, then the owner’s use revokes both', async (t) => {
    const { key } = await enrol(h, 'copy2')
    const owner = await trustedBrowser(h, 'copy2', key)
    const thief = copyOfTrust(h, owner)

    t.equal(await password(thief, 'copy2'), 'signed-in', 'a copy works once (who used it first can’t be told yet)')
    const thiefsNew = thief.cookies.get(TRUST)!
    t.not(thiefsNew, owner.cookies.get(TRUST))

    await owner.post('/logout', {}, { json: true })
    t.equal(await password(owner, 'copy2'), 'pending', 'the owner’s token was replaced: the code is asked…')
    t.ok(h.events.some((e) => e.type === 'device.revoked' && e.userId === 'copy2' && e.details.reason === 'reused'), '…and the browser is revoked (audited)')

    await thief.post('/logout', {}, { json: true })
    t.equal(await password(thief, 'copy2'), 'pending', 'the copy’s new token no longer works either')
    t.equal((await deviceRows(h, 'copy2')).length, 0)
    t.equal(await whoIs(thief), null)
  })
})

t.test('the trust lasts trustedDevice.days from when it was given; use does not extend it', async (t) => {
  // Four hours of trust left in real time: the client keeps the cookie, and sessions (stored
  // against the test clock) stay alive as the clock is moved by hours.
  const clock = new TestClock(Date.now() - 20 * 60 * 60_000)
  const h = await host(t, { clock, twoFactor: { trustedDevice: { days: 1 } } })
  const { key } = await enrol(h, 'expiry')
  const browser = new Browser(h.app)
  await password(browser, 'expiry')
  t.match((await browser.get('/2fa/challenge')).body, /for 1 day/, 'the box names the configured days')
  const given = h.clock.ms
  const done = await browser.post('/2fa/challenge', { code: codeFor(key, h.clock.ms), trustDevice: 'true' })
  t.match(setCookie(done, TRUST), new RegExp(`; Expires=${new Date(given + DAY).toUTCString()}`), 'the cookie lasts one day')
  await browser.post('/logout', {}, { json: true })

  h.clock.advance(DAY - 60 * 60_000)
  const late = await login(browser, 'expiry', passwordOf('expiry'))
  t.equal(answerOf(late).state, 'signed-in', '23 hours on: still trusted')
  t.match(setCookie(late, TRUST), new RegExp(`; Expires=${new Date(given + DAY).toUTCString()}`), 'the replaced cookie ends when the first one did')
  const listed = answerOf(await browser.get('/2fa/devices', { json: true })) as { devices: Array<{ expiresAt: string, lastUsedAt: string }> }
  t.equal(listed.devices[0]?.expiresAt, new Date(given + DAY).toISOString(), 'the list shows the fixed end')
  t.equal(listed.devices[0]?.lastUsedAt, new Date(h.clock.ms).toISOString(), 'and the last use')
  await browser.post('/logout', {}, { json: true })

  h.clock.advance(60 * 60_000 + 60_000)
  t.ok(browser.cookies.has(TRUST), '(the cookie is still sent)')
  t.equal(await password(browser, 'expiry'), 'pending', 'a day and a minute on: the code is asked')
  t.equal(h.events.filter((e) => e.type === 'device.used' && e.userId === 'expiry').length, 1, 'the expired token was not used')
  const fresh = await browser.post('/2fa/challenge', { code: codeFor(key, h.clock.ms) }, { json: true })
  t.equal(fresh.statusCode, 200, 'the code signs in')
  t.same((answerOf(await browser.get('/2fa/devices', { json: true })) as { devices: unknown[] }).devices, [], 'no trusted browser is listed any more')
})

t.test('a trusted browser never satisfies step-up', async (t) => {
  const h = await host(t)
  const { key } = await enrol(h, 'stepup')
  const fresh = await trustedBrowser(h, 'stepup', key)
  t.equal((await fresh.get('/export', { json: true })).statusCode, 200, 'just after a code: a step-up route opens')
  await fresh.post('/logout', {}, { json: true })

  t.equal(await password(fresh, 'stepup'), 'signed-in', 'the next sign-in skips the code')
  const json = await fresh.get('/export', { json: true })
  t.equal(json.statusCode, 401, 'GET step-up route (JSON): refused')
  t.match(answerOf(json), { error: 'step_up_required', next: '/2fa/step-up' })
  const page = await fresh.get('/export')
  t.equal(page.statusCode, 303, 'GET step-up route (page): sent to the prompt')
  t.equal(page.headers.location, '/2fa/step-up?returnTo=%2Fexport')
  const post = await fresh.post('/transfer', {}, { json: true })
  t.equal(post.statusCode, 401, 'POST step-up route: refused')
  t.match(answerOf(post), { error: 'step_up_required' })
  const prompt = await fresh.get('/2fa/step-up?returnTo=%2Fexport')
  t.equal(prompt.statusCode, 200)
  t.notMatch(prompt.body, /name="trustDevice"/, 'the step-up prompt offers no "don’t ask again"')

  const stepped = await fresh.post('/2fa/step-up', { code: codeFor(key, h.clock.ms), returnTo: '/export', trustDevice: 'true' }, { json: true })
  t.equal(stepped.statusCode, 200, 'a code at step-up')
  t.equal(setCookie(stepped, TRUST), undefined, 'step-up gives no trust')
  t.equal((await fresh.get('/export', { json: true })).statusCode, 200, 'then the route opens')
})

t.test('trustedDevice: false hides the box and ignores the cookie', async (t) => {
  const a = await host(t)
  const b = await host(t, { clock: a.clock, twoFactor: { trustedDevice: false } })
  const { key } = await enrol(a, 'off')
  const trustedOnA = await trustedBrowser(a, 'off', key)
  const cookie = trustedOnA.cookies.get(TRUST)!

  const onB = new Browser(b.app)
  onB.cookies.set(TRUST, cookie)
  t.equal(await password(onB, 'off'), 'pending', 'the cookie skips nothing')
  const page = await onB.get('/2fa/challenge')
  t.notMatch(page.body, /trustDevice|Don’t ask again/, 'no box on the prompt')
  const form = await onB.post('/2fa/challenge', { code: codeFor(key, b.clock.ms), trustDevice: 'true' })
  b.clock.advance(30_000)
  t.equal(form.statusCode, 303, 'the code signs in')
  t.equal(setCookie(form, TRUST), undefined, 'a posted trustDevice (form) is ignored')
  const json = new Browser(b.app)
  await password(json, 'off')
  const answer = await json.post('/2fa/challenge', { code: codeFor(key, b.clock.ms), trustDevice: true }, { json: true })
  b.clock.advance(30_000)
  t.equal(answer.statusCode, 200)
  t.equal(setCookie(answer, TRUST), undefined, 'a posted trustDevice (JSON) is ignored')
  t.equal((await deviceRows(a, 'off')).length, 1, 'nothing new trusted')
  t.notOk(b.events.some((e) => e.type === 'device.used'), 'the cookie was not used')

  const back = new Browser(a.app)
  back.cookies.set(TRUST, cookie)
  t.equal(await password(back, 'off'), 'signed-in', 'the token is untouched: it still works where trust is on')
})

t.test('turning 2FA off, replacing the authenticator and an admin reset forget every trusted browser', async (t) => {
  const h = await host(t)

  await t.test('turning off', async (t) => {
    const { key } = await enrol(h, 'dis')
    const one = await trustedBrowser(h, 'dis', key)
    const two = await trustedBrowser(h, 'dis', key, UA.safari)
    t.equal((await deviceRows(h, 'dis')).length, 2)
    const off = await one.post('/2fa/disable', { password: passwordOf('dis') }, { json: true })
    t.equal(off.statusCode, 200)
    t.equal((await deviceRows(h, 'dis')).length, 0, 'no trusted browser left')
    t.ok(h.events.some((e) => e.type === 'device.revoked' && e.userId === 'dis'), 'device.revoked is audited')
    t.same((answerOf(await one.get('/2fa/devices', { json: true })) as { devices: unknown[] }).devices, [])
    const { key: newKey } = await enrol(h, 'dis')
    t.equal(await password(two, 'dis'), 'pending', 'after enrolling again, the once-trusted browser is asked for a code')
    t.equal((await two.post('/2fa/challenge', { code: codeFor(newKey, h.clock.ms) }, { json: true })).statusCode, 200)
    h.clock.advance(30_000)
  })

  await t.test('replacing the authenticator', async (t) => {
    const { key } = await enrol(h, 'rep')
    const one = await trustedBrowser(h, 'rep', key)
    const two = await trustedBrowser(h, 'rep', key, UA.safari)
    const newKey = await manualKeyOf(one)
    t.not(newKey, key)
    const confirm = await one.post('/2fa/setup/confirm', { code: codeFor(newKey, h.clock.ms), password: passwordOf('rep') }, { json: true })
    t.equal(confirm.statusCode, 200, 'replaced')
    await one.post('/2fa/setup/finish', {}, { json: true })
    h.clock.advance(30_000)
    t.equal((await deviceRows(h, 'rep')).length, 0, 'no trusted browser left')
    t.ok(h.events.some((e) => e.type === 'device.revoked' && e.userId === 'rep'), 'device.revoked is audited')
    t.equal(await password(two, 'rep'), 'pending', 'the once-trusted browser is asked for a code')
    await one.post('/logout', {}, { json: true })
    t.equal(await password(one, 'rep'), 'pending', 'so is the browser that replaced it')
  })

  await t.test('an admin reset (fastify.twoFactor.reset)', async (t) => {
    const { key } = await enrol(h, 'res1')
    const one = await trustedBrowser(h, 'res1', key)
    await h.app.twoFactor.reset('res1', { actor: 'admin', reason: 'lost phone' })
    t.equal((await deviceRows(h, 'res1')).length, 0, 'no trusted browser left')
    t.ok(h.events.some((e) => e.type === 'device.revoked' && e.userId === 'res1'), 'device.revoked is audited')
    const { key: newKey } = await enrol(h, 'res1')
    t.equal(await password(one, 'res1'), 'pending', 'after enrolling again, the once-trusted browser is asked for a code')
    t.ok(newKey)
  })

  await t.test('an admin reset (the admin panel)', async (t) => {
    const admin = new Browser(h.app)
    t.equal(await password(admin, 'admin'), 'pending-setup', 'the admin is required to enrol')
    const adminKey = await manualKeyOf(admin)
    t.equal((await admin.post('/2fa/setup/confirm', { code: codeFor(adminKey, h.clock.ms) }, { json: true })).statusCode, 200)
    t.equal((await admin.post('/2fa/setup/finish', {}, { json: true })).statusCode, 200)
    h.clock.advance(30_000)

    const { key } = await enrol(h, 'res2')
    const one = await trustedBrowser(h, 'res2', key)
    const reset = await admin.post('/2fa/admin/users/res2/reset', { reason: 'lost phone' }, { json: true })
    t.equal(reset.statusCode, 200, 'reset from the panel')
    t.equal((await deviceRows(h, 'res2')).length, 0, 'no trusted browser left')
    await enrol(h, 'res2')
    t.equal(await password(one, 'res2'), 'pending', 'the once-trusted browser is asked for a code')

    // Nor does a trusted browser open the admin panel: admin mode wants a code proven in the session.
    const trustedAdmin = await trustedBrowser(h, 'admin', adminKey)
    await trustedAdmin.post('/logout', {}, { json: true })
    t.equal(await password(trustedAdmin, 'admin'), 'signed-in', 'the admin’s trusted browser skips the code at sign-in')
    const panel = await trustedAdmin.get('/2fa/admin/users', { json: true })
    t.equal(panel.statusCode, 401, 'but the panel asks for a code')
    t.match(answerOf(panel), { error: 'step_up_required' })
    const change = await trustedAdmin.post('/2fa/admin/users/res2/reset', { reason: 'stolen cookie' }, { json: true })
    t.equal(change.statusCode, 401, 'and so does a change')
    t.match(answerOf(change), { error: 'step_up_required' })
  })
})

t.test('GET /2fa/devices lists the browsers (no token, no digest); forget one and forget all need the CSRF token and the owner', async (t) => {
  const h = await host(t)
  const { browser: manager, key } = await enrol(h, 'list')
  const firefox = await trustedBrowser(h, 'list', key, UA.firefox)
  const safari = await trustedBrowser(h, 'list', key, UA.safari, true)
  const { key: otherKey } = await enrol(h, 'other2')
  const othersBrowser = await trustedBrowser(h, 'other2', otherKey)
  const othersId = othersBrowser.cookies.get(TRUST)!.split('.')[0]!

  const listed = await manager.get('/2fa/devices', { json: true })
  t.equal(listed.statusCode, 200)
  t.match(String(listed.headers['cache-control']), /no-store/)
  const { devices } = answerOf(listed) as { devices: Array<Record<string, unknown>> }
  t.equal(devices.length, 2, 'both trusted browsers, and only this account’s')
  for (const device of devices) t.same(Object.keys(device).sort(), ['createdAt', 'expiresAt', 'id', 'label', 'lastUsedAt'], 'id, label and dates only')
  t.same(devices.map((d) => d.label).sort(), ['Firefox · Linux', 'Safari · iOS'], 'labels from the user agents')
  const rows = await deviceRows(h, 'list')
  const secrets = [firefox, safari].map((b) => b.cookies.get(TRUST)!.split('.')[1]!).concat(rows.flatMap((r) => [r.digest, r.previousDigest ?? 'none']))
  const page = await manager.get('/2fa/devices')
  t.equal(page.statusCode, 200)
  t.match(page.body, /Firefox · Linux/)
  t.match(page.body, /Safari · iOS/)
  for (const text of [listed.body, page.body, (await manager.get('/2fa/settings')).body]) {
    for (const secret of secrets) t.notOk(text.includes(secret), 'no token or digest in the answer')
  }

  const atPrompt = new Browser(h.app)
  await password(atPrompt, 'list')
  const halfway = await atPrompt.get('/2fa/devices', { json: true })
  t.equal(halfway.statusCode, 401, 'a session at the code prompt gets no list')
  t.notOk(halfway.body.includes('Firefox'))
  t.equal((await atPrompt.post('/2fa/devices/forget-all', {}, { json: true })).statusCode, 401, 'nor forgets anything')
  t.equal((await new Browser(h.app).get('/2fa/devices', { json: true })).statusCode, 401, 'nor does an anonymous one')

  const firefoxId = String(devices.find((d) => d.label === 'Firefox · Linux')!.id)
  for (const [name, options] of [['JSON', { json: true, noCsrf: true }], ['form', { noCsrf: true }]] as const) {
    t.equal((await manager.post(`/2fa/devices/${firefoxId}/forget`, {}, options)).statusCode, 403, `forget without the CSRF token (${name}): refused`)
    t.equal((await manager.post('/2fa/devices/forget-all', {}, options)).statusCode, 403, `forget-all without the CSRF token (${name}): refused`)
  }
  t.equal((await deviceRows(h, 'list')).length, 2, 'nothing forgotten')

  const foreign = await manager.post(`/2fa/devices/${othersId}/forget`, {}, { json: true })
  t.equal(foreign.statusCode, 404, 'another account’s browser: not found')
  t.equal((await manager.post(`/2fa/devices/${othersId}/forget`, {})).statusCode, 404, '(form too)')
  t.equal((await deviceRows(h, 'other2')).length, 1, 'and still trusted')
  await othersBrowser.post('/logout', {}, { json: true })
  t.equal(await password(othersBrowser, 'other2'), 'signed-in', 'its owner still skips the code')

  const forgot = await manager.post(`/2fa/devices/${firefoxId}/forget`, {}, { json: true })
  t.equal(forgot.statusCode, 200, 'forget one (JSON)')
  t.same((answerOf(forgot) as { devices: Array<{ label: string }> }).devices.map((d) => d.label), ['Safari · iOS'], 'the other is still listed')
  t.ok(h.events.some((e) => e.type === 'device.revoked' && e.userId === 'list' && e.details.device === firefoxId && e.details.reason === 'forgotten'), 'device.revoked is audited')
  t.equal((await manager.post(`/2fa/devices/${firefoxId}/forget`, {}, { json: true })).statusCode, 404, 'forgetting it again: not found')
  await firefox.post('/logout', {}, { json: true })
  t.equal(await password(firefox, 'list'), 'pending', 'the forgotten browser is asked for a code')
  await safari.post('/logout', {}, { json: true })
  t.equal(await password(safari, 'list'), 'signed-in', 'the other still skips it')

  // A fresh trust for the form forms below.
  const chrome = await trustedBrowser(h, 'list', key, UA.chrome)
  const chromeId = chrome.cookies.get(TRUST)!.split('.')[0]!
  const formForget = await manager.post(`/2fa/devices/${chromeId}/forget`, {})
  t.equal(formForget.statusCode, 303, 'forget one (form): back to settings')
  t.equal(formForget.headers.location, '/2fa/settings')
  t.equal((await deviceRows(h, 'list')).length, 1)

  const all = await manager.post('/2fa/devices/forget-all', {}, { json: true })
  t.equal(all.statusCode, 200, 'forget all (JSON)')
  t.same((answerOf(all) as { devices: unknown[] }).devices, [], 'nothing listed')
  t.ok(h.events.some((e) => e.type === 'device.revoked' && e.userId === 'list' && e.details.count === 1), 'audited with the count')
  await safari.post('/logout', {}, { json: true })
  t.equal(await password(safari, 'list'), 'pending', 'every browser is asked for a code')
  t.equal((await deviceRows(h, 'other2')).length, 1, 'another account’s browser is untouched')

  await trustedBrowser(h, 'list', key)
  const formAll = await manager.post('/2fa/devices/forget-all', {})
  t.equal(formAll.statusCode, 303, 'forget all (form): back to settings')
  t.equal((await deviceRows(h, 'list')).length, 0)
})

t.test('two uses of one token at the same moment: one signs in, and the reuse revokes the browser', async (t) => {
  const h = await host(t)
  const { key } = await enrol(h, 'race')
  for (let round = 0; round < 4; round++) {
    const owner = await trustedBrowser(h, 'race', key)
    const copies = [copyOfTrust(h, owner), copyOfTrust(h, owner)]
    for (const copy of copies) await copy.get('/login', { json: true })
    const states = await Promise.all(copies.map(async (copy) => answerOf(await copy.post('/login', { username: 'race', password: passwordOf('race') }, { json: true })).state))
    t.equal(states.filter((s) => s === 'signed-in').length, 1, `round ${round + 1}: exactly one of the concurrent uses signs in (${states.join(', ')})`)
    t.equal((await deviceRows(h, 'race')).length, 0, `round ${round + 1}: the reuse revoked the browser`)
    t.ok(h.events.some((e) => e.type === 'device.revoked' && e.userId === 'race' && e.details.reason === 'reused'), `round ${round + 1}: audited`)
    h.events.length = 0
  }
})

t.test('a locked account is locked for a trusted browser too; its trust is good again after the lockout', async (t) => {
  const h = await host(t)
  const { key } = await enrol(h, 'locked')
  const trusted = await trustedBrowser(h, 'locked', key)
  await trusted.post('/logout', {}, { json: true })

  // Someone with the password guesses codes in another browser until the account locks.
  const guesser = new Browser(h.app, UA.chrome)
  let status = 0
  for (let i = 0; i < 20 && status !== 423; i++) {
    if (await password(guesser, 'locked') !== 'pending') continue
    status = (await guesser.post('/2fa/challenge', { code: '000000' }, { json: true })).statusCode
  }
  t.equal(status, 423, 'the account is locked')

  const cookieBefore = trusted.cookies.get(TRUST)
  const usesBefore = h.events.filter((e) => e.type === 'device.used' && e.userId === 'locked').length
  t.equal(await password(trusted, 'locked'), 'pending', 'the trusted browser is not let in: it waits at the prompt')
  t.equal(await whoIs(trusted), null, 'nobody signed in')
  const prompt = await trusted.post('/2fa/challenge', { code: codeFor(key, h.clock.ms) }, { json: true })
  t.equal(prompt.statusCode, 423, 'and the prompt says locked, even to the right code')
  t.equal(trusted.cookies.get(TRUST), cookieBefore, 'the trust token was not spent')
  t.equal(h.events.filter((e) => e.type === 'device.used' && e.userId === 'locked').length, usesBefore, 'no use of the browser while locked')

  h.clock.advance(60 * 60_000)
  await trusted.post('/logout', {}, { json: true })
  t.equal(await password(trusted, 'locked'), 'signed-in', 'after the lockout the trusted browser skips the code again')
})
