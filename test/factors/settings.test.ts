// Self-service settings at the HTTP level, as a browser and an API client use them:
// every action, its refusals (wrong password 422, policy 409) leaving everything as it was,
// regeneration invalidating the old set at once, the low-codes warning, and the audit trail.
import t from 'tap'
import { eq, sql } from 'drizzle-orm'
import { events as eventsTable } from '../../plugin/db/schema.ts'
import { type Client, answerOf } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, passwordStep, type Harness } from '../helpers/demo.ts'

const PASSWORD = 'a-long-enough-password-1'
const users = ['admin', 'alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'].map((username) => ({
  username, password: PASSWORD, role: username === 'admin' ? 'admin' : 'user'
}))

const h = await createHarness(t, { users })

const codesIn = (html: string): string[] => [...html.matchAll(/<li><code>([0-9A-Z-]{19})<\/code><\/li>/g)].map((m) => m[1]!)

/** Everything a refused action must leave untouched. */
async function snapshot (harness: Harness, userId: string) {
  const status = await harness.app.twoFactor.status(userId)
  const stored = await harness.database.db.select().from(eventsTable).where(eq(eventsTable.userId, userId))
  return { status, events: stored.length, hooked: harness.events.filter((e) => e.userId === userId).length }
}

/** A fresh sign-in that answers the challenge with a recovery code. */
async function signInWithRecoveryCode (harness: Harness, username: string, code: string) {
  const client = harness.client()
  const login = await passwordStep(client, username, PASSWORD)
  if (login.headers.location !== '/2fa/challenge') throw new Error(`expected the challenge, got ${String(login.headers.location)}`)
  await client.get('/2fa/challenge')
  return await client.post('/2fa/challenge', { recoveryCode: code })
}

async function signInWithCode (harness: Harness, username: string, manualKey: string): Promise<Client> {
  harness.clock.advance(30_000)
  const client = harness.client()
  await passwordStep(client, username, PASSWORD)
  await client.get('/2fa/challenge')
  const done = await client.post('/2fa/challenge', { code: codeFor(manualKey, harness.clock.ms) })
  if (done.statusCode !== 303) throw new Error(`sign-in with a code failed: ${done.statusCode}`)
  return client
}

