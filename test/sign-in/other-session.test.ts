// Nothing a second session does signs the first one in. The attacker review found sessions that
// trusted what they remembered of the account: someone with only alice's password waited in the
// forced wizard while she enrolled in her own browser, then "finished" or "skipped" and was in;
// a session at the code prompt could open the wizard and read a secret; and the pending secret
// was the account's, not the session's, so one browser could confirm (or read) another's.
// Each test here holds one of those closed: a session moves only on what it proved itself, and
// on the account as it is now.
import t, { type Test } from 'tap'
import { eq } from 'drizzle-orm'
import { PgSessionStore } from '../../plugin/index.ts'
import { enrolments } from '../../plugin/db/schema.ts'
import { answerOf, type Client } from '../helpers/client.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { codeFor, manualKeyFrom, TestClock } from '../helpers/demo.ts'
import { createHost, HOST_SESSION_SECRET, login, type Host } from '../fixtures/host.ts'
import { enrolled, manualKeyOf, PASSWORD, whoIs } from './support.ts'

async function requiredAlice (t: Test, host?: Host): Promise<Host> {
  const h = host ?? await createHost(t)
  await h.app.twoFactor.setRequired('alice', true, { actor: 'cli' })
  return h
}

/** Alice, in her own browser: password, the wizard's secret, confirm, finish. */
async function aliceEnrolsHerself (host: Host): Promise<{ client: Client, manualKey: string }> {
  const client = host.client()
  const start = await login(client, 'alice', PASSWORD.alice!)
  if (JSON.parse(start.body).state !== 'pending-setup') throw new Error(`alice: ${start.body}`)
  const manualKey = await manualKeyOf(client)
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  if (confirm.statusCode !== 200) throw new Error(`confirm: ${confirm.statusCode} ${confirm.body}`)
  const finish = await client.post('/2fa/setup/finish', {}, { json: true })
  if (finish.statusCode !== 200) throw new Error(`finish: ${finish.statusCode} ${finish.body}`)
  host.clock.advance(30_000)
  return { client, manualKey }
}

async function enrolmentRowsOf (host: Host, userId: string): Promise<number> {
  return (await host.database.db.select().from(enrolments).where(eq(enrolments.userId, userId))).length
}

t.test('a session waiting in the forced wizard is not signed in when the account gets enrolled in another browser', async (t) => {
  const host = await requiredAlice(t)
  const byForm = host.client()
  const byJson = host.client()
  for (const attacker of [byForm, byJson]) {
    t.match(answerOf(await login(attacker, 'alice', PASSWORD.alice!)), { state: 'pending-setup', next: '/2fa/setup' }, 'the attacker has the password only: the wizard')
  }
  const alice = await aliceEnrolsHerself(host)
  t.equal((await whoIs(alice.client)).userId, 'alice', 'alice is signed in in her browser')

  const finishPage = await byForm.post('/2fa/setup/finish')
  t.not(finishPage.statusCode, 200, 'finish (page): not "done"')
  t.notOk(finishPage.statusCode === 303 && finishPage.headers.location === '/', 'finish (page): not sent on as signed in')
  t.not((await whoIs(byForm)).userId, 'alice', 'finish (page): GET / is still refused')
  const skipPage = await byForm.post('/2fa/setup/skip')
  t.not((await whoIs(byForm)).userId, 'alice', 'then skip (page): still refused')
  t.notOk(skipPage.statusCode === 303 && skipPage.headers.location === '/', 'skip (page): not sent on as signed in')

  const skipJson = await byJson.post('/2fa/setup/skip', {}, { json: true })
  t.not(JSON.parse(skipJson.body).state, 'signed-in', 'skip (JSON): not signed in')
  t.not((await whoIs(byJson)).userId, 'alice', 'skip (JSON): GET / is still refused')
  const finishJson = await byJson.post('/2fa/setup/finish', {}, { json: true })
  t.not(JSON.parse(finishJson.body).state, 'signed-in', 'then finish (JSON): not signed in')
  t.not((await whoIs(byJson)).userId, 'alice', 'finish (JSON): still refused')

  // Alice's confirm ended her account's other sessions, half-signed-in ones included.
  for (const [name, attacker] of [['form', byForm], ['json', byJson]] as const) {
    const who = await whoIs(attacker)
    t.ok(who.userId === null && (who.state === 'anonymous' || who.state === 'second_factor_required'), `${name}: anonymous or at the code prompt (${who.state})`)
  }
  const prompt = await byJson.post('/2fa/challenge', { code: '000000' }, { json: true })
  t.equal(prompt.statusCode, 401, 'and the attacker has no code prompt of alice to guess at either')
})

