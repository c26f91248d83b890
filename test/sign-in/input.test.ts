// Bad input gets a clear 4xx and loses nothing: missing fields, arrays,
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

// Postgres text can't hold U+0000 (PGlite stores it), so a NUL that reached a query would be a
// database error, a 503, on one database and not the other. Every field and parameter that can
// reach a query gets one here, from a signed-in admin, as JSON and as a form.
t.test('a NUL character in any field or parameter is a 4xx on both databases, and changes nothing', async (t) => {
  const h = await createHarness(t)
  const { client: admin } = await enrol(h, 'admin', PASSWORDS.admin)
  await admin.get('/2fa/settings', { json: true })
  const NUL = 'a\u0000b'
  const posts: Array<[string, Record<string, unknown>]> = [
    ['/2fa/admin/users/alice/reset', { reason: NUL }],
    ['/2fa/admin/users/alice/unlock', { note: ['x', NUL] }],
    ['/2fa/admin/users/alice/required', { required: NUL }],
    [`/2fa/admin/users/${encodeURIComponent(NUL)}/required`, { required: 'true' }],
    [`/2fa/admin/users/${encodeURIComponent(NUL)}/unlock`, {}],
    ['/2fa/admin/policy', { requireAll: 'false', graceDays: '7', requiredRoles: NUL, exemptRoles: NUL, allowSkip: 'true' }],
    ['/2fa/disable', { password: NUL }],
    ['/2fa/recovery-codes', { password: NUL }],
    ['/password', { currentPassword: NUL, newPassword: NUL }],
    ['/admin/users', { username: NUL, password: 'long-enough-password-1', role: 'user' }],
    ['/admin/users/a%00b', { role: 'user' }]
  ]
  for (const [url, body] of posts) {
    for (const json of [true, false]) {
      const r = await admin.post(url, body, { json })
      t.ok(r.statusCode >= 400 && r.statusCode < 500, `POST ${url} ${json ? 'JSON' : 'form'} → ${r.statusCode}`)
    }
  }
  for (const url of ['/2fa/admin/users?q=a%00b', '/2fa/admin/users/a%00b', '/2fa/admin/events?user=a%00b', '/2fa/admin/events?type=a%00b', '/admin/users/a%00b']) {
    const r = await admin.get(url, { json: true })
    t.ok(r.statusCode >= 400 && r.statusCode < 500, `GET ${url} → ${r.statusCode}`)
  }
  const visitor = h.client()
  await visitor.get('/login')
  for (const body of [{ username: NUL, password: 'x' }, { username: 'alice', password: NUL }]) {
    const r = await visitor.post('/login', body, { json: true })
    t.ok(r.statusCode >= 400 && r.statusCode < 500, `POST /login ${JSON.stringify(body)} → ${r.statusCode}`)
  }
  const pending = h.client()
  await passwordStep(pending, 'admin', PASSWORDS.admin, true)
  await pending.get('/2fa/challenge', { json: true })
  for (const body of [{ code: '12\u00003456' }, { recoveryCode: NUL }]) {
    const r = await pending.post('/2fa/challenge', body, { json: true })
    t.ok(r.statusCode >= 400 && r.statusCode < 500, `POST /2fa/challenge ${JSON.stringify(body)} → ${r.statusCode}`)
  }
  t.match(await h.app.twoFactor.status('alice'), { required: false }, 'alice unchanged')
  t.same(h.logs.filter((line) => line.includes('"level":50')).map((line) => line.slice(0, 200)), [], 'nothing logged as an error')
})
