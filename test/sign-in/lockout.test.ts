// The per-account failure counter: 5 failures lock the second factor for 15 minutes,
// doubling; a new password sign-in does not reset it; while locked the right code gets the
// same answer as a wrong one.
import t from 'tap'
import { answerOf } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'

t.test('lockout', async (t) => {
  const h = await createHarness(t)
  const { manualKey } = await enrol(h, 'alice', PASSWORDS.alice)

  async function pending () {
    const client = h.client()
    await passwordStep(client, 'alice', PASSWORDS.alice)
    await client.get('/2fa/challenge')
    return client
  }

  let client = await pending()
  for (let i = 1; i <= 4; i++) {
    const r = await client.post('/2fa/challenge', { code: '000000' })
    t.equal(r.statusCode, 422, `failure ${i} is a plain failure`)
  }
  // The pending state allows 5 attempts, and the account allows 5 failures: a fresh
  // password sign-in continues the same account counter.
  client = await pending()
  const fifth = await client.post('/2fa/challenge', { code: '000000' }, { json: true })
  t.equal(fifth.statusCode, 423, 'the fifth failure locks the account')
  const lockedBody = JSON.parse(fifth.body)
  t.equal(lockedBody.error, 'locked')
  t.equal(lockedBody.retryAfter, 15 * 60, 'first lockout: 15 minutes')
  t.ok(h.events.some((e) => e.type === 'lockout.started' && e.userId === 'alice'), 'lockout audited')

  // A new password sign-in does not reset the lock.
  client = await pending()
  const right = await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) }, { json: true })
  client = await pending()
  const wrong = await client.post('/2fa/challenge', { code: '123456' }, { json: true })
  t.equal(right.statusCode, 423, 'right code while locked: 423')
  t.equal(wrong.statusCode, 423, 'wrong code while locked: 423')
  t.same(answerOf(right), answerOf(wrong), 'identical bodies for right and wrong codes (but the session’s token)')
  t.equal((await client.get('/')).headers.location, '/2fa/challenge', 'still not signed in')

  // After the lock the right code works again, and a success resets the counter.
  h.clock.advance(15 * 60_000 + 1000)
  client = await pending()
  const after = await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
  t.equal(after.statusCode, 303, 'signed in once the lock has passed')
  t.equal((await h.app.twoFactor.status('alice')).lockedUntil, null)
})

t.test('lockouts double up to 24 hours and cover recovery codes', async (t) => {
  const h = await createHarness(t)
  const { recoveryCodes } = await enrol(h, 'bob', PASSWORDS.bob)
  const expected = [15, 30, 60, 120, 240, 480, 960, 1440, 1440]
  for (const minutes of expected) {
    let last
    for (let i = 0; i < 5; i++) {
      const client = h.client()
      await passwordStep(client, 'bob', PASSWORDS.bob)
      await client.get('/2fa/challenge', { json: true })
      // Alternate factors: the counter is shared.
      last = await client.post('/2fa/challenge', i % 2 === 0 ? { code: '000000' } : { recoveryCode: 'AAAA-BBBB-CCCC-DDDD' }, { json: true })
    }
    t.equal(JSON.parse(last!.body).retryAfter, minutes * 60, `lockout of ${minutes} minutes`)
    h.clock.advance(minutes * 60_000)
  }
  // While locked, a valid recovery code is not consumed.
  const client = h.client()
  await passwordStep(client, 'bob', PASSWORDS.bob)
  await client.get('/2fa/challenge', { json: true })
  for (let i = 0; i < 5; i++) await client.post('/2fa/challenge', { code: '000000' }, { json: true })
  const locked = h.client()
  await passwordStep(locked, 'bob', PASSWORDS.bob)
  await locked.get('/2fa/challenge', { json: true })
  const r = await locked.post('/2fa/challenge', { recoveryCode: recoveryCodes[0] }, { json: true })
  t.equal(r.statusCode, 423)
  t.equal((await h.app.twoFactor.status('bob')).recoveryCodesLeft, 10, 'no code was used up while locked')
})

t.test('the pending state allows 5 attempts, then the user starts again at the password', async (t) => {
  const h = await createHarness(t, { app: { twoFactor: { lockoutThreshold: 50 } } })
  const { manualKey } = await enrol(h, 'alice', PASSWORDS.alice)
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice)
  await client.get('/2fa/challenge')
  for (let i = 0; i < 4; i++) t.equal((await client.post('/2fa/challenge', { code: '000000' })).statusCode, 422)
  const fifth = await client.post('/2fa/challenge', { code: '000000' })
  t.equal(fifth.statusCode, 422)
  t.match(fifth.body, /password again/)
  const late = await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
  t.equal(late.statusCode, 401, 'the pending state is gone: even the right code is refused')
  t.equal((await client.get('/')).headers.location, '/login')
})

t.test('the pending state expires after 5 minutes', async (t) => {
  const h = await createHarness(t)
  const { manualKey } = await enrol(h, 'alice', PASSWORDS.alice)
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice)
  await client.get('/2fa/challenge')
  h.clock.advance(5 * 60_000 + 1)
  const late = await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
  t.equal(late.statusCode, 401)
  t.equal((await client.get('/')).headers.location, '/login', 'back to the password')
})