t.test('a forced-wizard session that outlives the enrolment (a request in flight as she confirms) is moved to the code prompt, never signed in', async (t) => {
  // A store that ends nobody: the attacker's session survives alice's confirm, as a request of
  // it that was in flight would make it. What then decides is the account as it is now.
  class EndsNoSessions extends PgSessionStore {
    override async endAccountSessions (): Promise<number> { return 0 }
  }
  const database = await createTestDatabase(t)
  const clock = new TestClock()
  const store = new EndsNoSessions(database.db, clock.now)
  const host = await requiredAlice(t, await createHost(t, { database, clock, twoFactor: { session: { secret: HOST_SESSION_SECRET, secure: false, store } } }))

  const clients = { finishPage: host.client(), finishJson: host.client(), skipPage: host.client(), skipJson: host.client(), finishHtmx: host.client() }
  for (const attacker of Object.values(clients)) await login(attacker, 'alice', PASSWORD.alice!)
  const alice = await aliceEnrolsHerself(host)

  const finishPage = await clients.finishPage.post('/2fa/setup/finish')
  t.equal(finishPage.statusCode, 303, 'finish (page)')
  t.equal(finishPage.headers.location, '/2fa/challenge', 'finish (page): to the code prompt')
  const finishHtmx = await clients.finishHtmx.post('/2fa/setup/finish', {}, { htmx: true })
  t.equal(finishHtmx.headers['hx-redirect'], '/2fa/challenge', 'finish (htmx): to the code prompt')
  const finishJson = await clients.finishJson.post('/2fa/setup/finish', {}, { json: true })
  t.match(answerOf(finishJson), { state: 'pending', next: '/2fa/challenge' }, 'finish (JSON): to the code prompt')
  const skipPage = await clients.skipPage.post('/2fa/setup/skip')
  t.equal(skipPage.statusCode, 303, 'skip (page)')
  t.equal(skipPage.headers.location, '/2fa/challenge', 'skip (page): to the code prompt')
  const skipJson = await clients.skipJson.post('/2fa/setup/skip', {}, { json: true })
  t.match(answerOf(skipJson), { state: 'pending', next: '/2fa/challenge' }, 'skip (JSON): to the code prompt')

  for (const [name, attacker] of Object.entries(clients)) {
    const who = await whoIs(attacker)
    t.equal(who.userId, null, `${name}: GET / stays refused`)
    t.equal(who.state, 'second_factor_required', `${name}: the gate asks for the code`)
    // Asking again changes nothing.
    await attacker.post('/2fa/setup/finish', {}, { json: true })
    await attacker.post('/2fa/setup/skip', {}, { json: true })
    t.equal((await whoIs(attacker)).userId, null, `${name}: finish and skip again: still refused`)
  }
  const wrong = await clients.finishJson.post('/2fa/challenge', { code: '000000' }, { json: true })
  t.equal(wrong.statusCode, 422, 'at the prompt, only a code of alice’s authenticator would do')
  const right = await clients.finishJson.post('/2fa/challenge', { code: codeFor(alice.manualKey, host.clock.ms) }, { json: true })
  t.equal(right.statusCode, 200, 'with alice’s code (which the attacker lacks) the prompt works as any other')
})

