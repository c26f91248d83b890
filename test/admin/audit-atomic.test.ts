// An admin change and its audit event are stored together or not at all. Two ways that used to
// split them: text the audit log can't store (a lone surrogate, which jsonb refuses, or control
// characters, which forge log lines) reaching the event after the change was made, and the event's
// insert failing after the change's statements ran outside its transaction. So: every admin input
// holding such text is a 422 before anything is read or changed (secret, recovery codes, sessions,
// events, policy), and when the event can't be stored the change it records is rolled back.
import t from 'tap'
import { eq, sql } from 'drizzle-orm'
import { accounts, events as eventsTable, recoveryCodes, sessions } from '../../plugin/db/schema.ts'
import { answerOf, type Client } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, login, type Host, type HostUser } from '../fixtures/host.ts'

const USERS: HostUser[] = [
  { id: 'admin', password: 'admin-password', role: 'admin' },
  { id: 'alice', password: 'alice-password' },
  { id: 'bob', password: 'bob-password' },
  { id: 'carol', password: 'carol-password' }
]
const passwordOf = (userId: string): string => USERS.find((u) => u.id === userId)!.password

async function enrolJson (host: Host, client: Client): Promise<string> {
  const { manualKey } = answerOf(await client.get('/2fa/setup', { json: true })) as { manualKey: string }
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  if (confirm.statusCode !== 200) throw new Error(`confirm failed: ${confirm.statusCode} ${confirm.body}`)
  await client.post('/2fa/setup/finish', {}, { json: true })
  host.clock.advance(30_000)
  return manualKey
}

async function signedIn (host: Host, userId: string, manualKey?: string): Promise<Client> {
  const client = host.client()
  const answer = answerOf(await login(client, userId, passwordOf(userId)))
  if (manualKey !== undefined) {
    const done = await client.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
    if (done.statusCode !== 200) throw new Error(`${userId}: code refused ${done.statusCode}`)
    host.clock.advance(30_000)
  } else if (answer.state !== 'signed-in' && answer.state !== 'pending-setup') {
    throw new Error(`${userId}: ${String(answer.state)}`)
  }
  return client
}

/** Everything an admin change to the user could touch, and the whole audit log. */
async function snapshot (host: Host, userId: string) {
  const { db } = host.database
  const account = (await db.select().from(accounts).where(eq(accounts.userId, userId)))[0]
  const codes = (await db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, userId)))
    .map((row) => `${row.digest}:${row.usedAt === null ? 'unused' : 'used'}`).sort()
  const stored = (await db.select({ sid: sessions.sidHash }).from(sessions).where(eq(sessions.userId, userId))).map((r) => r.sid).sort()
  const allEvents = await db.select({ id: eventsTable.id }).from(eventsTable)
  return {
    secret: account?.secret ?? null,
    enabledAt: account?.enabledAt?.toISOString() ?? null,
    required: account?.required ?? null,
    lockedUntil: account?.lockedUntil?.toISOString() ?? null,
    failedAttempts: account?.failedAttempts ?? null,
    codes,
    sessions: stored,
    events: allEvents.length,
    published: host.events.length,
    policy: await host.app.twoFactor.policy()
  }
}

/** A form is sent as UTF-8, where a lone surrogate becomes U+FFFD: only JSON can carry one. */
function formCanCarry (body: Record<string, unknown>): boolean {
  return Object.values(body).flat().every((value) => typeof value !== 'string' || value.isWellFormed())
}

async function homeOf (client: Client): Promise<string | null> {
  return JSON.parse((await client.get('/', { json: true })).body).userId ?? null
}

/**
 * Makes Postgres refuse the audit event of one type (a row trigger on the events table), as a
 * failure of that one statement would; on PGlite too. Returns the undo.
 */
async function failEventInsert (host: Host, type: string): Promise<() => Promise<void>> {
  const { db } = host.database
  await db.execute(sql.raw(`create or replace function two_factor.test_fail_event() returns trigger language plpgsql as $$
    begin if new.type = '${type}' then raise exception 'injected failure'; end if; return new; end $$`))
  await db.execute(sql.raw('drop trigger if exists test_fail_event on two_factor.events'))
  await db.execute(sql.raw('create trigger test_fail_event before insert on two_factor.events for each row execute function two_factor.test_fail_event()'))
  return async () => { await db.execute(sql.raw('drop trigger if exists test_fail_event on two_factor.events')) }
}

