// The gate: a half-signed-in session reaches nothing of the host's, whatever the
// method or the client, and the session id changes when the pending state starts and again
// when sign-in completes.
import t from 'tap'
import { createHarness, enrol, PASSWORDS, passwordStep, codeFor } from '../helpers/demo.ts'
import { type Client, answerOf } from '../helpers/client.ts'

// Every gated route of the demo app and of the plugin's own self-service pages.
const GATED = [
  { method: 'GET', url: '/' },
  { method: 'GET', url: '/admin' },
  { method: 'GET', url: '/2fa/settings' },
  { method: 'POST', url: '/2fa/disable' },
  { method: 'POST', url: '/2fa/recovery-codes' }
] as const

t.test('pending and pending-setup sessions are gated everywhere', async (t) => {
  const h = await createHarness(t)
  await enrol(h, 'alice', PASSWORDS.alice)

  const pending = h.client()
  t.equal((await passwordStep(pending, 'alice', PASSWORDS.alice)).headers.location, '/2fa/challenge')
  const pendingSetup = h.client()
  t.equal((await passwordStep(pendingSetup, 'admin', PASSWORDS.admin)).headers.location, '/2fa/setup', 'admins must enrol')

  const cases: Array<[string, Client, string]> = [['pending', pending, '/2fa/challenge'], ['pending-setup', pendingSetup, '/2fa/setup']]
  for (const [name, client, next] of cases) {
    for (const route of GATED) {
      const send = (options: { htmx?: boolean, json?: boolean }) => route.method === 'GET'
        ? client.get(route.url, options)
        : client.post(route.url, { password: PASSWORDS.alice }, options)

      const page = await send({})
      t.equal(page.statusCode, 303, `${name} ${route.method} ${route.url}: full page → 303`)
      t.equal(page.headers.location, next)
      t.notMatch(page.body, /Welcome|Recovery codes left|Admin/, 'nothing protected in the body')

      const htmx = await send({ htmx: true })
      t.equal(htmx.statusCode, 200, `${name} ${route.method} ${route.url}: htmx → 200`)
      t.equal(htmx.headers['hx-redirect'], next, 'with HX-Redirect')
      t.equal(htmx.body, '')

      const json = await send({ json: true })
      t.equal(json.statusCode, 401, `${name} ${route.method} ${route.url}: JSON → 401`)
      t.same(answerOf(json), { error: 'second_factor_required', message: 'Enter your second factor to continue.', next })
    }
  }
  t.equal((await h.app.twoFactor.status('alice')).enabled, true, 'the gated POST /2fa/disable changed nothing')
})

t.test('the session id changes when pending starts and when sign-in completes', async (t) => {
  const h = await createHarness(t)
  const { manualKey } = await enrol(h, 'alice', PASSWORDS.alice)
  const client = h.client()
  await client.get('/login')
  const anonymous = client.sessionCookie()
  t.ok(anonymous, 'the login page gives a session (for its CSRF token)')
  await client.post('/login', { username: 'alice', password: PASSWORDS.alice })
  const pendingId = client.sessionCookie()
  t.not(pendingId, anonymous, 'new id for the pending state')
  await client.get('/2fa/challenge')
  await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
  const signedIn = client.sessionCookie()
  t.not(signedIn, pendingId, 'new id once signed in')
  t.equal((await client.get('/')).statusCode, 200)

  // The old pending cookie is dead: it does not carry the sign-in.
  const stale = h.client()
  stale.cookies.set('tf.sid', pendingId!)
  t.equal((await stale.get('/')).headers.location, '/login', 'the pre-sign-in id reaches nothing')
})

t.test('routes opted out with config.twoFactor = false stay reachable', async (t) => {
  const h = await createHarness(t)
  await enrol(h, 'alice', PASSWORDS.alice)
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice)
  t.equal((await client.get('/login')).statusCode, 200, 'the login page is public')
  t.equal((await client.get('/2fa/challenge')).statusCode, 200, 'the challenge is allow-listed')
  t.equal((await client.get('/2fa/assets/two-factor.css')).statusCode, 200, 'assets are allow-listed')
})