t.test('a session at the code prompt gets no secret from the wizard and makes no enrolment', async (t) => {
  const host = await createHost(t)
  const { manualKey } = await enrolled(host, 'alice')
  t.equal(await enrolmentRowsOf(host, 'alice'), 0, 'no pending secret left once enrolled')

  const pending = host.client()
  t.match(answerOf(await login(pending, 'alice', PASSWORD.alice!)), { state: 'pending' })
  for (const path of ['/2fa/setup', '/2fa/setup/confirm']) {
    const page = await pending.get(path)
    t.equal(page.statusCode, 303, `GET ${path} (page): 303`)
    t.equal(page.headers.location, '/2fa/challenge', `GET ${path} (page): to the code prompt`)
    const htmx = await pending.get(path, { htmx: true })
    t.equal(htmx.headers['hx-redirect'], '/2fa/challenge', `GET ${path} (htmx): to the code prompt`)
    t.notMatch(htmx.body, /tf-manual-key|otpauth:/, `GET ${path} (htmx): no secret`)
    const json = await pending.get(path, { json: true })
    const answer = answerOf(json)
    t.match(answer, { state: 'pending', next: '/2fa/challenge' }, `GET ${path} (JSON): to the code prompt`)
    for (const field of ['manualKey', 'otpauthUri', 'qrSvg']) t.notOk(field in answer, `GET ${path} (JSON): no ${field}`)
  }
  const confirm = await pending.post('/2fa/setup/confirm', { code: '123456' }, { json: true })
  t.match(answerOf(confirm), { next: '/2fa/challenge' }, 'POST /2fa/setup/confirm: to the code prompt')
  t.equal(await enrolmentRowsOf(host, 'alice'), 0, 'no enrolment row was made')
  t.equal((await whoIs(pending)).userId, null, 'still at the code prompt')
  t.equal((await pending.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) }, { json: true })).statusCode, 200, 'the prompt itself still works')
})

t.test('the pending secret belongs to the session that opened the wizard', async (t) => {
  const host = await requiredAlice(t)
  const a = host.client()
  const b = host.client()
  await login(a, 'alice', PASSWORD.alice!)
  await login(b, 'alice', PASSWORD.alice!)
  const keyA = await manualKeyOf(a)
  const keyB = await manualKeyOf(b)
  t.not(keyA, keyB, 'two sessions, two different secrets')
  t.equal(await manualKeyOf(a), keyA, 'each session resumes its own')
  t.equal(await manualKeyOf(b), keyB)

  const stolen = await b.post('/2fa/setup/confirm', { code: codeFor(keyA, host.clock.ms) }, { json: true })
  t.equal(stolen.statusCode, 422, 'a code of session A’s secret, posted by session B, is refused')
  t.equal(JSON.parse(stolen.body).error, 'invalid_code')
  const finishB = await b.post('/2fa/setup/finish', {}, { json: true })
  t.not(JSON.parse(finishB.body).state, 'signed-in', 'B’s finish does not sign in')
  t.equal((await whoIs(b)).userId, null, 'B: GET / still refused')
  t.equal((await host.app.twoFactor.status('alice')).enabled, false, 'and alice is not enrolled')

  t.equal((await a.post('/2fa/setup/confirm', { code: codeFor(keyA, host.clock.ms) }, { json: true })).statusCode, 200, 'A confirms its own')
  t.match(answerOf(await a.post('/2fa/setup/finish', {}, { json: true })), { state: 'signed-in' }, 'A finishes: signed in')
  t.equal((await whoIs(a)).userId, 'alice')
  const lateB = await b.post('/2fa/setup/confirm', { code: codeFor(keyB, host.clock.ms) }, { json: true })
  t.not(lateB.statusCode, 200, 'B can no longer confirm its secret')
  t.equal((await whoIs(b)).userId, null, 'B is not signed in')
  t.equal((await host.app.twoFactor.status('alice')).enabled, true)

  for (let round = 0; round < 2; round++) {
    host.clock.advance(30_000)
    const withB = host.client()
    await login(withB, 'alice', PASSWORD.alice!)
    const refused = await withB.post('/2fa/challenge', { code: codeFor(keyB, host.clock.ms) }, { json: true })
    t.equal(refused.statusCode, 422, `sign-in ${round + 1}: a code of B’s secret never works`)
    t.equal((await whoIs(withB)).userId, null)
    const withA = host.client()
    await login(withA, 'alice', PASSWORD.alice!)
    t.equal((await withA.post('/2fa/challenge', { code: codeFor(keyA, host.clock.ms) }, { json: true })).statusCode, 200, `sign-in ${round + 1}: a code of A’s secret signs alice in`)
    t.equal((await whoIs(withA)).userId, 'alice')
  }
})