t.test('status page: on/off, since when, codes left, required or not — as a page and as JSON', async (t) => {
  const client = h.client()
  await passwordStep(client, 'bob', PASSWORD)
  const off = await client.get('/2fa/settings')
  t.equal(off.statusCode, 200)
  t.match(off.body, /tf-badge tf-off">Off</)
  t.match(off.body, /<dd id="tf-required">No<\/dd>/)
  t.match(off.body, /href="\/2fa\/setup">Turn on two-factor authentication</, 'turning on leads to the wizard')
  t.notMatch(off.body, /action="\/2fa\/disable"/, 'nothing to turn off')

  const { client: enrolled } = await enrol(h, 'carol', PASSWORD)
  const on = await enrolled.get('/2fa/settings')
  t.match(on.body, /tf-badge tf-on">On</)
  t.match(on.body, /<dt>On since<\/dt><dd><time datetime="2026-11-22T[0-9:.]+Z">22 November 2026<\/time><\/dd>/)
  t.match(on.body, /<dd id="tf-codes-left">10 of 10<\/dd>/)
  t.notMatch(on.body, /tf-low-codes/, 'no warning with ten codes')
  t.match(on.body, /action="\/2fa\/recovery-codes"/)
  t.match(on.body, /action="\/2fa\/disable"/)

  const json = await enrolled.get('/2fa/settings', { json: true })
  t.equal(json.statusCode, 200)
  t.match(JSON.parse(json.body), { enabled: true, enabledAt: /^2026-11-22T/, recoveryCodesLeft: 10, required: false, requiredBy: null, csrfToken: String })

  const anonymous = await h.client().get('/2fa/settings')
  t.equal(anonymous.statusCode, 401, 'nobody signed in: nothing to show')
})

t.test('turn off: a wrong password is 422 and changes nothing; the right one clears the secret and codes', async (t) => {
  const { client, manualKey, recoveryCodes } = await enrol(h, 'alice', PASSWORD)
  const before = await snapshot(h, 'alice')

  for (const password of ['wrong-password', '', ['a', 'b']]) {
    const page = await client.post('/2fa/disable', { password })
    t.equal(page.statusCode, 422, `password ${JSON.stringify(password)}: 422`)
    t.match(page.body, /<div id="tf-disable-error" class="tf-error" role="alert" aria-live="assertive" tabindex="-1">That password is not right\.<\/div>/, 'the error sits by the form')
    t.match(page.body, /id="tf-disable-password"[^>]*aria-describedby="tf-disable-hint tf-disable-error"[^>]*aria-invalid="true"/)
  }
  const json = await client.post('/2fa/disable', { password: 'wrong-password' }, { json: true })
  t.equal(json.statusCode, 422)
  t.same(answerOf(json), { error: 'wrong_password', message: 'That password is not right.' })
  const partial = await client.post('/2fa/disable', { password: 'wrong-password' }, { htmx: true })
  t.equal(partial.statusCode, 422, 'htmx 4 swaps the 422 fragment')
  t.match(partial.body, /^\s*<section id="tf-settings"/, 'a fragment for the swap…')
  t.notMatch(partial.body, /<html|<main/, '…without the layout')
  t.match(partial.body, /data-focus="#tf-disable-error"/, 'focus goes to the error after the swap')

  t.same(await snapshot(h, 'alice'), before, 'nothing changed: status, stored events, hook calls')
  t.equal((await signInWithRecoveryCode(h, 'alice', recoveryCodes[0]!)).statusCode, 200, 'the old codes still work')
  await signInWithCode(h, 'alice', manualKey)

  const done = await client.post('/2fa/disable', { password: PASSWORD })
  t.equal(done.statusCode, 200)
  t.match(done.body, /id="tf-settings-notice" class="tf-notice" role="status" tabindex="-1">Two-factor authentication is off\./)
  t.match(done.body, /data-focus="#tf-settings-notice"/)
  t.match(done.body, /tf-badge tf-off">Off</)
  const status = await h.app.twoFactor.status('alice')
  t.match(status, { enabled: false, enabledAt: null, recoveryCodesLeft: 0 })
  t.equal((await client.get('/')).statusCode, 200, 'the session that turned it off stays signed in')

  const again = h.client()
  const login = await passwordStep(again, 'alice', PASSWORD)
  t.equal(login.headers.location, '/', 'no code asked any more')
  const disabled = h.events.filter((e) => e.type === 'disabled' && e.userId === 'alice')
  t.equal(disabled.length, 1, 'audited and passed to onEvent')
  t.equal(disabled[0]!.actor, 'alice')
})

t.test('turn off while policy requires 2FA: 409, the page says why and who can lift it, nothing changed', async (t) => {
  const { client: admin } = await enrol(h, 'admin', PASSWORD)
  const page = await admin.get('/2fa/settings')
  // New admin accounts get the per-user requirement by default.
  t.match(page.body, /<dd id="tf-required">Yes \(for this account by an admin\)<\/dd>/)
  t.match(page.body, /id="tf-disable-refused">Two-factor authentication is required for your account \(for this account by an admin\), so it can’t be turned off here\. An administrator can lift the requirement\./)
  t.notMatch(page.body, /action="\/2fa\/disable"/, 'no form that can only fail')

  const before = await snapshot(h, 'admin')
  const refused = await admin.post('/2fa/disable', { password: PASSWORD })
  t.equal(refused.statusCode, 409)
  t.match(refused.body, /id="tf-settings-error"[^>]*>Two-factor authentication is required for your account \(for this account by an admin\), so it can’t be turned off\. An administrator can lift the requirement\./, 'the reason shows at the top, where focus goes')
  t.match(refused.body, /data-focus="#tf-settings-error"/)
  const json = await admin.post('/2fa/disable', { password: PASSWORD }, { json: true })
  t.equal(json.statusCode, 409)
  t.match(JSON.parse(json.body), { error: 'not_allowed_by_policy', message: /required for your account/ })
  t.same(await snapshot(h, 'admin'), before, 'nothing changed')

  const { client: dave } = await enrol(h, 'dave', PASSWORD)
  const policy = await h.app.twoFactor.policy()
  await h.app.twoFactor.setPolicy({ ...policy, requiredRoles: ['auditor'] }, { actor: 'admin' })
  await h.database.db.execute(sql`update demo_users set role = 'auditor' where id = 'dave'`)
  const daveBefore = await snapshot(h, 'dave')
  const daveRefused = await dave.post('/2fa/disable', { password: PASSWORD })
  t.equal(daveRefused.statusCode, 409, 'also when a role requires it')
  t.match(daveRefused.body, /required for your account \(role auditor\)/)
  t.same(await snapshot(h, 'dave'), daveBefore)
})

t.test('regenerate: a wrong password is 422 and changes nothing; then old codes fail at once and new ones work once', async (t) => {
  const { client, recoveryCodes: oldCodes } = await enrol(h, 'erin', PASSWORD)
  const before = await snapshot(h, 'erin')
  const wrong = await client.post('/2fa/recovery-codes', { password: 'wrong-password' })
  t.equal(wrong.statusCode, 422)
  t.match(wrong.body, /<div id="tf-regenerate-error"[^>]*>That password is not right\.<\/div>/)
  t.equal(codesIn(wrong.body).length, 0, 'no codes on a refusal')
  const wrongJson = await client.post('/2fa/recovery-codes', { password: 'wrong-password' }, { json: true })
  t.same(answerOf(wrongJson), { error: 'wrong_password', message: 'That password is not right.' })
  t.same(await snapshot(h, 'erin'), before, 'nothing changed')

  const page = await client.post('/2fa/recovery-codes', { password: PASSWORD })
  t.equal(page.statusCode, 200)
  t.equal(page.headers['cache-control'], 'no-store', 'the codes are not cached')
  const newCodes = codesIn(page.body)
  t.equal(newCodes.length, 10)
  t.equal(new Set([...newCodes, ...oldCodes]).size, 20, 'all new')
  t.match(page.body, /New recovery codes are ready\. Your old codes no longer work\./)
  t.match(page.body, /Recovery codes for Demo App \(erin\)/, 'the panel names the account')

  const json = await client.post('/2fa/recovery-codes', { password: PASSWORD }, { json: true })
  const { recoveryCodes: latest } = JSON.parse(json.body) as { recoveryCodes: string[] }
  t.equal(latest.length, 10, 'JSON clients get the codes too')

  for (const code of [oldCodes[1]!, newCodes[0]!]) {
    const refused = await signInWithRecoveryCode(h, 'erin', code)
    t.equal(refused.statusCode, 422, 'replaced codes fail at once')
  }
  const first = await signInWithRecoveryCode(h, 'erin', latest[0]!.toLowerCase().replace(/-/g, ' '))
  t.equal(first.statusCode, 200, 'a new code works (any case, spaces for dashes)')
  t.match(first.body, /You have 9 recovery codes left\./)
  t.equal((await signInWithRecoveryCode(h, 'erin', latest[0]!)).statusCode, 422, '…once')

  const regenerated = h.events.filter((e) => e.type === 'recovery.regenerated' && e.userId === 'erin')
  t.equal(regenerated.length, 2, 'each regeneration is audited and passed to onEvent')
  t.equal(regenerated[0]!.actor, 'erin')
})

t.test('regenerate while 2FA is off: 409, nothing made', async (t) => {
  const client = h.client()
  await passwordStep(client, 'frank', PASSWORD)
  await client.get('/2fa/settings')
  const refused = await client.post('/2fa/recovery-codes', { password: PASSWORD })
  t.equal(refused.statusCode, 409)
  t.match(refused.body, /id="tf-settings-error"[^>]*>Turn on two-factor authentication first\./)
  t.equal((await h.app.twoFactor.status('frank')).recoveryCodesLeft, 0)
})

t.test('low-codes warning at 3 or fewer: on the settings page and after a recovery-code sign-in', async (t) => {
  const { client, recoveryCodes } = await enrol(h, 'grace', PASSWORD)
  for (let used = 1; used <= 8; used++) {
    const page = await signInWithRecoveryCode(h, 'grace', recoveryCodes[used - 1]!)
    const left = 10 - used
    t.equal(page.statusCode, 200)
    if (left <= 3) {
      t.match(page.body, new RegExp(`id="tf-low-codes" class="tf-warning" role="status">You have <strong>${left}</strong> recovery codes? left\\. <a href="/2fa/settings">Create new recovery codes</a>`), `${left} left: warned after sign-in`)
    } else {
      t.match(page.body, new RegExp(`You have ${left} recovery codes left\\.`))
      t.notMatch(page.body, /tf-low-codes/, `${left} left: no warning`)
    }
    const settings = await client.get('/2fa/settings')
    t.equal(/id="tf-low-codes"/.test(settings.body), left <= 3, `${left} left: settings warns ${left <= 3 ? '' : 'not '}`)
  }
  const settings = await client.get('/2fa/settings')
  t.match(settings.body, /You have only <strong>2<\/strong> recovery codes left\. Create new ones below/)
})

t.test('recovery codes are never stored in plaintext: not in any table, not in the session', async (t) => {
  const { client, recoveryCodes } = await enrol(h, 'heidi', PASSWORD)
  const page = await client.post('/2fa/recovery-codes', { password: PASSWORD })
  const codes = [...recoveryCodes, ...codesIn(page.body)]
  t.equal(codes.length, 20)
  const dump = await h.database.db.execute(sql`
    select (select coalesce(string_agg(data::text, ' '), '') from two_factor.sessions)
      || (select coalesce(string_agg(digest, ' '), '') from two_factor.recovery_codes)
      || (select coalesce(string_agg(details::text, ' '), '') from two_factor.events) as everything`)
  const rows = (Array.isArray(dump) ? dump : (dump as { rows: unknown[] }).rows) as Array<{ everything: string }>
  const everything = rows[0]!.everything.toUpperCase()
  t.ok(everything.length > 100, 'there is something to search')
  for (const code of codes) {
    t.notOk(everything.includes(code) || everything.includes(code.replace(/-/g, '')), 'code absent')
  }
})

t.test('every settings change is audited and handed to onEvent, with nothing secret in it', async (t) => {
  const stored = await h.database.db.select().from(eventsTable)
  const types = new Set(stored.map((e) => e.type))
  for (const type of ['enrolment.started', 'enrolment.completed', 'recovery.regenerated', 'disabled']) {
    t.ok(types.has(type), `${type} stored`)
    t.ok(h.events.some((e) => e.type === type), `${type} passed to onEvent`)
  }
  t.same(h.events.map((e) => e.id).sort((a, b) => a - b), stored.map((e) => e.id).sort((a, b) => a - b), 'onEvent saw exactly the stored events')
  const text = JSON.stringify(h.events)
  t.notMatch(text, PASSWORD, 'no password in any event')
  t.notMatch(text, /[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}/, 'no recovery code in any event')
})
