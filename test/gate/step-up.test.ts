// Step-up: a route with `config: { twoFactor: { freshWithin: '10m' } }` wants a code entered in
// this session within that time. Each kind of client gets the answer it can act on, the prompt at
// /2fa/step-up takes a code and sends the user back, and the same request, sent again, passes.
import t from 'tap'
import Fastify from 'fastify'
import twoFactor from '../../plugin/index.ts'
import { answerOf } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { createHost, HOST_KEYS, HOST_SESSION_SECRET, login } from '../fixtures/host.ts'

t.test('a page (GET) goes to the prompt and comes back', async (t) => {
  const h = await createHarness(t)
  const { manualKey } = await enrol(h, 'alice', PASSWORDS.alice)
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice)
  await client.get('/2fa/challenge')
  await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
  t.equal((await client.get('/export')).statusCode, 200, 'fresh right after sign-in')

  h.clock.advance(11 * 60_000)
  t.equal((await client.get('/')).statusCode, 200, 'ordinary pages need no step-up')
  const stale = await client.get('/export')
  t.equal(stale.statusCode, 303)
  t.equal(stale.headers.location, '/2fa/step-up?returnTo=%2Fexport')
  const json = await client.get('/export', { json: true })
  t.equal(json.statusCode, 401)
  t.match(answerOf(json), { error: 'step_up_required', next: '/2fa/step-up' })
  const htmx = await client.get('/export', { htmx: true, headers: { 'hx-current-url': 'http://localhost:80/' } })
  t.equal(htmx.statusCode, 401)
  t.equal(htmx.headers['hx-redirect'], '/2fa/step-up?returnTo=%2F', 'htmx is sent to the prompt, back to the page it is on')

  const prompt = await client.get(stale.headers.location as string)
  t.equal(prompt.statusCode, 200)
  t.match(prompt.body, /Confirm it’s you/)
  t.match(prompt.body, /name="returnTo" value="\/export"/)
  t.equal(prompt.headers['cache-control'], 'no-store')
  const wrong = await client.post('/2fa/step-up', { code: '000000', returnTo: '/export' })
  t.equal(wrong.statusCode, 422)
  t.equal((await client.get('/')).statusCode, 200, 'a wrong step-up code does not sign the user out')
  t.equal((await client.get('/export')).statusCode, 303, 'and does not count as fresh')
  const done = await client.post('/2fa/step-up', { code: codeFor(manualKey, h.clock.ms), returnTo: '/export' })
  t.equal(done.statusCode, 303)
  t.equal(done.headers.location, '/export', 'back to the sensitive page')
  t.equal((await client.get('/export')).statusCode, 200)
  t.ok(h.events.some((e) => e.type === 'stepup.succeeded' && e.userId === 'alice'), 'audited')

  // A return address goes through the same check as every redirect.
  await client.get('/2fa/step-up')
  h.clock.advance(60_000)
  const away = await client.post('/2fa/step-up', { code: codeFor(manualKey, h.clock.ms), returnTo: '//evil.example/' })
  t.equal(away.headers.location, '/', 'another site falls back to /')
})

t.test('a POST, htmx and a plain fetch client: 401 step_up_required, then the same request passes', async (t) => {
  const host = await createHost(t)
  const client = host.client()
  await login(client, 'alice', 'alice-password')
  await client.get('/2fa/setup', { json: true })
  const setup = await client.get('/2fa/setup', { json: true })
  const { manualKey } = JSON.parse(setup.body) as { manualKey: string }
  await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  await client.post('/2fa/setup/finish', {}, { json: true })
  t.equal((await client.post('/transfer', {}, { json: true })).statusCode, 200, 'the confirm code counts as fresh')

  host.clock.advance(6 * 60_000)
  const refused = await client.post('/transfer', {}, { json: true })
  t.equal(refused.statusCode, 401)
  t.match(answerOf(refused), { error: 'step_up_required', next: '/2fa/step-up' })
  const form = await client.post('/transfer', {}, { headers: { referer: 'http://localhost:80/account?tab=money' } })
  t.equal(form.statusCode, 401, 'a plain form gets the prompt itself')
  t.match(form.body, /name="returnTo" value="\/account\?tab=money"/, 'which returns to the page the form was on')

  const fresh = await client.post('/2fa/step-up', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  t.equal(fresh.statusCode, 200)
  const answer = answerOf(fresh)
  t.match(answer, { next: '/', freshUntil: String })
  t.ok(new Date(answer.freshUntil as string).getTime() > host.clock.ms, 'fresh until a moment in the future')
  t.equal((await client.post('/transfer', {}, { json: true })).statusCode, 200, 'the same request, sent again, succeeds')
})

t.test('an account without 2FA: 403 second_factor_not_enrolled, with the way to turn it on', async (t) => {
  const host = await createHost(t)
  const client = host.client()
  const signedIn = await login(client, 'bob', 'bob-password')
  t.match(answerOf(signedIn), { state: 'signed-in' })
  const json = await client.get('/export', { json: true })
  t.equal(json.statusCode, 403)
  t.match(answerOf(json), { error: 'second_factor_not_enrolled', next: '/2fa/settings' })
  const prompt = await client.get('/2fa/step-up', { json: true })
  t.equal(prompt.statusCode, 403)
  t.equal(JSON.parse(prompt.body).error, 'second_factor_not_enrolled')

  const anonymous = host.client()
  const anon = await anonymous.get('/export', { json: true })
  t.equal(anon.statusCode, 401, 'freshWithin implies a signed-in session')
  t.match(answerOf(anon), { error: 'sign_in_required', next: '/login' })
  const page = await anonymous.get('/export')
  t.equal(page.statusCode, 303)
  t.equal(page.headers.location, '/login?returnTo=%2Fexport')
})

t.test('a bad freshWithin or signedIn stops startup, naming the route', async (t) => {
  for (const config of [{ freshWithin: 'soon' }, { freshWithin: '0m' }, { freshWithin: 10 }, { signedIn: 'yes' }, { fresh: '10m' }, 'on']) {
    const database = await createTestDatabase(t)
    const app = Fastify()
    await app.register(twoFactor, {
      database: database.db,
      keys: HOST_KEYS,
      session: { secret: HOST_SESSION_SECRET },
      accounts: { findUser: () => null, userId: (u: { id: string }) => u.id, label: (u: { id: string }) => u.id }
    })
    let refused: unknown = null
    try {
      app.get('/money', { config: { twoFactor: config as never } }, async () => 'ok')
      await app.ready()
    } catch (error) {
      refused = error
    }
    t.match(refused, { message: /config\.twoFactor of GET \/money/ }, `${JSON.stringify(config)}: refused when the route is added`)
    await app.close().catch(() => {})
  }
})