t.test('opening the wizard again shows the same secret within its 15 minutes but does not extend them', async (t) => {
  await t.test('turning 2FA on while signed in: the expired step answers 422 with a new secret', async (t) => {
    const host = await createHost(t)
    const client = host.client()
    t.match(answerOf(await login(client, 'alice', PASSWORD.alice!)), { state: 'signed-in' })
    const first = JSON.parse((await client.get('/2fa/setup', { json: true })).body) as { manualKey: string, expiresAt: string }
    host.clock.advance(10 * 60_000)
    const again = JSON.parse((await client.get('/2fa/setup', { json: true })).body) as { manualKey: string, expiresAt: string }
    t.equal(again.manualKey, first.manualKey, 'ten minutes on: the same secret')
    t.equal(again.expiresAt, first.expiresAt, 'with the same end of life')
    t.equal(manualKeyFrom((await client.get('/2fa/setup')).body), first.manualKey, 'the page shows it too')
    host.clock.advance(6 * 60_000)
    const late = await client.post('/2fa/setup/confirm', { code: codeFor(first.manualKey, host.clock.ms) })
    t.equal(late.statusCode, 422, 'sixteen minutes after it was made, the secret can’t be confirmed')
    const fresh = manualKeyFrom(late.body)
    t.not(fresh, first.manualKey, 'the answer shows a new secret')
    t.equal((await host.app.twoFactor.status('alice')).enabled, false, 'alice is not enrolled by the old one')
    t.equal((await client.post('/2fa/setup/confirm', { code: codeFor(fresh, host.clock.ms) })).statusCode, 200, 'the new one confirms')
  })

  await t.test('the forced wizard: the sign-in lapses with its secret, and a new sign-in gets a new one', async (t) => {
    const host = await requiredAlice(t)
    const client = host.client()
    await login(client, 'alice', PASSWORD.alice!)
    const first = JSON.parse((await client.get('/2fa/setup', { json: true })).body) as { manualKey: string, expiresAt: string }
    host.clock.advance(10 * 60_000)
    const again = JSON.parse((await client.get('/2fa/setup', { json: true })).body) as { manualKey: string, expiresAt: string }
    t.equal(again.manualKey, first.manualKey, 'ten minutes on: the same secret')
    t.equal(again.expiresAt, first.expiresAt, 'with the same end of life')
    host.clock.advance(6 * 60_000)
    const late = await client.post('/2fa/setup/confirm', { code: codeFor(first.manualKey, host.clock.ms) }, { json: true })
    t.equal(late.statusCode, 401, 'sixteen minutes on, the forced sign-in itself has lapsed (it lasts as long as a secret)')
    t.match(answerOf(late), { error: 'second_factor_required', next: '/login' })
    t.equal((await host.app.twoFactor.status('alice')).enabled, false, 'alice is not enrolled by the old secret')
    await login(client, 'alice', PASSWORD.alice!)
    const fresh = await manualKeyOf(client)
    t.not(fresh, first.manualKey, 'signing in again shows a new secret')
    const old = await client.post('/2fa/setup/confirm', { code: codeFor(first.manualKey, host.clock.ms) }, { json: true })
    t.equal(old.statusCode, 422, 'the old secret can’t be confirmed in the new sign-in')
    t.equal((await client.post('/2fa/setup/confirm', { code: codeFor(fresh, host.clock.ms) }, { json: true })).statusCode, 200, 'the new one confirms')
  })
})

t.test('turning 2FA on in settings ends the account’s other signed-in sessions', async (t) => {
  const host = await createHost(t)
  const first = host.client()
  const other = host.client()
  t.match(answerOf(await login(first, 'alice', PASSWORD.alice!)), { state: 'signed-in' })
  t.match(answerOf(await login(other, 'alice', PASSWORD.alice!)), { state: 'signed-in' })
  const manualKey = await manualKeyOf(first)
  t.equal((await whoIs(other)).userId, 'alice', 'opening the wizard ends nobody')
  t.equal((await first.post('/2fa/setup/confirm', { code: '000000' }, { json: true })).statusCode, 422)
  t.equal((await whoIs(other)).userId, 'alice', 'nor does a wrong code')
  t.equal((await first.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })).statusCode, 200, 'confirmed')
  const after = await whoIs(other)
  t.equal(after.userId, null, 'the other session is no longer signed in…')
  t.equal(after.state, 'anonymous', '…it is ended')
  t.equal((await whoIs(first)).userId, 'alice', 'the session that enrolled stays signed in')
  t.match(answerOf(await first.post('/2fa/setup/finish', {}, { json: true })), { state: 'signed-in', next: '/2fa/settings' })
  t.equal((await whoIs(other)).userId, null, 'and stays ended after the wizard is done')
})
