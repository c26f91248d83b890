// Bad input gets a clear 4xx and loses nothing (SPEC §2, §12): missing fields, arrays,
// objects, wrong lengths, full-width digits and huge strings, as forms and as JSON.
import t from 'tap'
import { createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'

const BAD_CODES: unknown[] = [
  undefined, '', '12345', '1234567', '１２３４５６', '12a456', ' ', '0x1234', '1e5000',
  ['123456', '123456'], { code: '123456' }, 123456, null, true, 'x'.repeat(100_000)
]

t.test('bad challenge input: 4xx with a clear error, never 5xx, counted as a failure', async (t) => {
  const h = await createHarness(t, { app: { twoFactor: { lockoutThreshold: 100, pendingAttempts: 100 } } })
  await enrol(h, 'alice', PASSWORDS.alice)
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice, true)
  await client.get('/2fa/challenge', { json: true })
  let failures = 0
  for (const code of BAD_CODES) {
    const body = code === undefined ? {} : { code }
    const r = await client.post('/2fa/challenge', body, { json: true })
    t.ok(r.statusCode >= 400 && r.statusCode < 500, `JSON code ${JSON.stringify(code)?.slice(0, 20)} → ${r.statusCode}`)
    const answer = JSON.parse(r.body)
    t.match(answer, { error: /^(invalid_input|invalid_code)$/, message: String })
    failures++
  }
  const counted = h.events.filter((e) => e.type === 'challenge.failed' && e.userId === 'alice').length
  t.equal(counted, failures, 'every bad input counted as a failure')

  // Form posts with repeated fields become arrays.
  const form = await client.post('/2fa/challenge', { code: ['123456', '654321'] })
  t.equal(form.statusCode, 422)
  t.match(form.body, /Enter the 6-digit code/)
  const recovery = await client.post('/2fa/challenge', { recoveryCode: { a: 1 } }, { json: true })
  t.equal(recovery.statusCode, 422)
  t.equal(JSON.parse(recovery.body).error, 'invalid_code', 'malformed recovery codes look like unknown ones')
})

t.test('malformed bodies and content types are 4xx', async (t) => {
  const h = await createHarness(t)
  await enrol(h, 'alice', PASSWORDS.alice)
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice, true)
  await client.get('/2fa/challenge', { json: true })
  const cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  const cases = [
    { 'content-type': 'application/json', payload: '{"code": ' },
    { 'content-type': 'application/json', payload: '[1,2,3]' },
    { 'content-type': 'application/json', payload: '"123456"' },
    { 'content-type': 'text/plain', payload: '123456' },
    { 'content-type': 'application/x-www-form-urlencoded', payload: 'code=%E0%A4%A' }
  ]
  for (const c of cases) {
    const r = await h.app.inject({
      method: 'POST',
      url: '/2fa/challenge',
      headers: { cookie, accept: 'application/json', 'content-type': c['content-type'], 'x-csrf-token': client.csrfToken! },
      payload: c.payload
    })
    t.ok(r.statusCode >= 400 && r.statusCode < 500, `${c['content-type']} ${c.payload} → ${r.statusCode}`)
    t.type(JSON.parse(r.body).error, 'string', 'a JSON error')
  }
  const huge = await h.app.inject({
    method: 'POST', url: '/2fa/challenge', headers: { cookie, accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': client.csrfToken! },
    payload: JSON.stringify({ code: 'x'.repeat(2 * 1024 * 1024) })
  })
  t.equal(huge.statusCode, 413, 'a body over the limit is refused')
})

t.test('bad setup and settings input is 4xx and changes nothing', async (t) => {
  const h = await createHarness(t)
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice)
  await client.get('/2fa/setup')
  for (const code of BAD_CODES) {
    const r = await client.post('/2fa/setup/confirm', code === undefined ? {} : { code }, { json: true })
    t.equal(r.statusCode, 422, `confirm ${JSON.stringify(code)?.slice(0, 20)} → 422`)
  }
  t.equal((await h.app.twoFactor.status('alice')).enabled, false, 'not enrolled by bad input')
  const { client: enrolled } = await enrol(h, 'bob', PASSWORDS.bob)
  await enrolled.get('/2fa/settings', { json: true })
  for (const password of [undefined, ['a', 'b'], { p: 1 }, 12345, '']) {
    const r = await enrolled.post('/2fa/disable', password === undefined ? {} : { password }, { json: true })
    t.equal(r.statusCode, 422, `disable with ${JSON.stringify(password)} → 422`)
  }
  t.equal((await h.app.twoFactor.status('bob')).enabled, true, 'still enabled')
})
