// Step-up (SPEC §11): a route with `config: { twoFactor: { freshWithin: '10m' } }` wants a code
// entered within that time, and returns the user to it afterwards.
import t from 'tap'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'

t.test('step-up asks for a fresh code and returns to the page', async (t) => {
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
  t.equal(stale.headers.location, '/2fa/challenge')
  const json = await client.get('/export', { json: true })
  t.equal(json.statusCode, 401)
  const prompt = await client.get('/2fa/challenge')
  t.match(prompt.body, /Confirm it’s you/)
  const wrong = await client.post('/2fa/challenge', { code: '000000' })
  t.equal(wrong.statusCode, 422)
  t.equal((await client.get('/')).statusCode, 200, 'a wrong step-up code does not sign the user out')
  const done = await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
  t.equal(done.statusCode, 303)
  t.equal(done.headers.location, '/export', 'back to the sensitive page')
  t.equal((await client.get('/export')).statusCode, 200)
})

t.test('step-up for a user without 2FA explains how to turn it on', async (t) => {
  const h = await createHarness(t)
  const client = h.client()
  await passwordStep(client, 'bob', PASSWORDS.bob)
  t.equal((await client.get('/export')).headers.location, '/2fa/challenge')
  const prompt = await client.get('/2fa/challenge')
  t.equal(prompt.statusCode, 403)
  t.match(prompt.body, /Turn on two-factor authentication first/)
})
