// Attack: read secrets from where they should never be — logs, the session store, audit events,
// error pages, URLs, caches. A whole scripted run (enrol, sign in every
// way, fail every way, regenerate, disable, re-enrol, lock out, admin actions, password change,
// JSON and htmx clients) is recorded request by request, then searched for every secret it used.
import t, { type Test } from 'tap'
import { sql } from 'drizzle-orm'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { rowsOf } from '../../plugin/db/database.ts'
import { codeFor, createHarness, enrol, manualKeyFrom, PASSWORDS, passwordStep } from '../helpers/demo.ts'
import { pendingClient, recoveryCodesIn, sessionIdOf } from '../helpers/states.ts'

interface Exchange { method: string, url: string, request: string, response: LightMyRequestResponse }

const NEW_PASSWORD = 'alice-changed-password-789'

t.test('nothing secret leaks from a whole scripted run', async (t) => {
  const h = await createHarness(t)
  const transcript: Exchange[] = []
  const inject = h.app.inject.bind(h.app) as (options: InjectOptions) => Promise<LightMyRequestResponse>
  ;(h.app as unknown as { inject: typeof inject }).inject = async (options: InjectOptions) => {
    const response = await inject(options)
    transcript.push({ method: String(options.method ?? 'GET'), url: String(options.url), request: JSON.stringify(options.payload ?? ''), response })
    return response
  }

  const codes = new Set<string>()
  const code = (key: string, offset = 0) => { const c = codeFor(key, h.clock.ms, offset); codes.add(c); return c }

  // ── The script ──────────────────────────────────────────────────────────────────────────
  // Alice enrols through the pages, with a wrong code first; the admin is forced to enrol.
  const alice = h.client()
  await passwordStep(alice, 'alice', PASSWORDS.alice)
  const setupPage = await alice.get('/2fa/setup')
  const aliceKey = manualKeyFrom(setupPage.body)
  await alice.get('/2fa/setup', { htmx: true })
  await alice.get('/2fa/setup', { json: true })
  await alice.get('/2fa/setup/confirm')
  await alice.post('/2fa/setup/confirm', { code: '000000' })
  await alice.post('/2fa/setup/confirm', { code: 'abc' }, { json: true })
  const confirmed = await alice.post('/2fa/setup/confirm', { code: code(aliceKey) })
  const firstCodes = recoveryCodesIn(confirmed.body)
  await alice.post('/2fa/setup/finish')
  await alice.post('/logout')
  h.clock.advance(30_000)
  const { manualKey: adminKey, recoveryCodes: adminCodes } = await enrol(h, 'admin', PASSWORDS.admin)

  // Sign-ins: a wrong password, drift, a wrong code, a right code, a recovery code, JSON, htmx.
  const wrongPassword = h.client()
  await wrongPassword.get('/login')
  await wrongPassword.post('/login', { username: 'alice', password: `${PASSWORDS.alice}x` })
  const a = await pendingClient(h, 'alice', PASSWORDS.alice)
  await a.post('/2fa/challenge', { code: code(aliceKey, -8) })
  await a.post('/2fa/challenge', { code: '123456' }, { htmx: true })
  await a.post('/2fa/challenge', { code: code(aliceKey) }, { json: true })
  await a.get('/')
  h.clock.advance(30_000)
  const b = await pendingClient(h, 'alice', PASSWORDS.alice)
  await b.get('/2fa/challenge?method=recovery')
  await b.post('/2fa/challenge', { recoveryCode: 'ZZZZ-ZZZZ-ZZZZ-ZZZZ' })
  await b.post('/2fa/challenge', { recoveryCode: firstCodes[0]!.toLowerCase() })
  await b.get('/2fa/settings')
  await b.get('/2fa/settings', { json: true })
  await b.post('/2fa/recovery-codes', { password: 'wrong password' })
  const regenerated = await b.post('/2fa/recovery-codes', { password: PASSWORDS.alice })
  const secondCodes = recoveryCodesIn(regenerated.body)
  const jsonCodes = await b.post('/2fa/recovery-codes', { password: PASSWORDS.alice }, { json: true })
  const thirdCodes = (JSON.parse(jsonCodes.body) as { recoveryCodes: string[] }).recoveryCodes
  await b.post('/2fa/disable', { password: 'wrong password' })
  await b.post('/2fa/disable', { password: PASSWORDS.alice }, { htmx: true })
  // Re-enrol, then a lockout with a mixture of codes.
  const setupAgain = await b.get('/2fa/setup')
  const aliceKey2 = manualKeyFrom(setupAgain.body)
  const again = await b.post('/2fa/setup/confirm', { code: code(aliceKey2) }, { json: true })
  const fourthCodes = (JSON.parse(again.body) as { recoveryCodes: string[] }).recoveryCodes
  await b.post('/2fa/setup/finish', {}, { json: true })
  h.clock.advance(30_000)
  const guesser = await pendingClient(h, 'alice', PASSWORDS.alice)
  for (const guess of ['111111', '222222', 'AAAA-BBBB-CCCC-DDDD', '333333', '444444']) {
    await guesser.post('/2fa/challenge', guess.includes('-') ? { recoveryCode: guess } : { code: guess }, { json: true })
  }
  await guesser.post('/2fa/challenge', { code: code(aliceKey2) }, { json: true })
  // The admin unlocks and resets through the panel; alice changes her password.
  const admin = await pendingClient(h, 'admin', PASSWORDS.admin)
  await admin.post('/2fa/challenge', { code: code(adminKey) })
  h.clock.advance(30_000)
  await admin.get('/2fa/admin/users')
  await admin.get('/2fa/admin/users?q=ali', { json: true })
  await admin.post('/2fa/admin/users/alice/unlock', {})
  await admin.get('/2fa/admin/events', { json: true })
  const c = await pendingClient(h, 'alice', PASSWORDS.alice)
  await c.post('/2fa/challenge', { recoveryCode: fourthCodes[1]! })
  await c.get('/', { json: true })
  await c.post('/password', { currentPassword: PASSWORDS.alice, newPassword: NEW_PASSWORD }, { json: true })
  await admin.post('/2fa/admin/users/alice/reset', { reason: 'lost phone' })
  // Broken requests of every kind.
  await c.post('/2fa/challenge', { code: '000000' }, { noCsrf: true })
  await h.app.inject({ method: 'POST', url: '/2fa/challenge', headers: { cookie: `tf.sid=${encodeURIComponent(c.sessionCookie()!)}`, 'content-type': 'application/json' }, payload: `{"code": "${code(aliceKey2)}"` })
  await admin.post('/logout')
  // ── End of the script ───────────────────────────────────────────────────────────────────

  const secret = aliceKey.replace(/ /g, '')
  const allRecoveryCodes = [...firstCodes, ...secondCodes, ...thirdCodes, ...fourthCodes, ...adminCodes]
  t.equal(allRecoveryCodes.length, 50, 'five sets of ten recovery codes were issued')
  const sessionIds = new Set<string>()
  for (const { response } of transcript) {
    for (const cookie of response.cookies as Array<{ value: string }>) {
      const value = decodeURIComponent(cookie.value)
      if (value.length > 20) sessionIds.add(value.slice(0, value.lastIndexOf('.')))
    }
  }
  for (const client of [alice, a, b, c, guesser, admin]) if (client.sessionCookie() !== undefined) sessionIds.add(sessionIdOf(client))
  t.ok(sessionIds.size >= 10, `${sessionIds.size} session ids were handed out`)
  t.ok(codes.size >= 6, `${codes.size} TOTP codes were used`)

  type Needle = [what: string, pattern: RegExp]
  const literal = (s: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i')
  const secrets: Needle[] = [
    ...[secret, manualKeyFrom(setupAgain.body).replace(/ /g, ''), adminKey.replace(/ /g, '')].flatMap((s): Needle[] => [['TOTP secret', literal(s)], ['grouped TOTP secret', literal(s.match(/.{4}/g)!.join(' '))]]),
    ...allRecoveryCodes.flatMap((rc): Needle[] => [['recovery code', literal(rc)], ['recovery code without dashes', literal(rc.replace(/-/g, ''))]])
  ]
  const passwords: Needle[] = [...Object.values(PASSWORDS), NEW_PASSWORD, `${PASSWORDS.alice}x`].map((p) => ['password', literal(p)])
  const sids: Needle[] = [...sessionIds].map((id) => ['session id', literal(id)])
  const totpCodes: Needle[] = [...codes].map((c) => ['TOTP code', new RegExp(`(?<![0-9])${c}(?![0-9])`)])
  const everything = [...secrets, ...passwords, ...sids, ...totpCodes]

  function assertClean (t: Test, where: string, text: string, needles: Needle[]) {
    const found = needles.filter(([, pattern]) => pattern.test(text)).map(([what]) => what)
    t.same([...new Set(found)], [], `nothing secret in ${where}`)
  }

  t.test('URLs, redirects and error bodies', async (t) => {
    t.ok(transcript.length > 60, `${transcript.length} requests recorded`)
    for (const { method, url, response } of transcript) {
      const label = `${method} ${url.replace(/\?.*/, '?…')} → ${response.statusCode}`
      const locations = [response.headers.location, response.headers['hx-redirect'], response.headers['hx-location']].filter((v) => v !== undefined).join(' ')
      assertClean(t, `the URL of ${label}`, url, everything)
      assertClean(t, `the redirect of ${label}`, locations, everything)
      t.notMatch(url + locations, /otpauth|secret=/i, `${label}: no otpauth URI or secret parameter in a URL`)
      if (response.statusCode >= 400) assertClean(t, `the error body of ${label}`, response.body, everything)
      // Session ids travel only in Set-Cookie; passwords and codes never come back.
      const headers = JSON.stringify({ ...response.headers, 'set-cookie': undefined })
      assertClean(t, `the body and headers of ${label}`, response.body + headers, [...passwords, ...sids, ...totpCodes])
    }
  })

  t.test('pages that show a secret or recovery codes are no-store, and only those show them', async (t) => {
    let secretPages = 0
    for (const { method, url, response } of transcript) {
      const shows = secrets.some(([, pattern]) => pattern.test(response.body))
      if (!shows) continue
      secretPages++
      t.equal(response.headers['cache-control'], 'no-store', `${method} ${url} → ${response.statusCode} shows a secret: no-store`)
      t.ok(response.statusCode < 400 || (method === 'POST' && url === '/2fa/setup/confirm'), `${method} ${url}: a secret only on a success page or the confirm step's retry`)
      t.match(url, /^\/2fa\/(setup|setup\/confirm|recovery-codes)$/, `${method} ${url}: only the wizard and regenerate pages show secrets`)
    }
    t.ok(secretPages >= 8, `${secretPages} responses showed a secret, all checked`)
  })

  t.test('logs', async (t) => {
    const logs = h.logs.join('\n')
    t.ok(logs.includes('incoming request') && h.logs.length > 100, `${h.logs.length} log lines captured at trace level`)
    assertClean(t, 'the logs', logs, everything)
  })

  t.test('audit events, as stored and as given to onEvent', async (t) => {
    const stored = JSON.stringify(rowsOf(await h.database.db.execute(sql`select * from two_factor.events order by id`)))
    t.ok(h.events.length > 20, `${h.events.length} events`)
    assertClean(t, 'the stored audit events', stored, everything)
    assertClean(t, 'the onEvent payloads', JSON.stringify(h.events), everything)
  })

  t.test('session store rows', async (t) => {
    const rows = rowsOf<{ sid_hash: string }>(await h.database.db.execute(sql`select * from two_factor.sessions`))
    t.ok(rows.length > 3, `${rows.length} session rows`)
    assertClean(t, 'the session store', JSON.stringify(rows), everything)
  })

  t.test('the whole two_factor schema and the host table', async (t) => {
    const tables = rowsOf<{ table_name: string }>(await h.database.db.execute(sql`select table_name from information_schema.tables where table_schema = 'two_factor'`))
    let dump = ''
    for (const { table_name: table } of tables) dump += JSON.stringify(rowsOf(await h.database.db.execute(sql.raw(`select * from two_factor."${table}"`))))
    dump += JSON.stringify(rowsOf(await h.database.db.execute(sql`select * from demo_users`)))
    assertClean(t, 'a dump of the database', dump, everything)
  })
})
