// The whole journey through the demo app: enrol from scratch with the code computed from the
// manual key on the page, then password → challenge → code → signed in.
import t from 'tap'
import { answerOf } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, manualKeyFrom, PASSWORDS, passwordStep } from '../helpers/demo.ts'

t.test('enrol from scratch, then sign in with a code', async (t) => {
  const h = await createHarness(t)
  const client = h.client()

  const login = await passwordStep(client, 'alice', PASSWORDS.alice)
  t.equal(login.statusCode, 303, 'alice has no 2FA: signed in at once')
  t.equal(login.headers.location, '/')
  t.equal((await client.get('/')).statusCode, 200)

  const settings = await client.get('/2fa/settings')
  t.equal(settings.statusCode, 200)
  t.match(settings.body, /Turn on two-factor authentication/)

  const setup = await client.get('/2fa/setup')
  t.equal(setup.statusCode, 200)
  t.equal(setup.headers['cache-control'], 'no-store', 'the secret page is not cached')
  const manualKey = manualKeyFrom(setup.body)
  t.match(manualKey, /^[A-Z2-7]{4}( [A-Z2-7]{4}){7}$/, '32 base32 characters grouped by 4')
  t.match(setup.body, /<svg/, 'the QR code is inline SVG')

  const wrong = await client.post('/2fa/setup/confirm', { code: '000000' })
  t.equal(wrong.statusCode, 422, 'a wrong code re-renders the step')
  t.equal(manualKeyFrom((await client.get('/2fa/setup')).body), manualKey, 'the pending secret is kept')

  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, h.clock.ms) })
  t.equal(confirm.statusCode, 200)
  const codes = [...confirm.body.matchAll(/<li><code>([0-9A-Z-]{19})<\/code><\/li>/g)].map((m) => m[1])
  t.equal(codes.length, 10, 'ten recovery codes')
  const finish = await client.post('/2fa/setup/finish')
  t.equal(finish.statusCode, 200)
  t.match(finish.body, /Two-factor authentication is on/)

  await client.post('/logout')
  h.clock.advance(30_000)

  const again = h.client()
  const pending = await passwordStep(again, 'alice', PASSWORDS.alice)
  t.equal(pending.statusCode, 303)
  t.equal(pending.headers.location, '/2fa/challenge')
  t.equal((await again.get('/')).headers.location, '/2fa/challenge', 'pending sessions are gated')
  const challenge = await again.get('/2fa/challenge')
  t.equal(challenge.statusCode, 200)
  t.match(challenge.body, /autocomplete="one-time-code"/)
  const signedIn = await again.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
  t.equal(signedIn.statusCode, 303)
  t.equal(signedIn.headers.location, '/')
  t.equal((await again.get('/')).statusCode, 200)
})

t.test('enrol helper and JSON sign-in', async (t) => {
  const h = await createHarness(t)
  const { manualKey } = await enrol(h, 'bob', PASSWORDS.bob)
  const api = h.client()
  const login = await passwordStep(api, 'bob', PASSWORDS.bob, true)
  t.same(answerOf(login), { state: 'pending', next: '/2fa/challenge' })
  const gated = await api.get('/', { json: true })
  t.equal(gated.statusCode, 401)
  t.same(answerOf(gated), { error: 'second_factor_required', message: 'Enter your second factor to continue.', next: '/2fa/challenge' })
  const prompt = await api.get('/2fa/challenge', { json: true })
  t.match(JSON.parse(prompt.body), { state: 'pending', methods: ['totp', 'recovery'], csrfToken: String })
  const done = await api.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) }, { json: true })
  t.equal(done.statusCode, 200)
  t.same(answerOf(done), { state: 'signed-in', next: '/' })
})

t.test('turning 2FA off and on again in the same minute accepts the new code', async (t) => {
  const h = await createHarness(t)
  const { client } = await enrol(h, 'bob', PASSWORDS.bob)
  await client.get('/2fa/settings')
  t.equal((await client.post('/2fa/disable', { password: PASSWORDS.bob })).statusCode, 200)
  const manualKey = manualKeyFrom((await client.get('/2fa/setup')).body)
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, h.clock.ms, -1) })
  t.equal(confirm.statusCode, 200, 'the new secret has no replay history with the old one')
})