t.test('admin changes and their audit events', async (t) => {
  const host = await createHost(t, { users: USERS, twoFactor: { adminFreshWithin: '1h' } })
  const admin = host.client()
  await login(admin, 'admin', passwordOf('admin'))
  await enrolJson(host, admin)
  const bobWizard = await signedIn(host, 'bob')
  const bobKey = await enrolJson(host, bobWizard)
  const bob = await signedIn(host, 'bob', bobKey)

  await t.test('a reset whose reason holds a lone surrogate or a control character is 422 before anything changes', async (t) => {
    const before = await snapshot(host, 'bob')
    t.ok(before.secret, 'bob is enrolled')
    t.equal(before.codes.length, 10)
    t.equal(before.sessions.length, 2)

    // Sent as raw JSON text, so the escape arrives as the lone surrogate itself.
    const raw = await host.app.inject({
      method: 'POST',
      url: '/2fa/admin/users/bob/reset',
      headers: { cookie: [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; '), 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': admin.csrfToken! },
      payload: '{"reason":"lost phone \\ud800"}'
    })
    t.equal(raw.statusCode, 422, 'a lone surrogate: 422')
    t.equal(JSON.parse(raw.body).error, 'invalid_input')
    t.same(await snapshot(host, 'bob'), before, 'nothing changed')

    for (const reason of ['lost phone \udfff', 'lost\u0000phone', 'lost \u0007phone', 'lost phone\u001b[2J', 'lost\nphone', 'lost phone\u007f']) {
      // A form can't carry a lone surrogate (it is sent as UTF-8, where it becomes U+FFFD): JSON only.
      for (const json of reason.isWellFormed() ? [true, false] : [true]) {
        const refused = await admin.post('/2fa/admin/users/bob/reset', { reason }, { json })
        t.equal(refused.statusCode, 422, `${JSON.stringify(reason)} as ${json ? 'JSON' : 'a form'}: 422`)
        if (json) t.equal(JSON.parse(refused.body).error, 'invalid_input')
      }
    }
    const key = await admin.post('/2fa/admin/users/bob/reset', { reason: 'lost phone', ['note\ud800']: 'x' }, { json: true })
    t.equal(key.statusCode, 422, 'a lone surrogate in a field name too')
    t.same(await snapshot(host, 'bob'), before, 'secret, recovery codes, sessions and events all unchanged')
    t.equal(await homeOf(bob), 'bob', 'bob is still signed in')
  })

  await t.test('the policy’s role names and the other admin inputs: the same', async (t) => {
    const before = await snapshot(host, 'bob')
    const policyBefore = await admin.get('/2fa/admin/policy', { json: true })
    const refusals: Array<[string, Record<string, unknown>]> = [
      ['/2fa/admin/policy', { requiredRoles: ['staff\ud800'] }],
      ['/2fa/admin/policy', { requiredRoles: 'staff, \ud83d' }],
      ['/2fa/admin/policy', { exemptRoles: ['guest\u0000'] }],
      ['/2fa/admin/policy', { exemptRoles: 'guest\u007f' }],
      ['/2fa/admin/policy', { requireAll: 'true\ud800' }],
      ['/2fa/admin/policy', { graceDays: '7\u0007' }],
      ['/2fa/admin/users/bob/required', { required: 'false\ud800' }],
      ['/2fa/admin/users/bob/required', { required: false, returnTo: '/2fa/admin/users\u001b' }],
      ['/2fa/admin/users/bob/unlock', { returnTo: '/2fa/admin/users?q=\ud800' }],
      ['/2fa/admin/users/bob/reset', { reason: 'ok', returnTo: '/2fa/admin/users\u0000' }]
    ]
    // The break-glass exemption's reason goes into the audit log too (where the app has the route).
    if (host.app.hasRoute({ method: 'POST', url: '/2fa/admin/users/:id/exempt' })) {
      const until = new Date(host.clock.ms + 24 * 60 * 60_000).toISOString()
      refusals.push(['/2fa/admin/users/bob/exempt', { until, reason: 'travel \ud800' }], ['/2fa/admin/users/bob/exempt', { until, reason: 'travel\u0007' }])
    }
    for (const [url, body] of refusals) {
      for (const json of formCanCarry(body) ? [true, false] : [true]) {
        const refused = await admin.post(url, body, { json })
        t.equal(refused.statusCode, 422, `${url} ${JSON.stringify(body)} as ${json ? 'JSON' : 'a form'}: 422`)
      }
    }
    for (const url of ['/2fa/admin/users/bob%00/reset', '/2fa/admin/users/bob%07/unlock', '/2fa/admin/users/bob%7F/required']) {
      const refused = await admin.post(url, { reason: 'x', required: 'false' }, { json: true })
      t.equal(refused.statusCode, 422, `${url}: a control character in the user id is 422`)
    }
    for (const url of ['/2fa/admin/users?q=bo%07b', '/2fa/admin/users/bob%00', '/2fa/admin/events?user=bob%1b', '/2fa/admin/events?type=disabled%7f']) {
      const refused = await admin.get(url, { json: true })
      t.equal(refused.statusCode, 422, `GET ${url}: 422`)
    }
    t.same(await snapshot(host, 'bob'), before, 'nothing changed for bob, no event, the policy as it was')
    const policyAfter = await admin.get('/2fa/admin/policy', { json: true })
    t.same(answerOf(policyAfter), answerOf(policyBefore), 'the policy form shows what it showed')
  })

  await t.test('an admin reset is one transaction with its event: when the event fails, the reset is rolled back', async (t) => {
    const before = await snapshot(host, 'bob')
    const restore = await failEventInsert(host, 'disabled.by_admin')
    const failed = await admin.post('/2fa/admin/users/bob/reset', { reason: 'lost phone' }, { json: true })
    await restore()
    t.equal(failed.statusCode, 503, 'the reset fails with 503')
    const after = await snapshot(host, 'bob')
    t.equal(after.secret, before.secret, 'the secret is still there')
    t.same(after.codes, before.codes, 'the recovery codes are still there')
    t.same(after.sessions, before.sessions, 'bob’s sessions were not ended')
    t.equal(after.events, before.events, 'no event stored')
    t.notOk(host.events.slice(before.published).some((e) => e.type === 'disabled.by_admin' || e.type === 'sessions.ended'), 'nothing published')
    t.equal(await homeOf(bob), 'bob', 'bob is still signed in')
    t.equal((await host.app.twoFactor.status('bob')).enabled, true, 'bob still has 2FA')
    t.notMatch(failed.body, /injected|two_factor|events/, 'the answer says nothing of the cause')

    // The host's API goes through the same transaction.
    const restoreAgain = await failEventInsert(host, 'disabled.by_admin')
    await t.rejects(host.app.twoFactor.reset('bob', { actor: 'admin', reason: 'lost phone' }), 'fastify.twoFactor.reset fails as a whole')
    await restoreAgain()
    t.equal((await snapshot(host, 'bob')).secret, before.secret, 'still enrolled')
  })

  await t.test('lifting a requirement and saving the policy: the same', async (t) => {
    const carolWizard = await signedIn(host, 'carol')
    const on = await admin.post('/2fa/admin/users/carol/required', { required: true }, { json: true })
    t.equal(on.statusCode, 200)
    await enrolJson(host, carolWizard)
    const before = await snapshot(host, 'carol')
    t.equal(before.required, true)
    const restore = await failEventInsert(host, 'required.off')
    const failed = await admin.post('/2fa/admin/users/carol/required', { required: false }, { json: true })
    await restore()
    t.equal(failed.statusCode, 503)
    t.same(await snapshot(host, 'carol'), { ...before }, 'still required, still enrolled, same codes, sessions and events')

    const policy = await host.app.twoFactor.policy()
    const restorePolicy = await failEventInsert(host, 'policy.changed')
    const saved = await admin.post('/2fa/admin/policy', { requiredRoles: ['staff'] }, { json: true })
    await restorePolicy()
    t.equal(saved.statusCode, 503)
    t.same(await host.app.twoFactor.policy(), policy, 'the policy is unchanged')
  })

  await t.test('turning off is one transaction with its event: when the event fails, the secret stays', async (t) => {
    const aliceBrowser = await signedIn(host, 'alice')
    const aliceKey = await enrolJson(host, aliceBrowser)
    const other = await signedIn(host, 'alice', aliceKey)
    const before = await snapshot(host, 'alice')
    const restore = await failEventInsert(host, 'disabled')
    const failed = await aliceBrowser.post('/2fa/disable', { password: passwordOf('alice') }, { json: true })
    await restore()
    t.equal(failed.statusCode, 503, 'turning off fails with 503')
    const after = await snapshot(host, 'alice')
    t.equal(after.secret, before.secret, 'the secret is still there')
    t.same(after.codes, before.codes, 'the recovery codes too')
    t.same(after.sessions, before.sessions, 'no session ended')
    t.equal(after.events, before.events, 'no event')
    t.equal(await homeOf(aliceBrowser), 'alice')
    t.equal(await homeOf(other), 'alice', 'the other browser is still signed in')

    const done = await aliceBrowser.post('/2fa/disable', { password: passwordOf('alice') }, { json: true })
    t.equal(done.statusCode, 200, 'with the database well, it works')
    t.equal((await snapshot(host, 'alice')).secret, null)
    t.ok(host.events.some((e) => e.type === 'disabled' && e.userId === 'alice'))
  })

  await t.test('with the event stored, the reset goes through', async (t) => {
    const reset = await admin.post('/2fa/admin/users/bob/reset', { reason: 'lost phone' }, { json: true })
    t.equal(reset.statusCode, 200)
    const after = await snapshot(host, 'bob')
    t.equal(after.secret, null)
    t.same(after.codes, [])
    t.same(after.sessions, [])
    const stored = await host.database.db.select().from(eventsTable).where(eq(eventsTable.type, 'disabled.by_admin'))
    t.equal(stored.length, 1, 'one event')
    t.match(stored[0], { userId: 'bob', actor: 'admin', details: { reason: 'lost phone' } })
  })
})
