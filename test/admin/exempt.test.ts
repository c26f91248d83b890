// Break-glass exemptions from the admin panel. An admin exempts one account from every rule
// until a date, with a reason: the row shows it (and a button to end it), the account signs in
// with its password alone while it lasts, and it ends by itself at the date. Each change is
// audited (exempt.on with the date and reason, exempt.off). An admin can't exempt their own
// account (another admin or the CLI can), and their own row says why its actions are missing.
// Page, htmx fragment, plain form and JSON alike; a bad date or a missing reason changes nothing.
import t from 'tap'
import { eq } from 'drizzle-orm'
import { accounts } from '../../plugin/db/schema.ts'
import { rowHtmlId } from '../../plugin/routes/admin/user-row.ts'
import { answerOf, type Client } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, login, type Host } from '../fixtures/host.ts'

const DAY = 24 * 60 * 60_000

/** The admin enrols through the forced wizard: a code proven in this session (admin mode). */
async function adminSignedIn (host: Host): Promise<Client> {
  const client = host.client()
  t.equal(answerOf(await login(client, 'admin', 'admin-password')).state, 'pending-setup')
  const { manualKey } = answerOf(await client.get('/2fa/setup', { json: true })) as { manualKey: string }
  t.equal((await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })).statusCode, 200)
  t.equal((await client.post('/2fa/setup/finish', {}, { json: true })).statusCode, 200)
  return client
}

async function exemption (host: Host, userId: string) {
  const row = (await host.database.db.select().from(accounts).where(eq(accounts.userId, userId)))[0]
  return { until: row?.exemptUntil?.toISOString() ?? null, reason: row?.exemptReason ?? null }
}

function rowIn (html: string, userId: string): string {
  const id = rowHtmlId(userId)
  const start = html.indexOf(`<tr id="${id}"`)
  return start === -1 ? '' : html.slice(start, html.indexOf('</tr>', start) + 5)
}

async function bobSignsIn (host: Host): Promise<string> {
  return String(answerOf(await login(host.client(), 'bob', 'bob-password')).state)
}

t.test('an exemption from the panel: shown, effective, ends by itself, audited', async (t) => {
  const host = await createHost(t)
  const admin = await adminSignedIn(host)
  await host.app.twoFactor.setRequired('bob', true, { actor: 'cli' })
  t.equal(await bobSignsIn(host), 'pending-setup', 'bob must set up 2FA')

  const list = await admin.get('/2fa/admin/users')
  const bobRow = rowIn(list.body, 'bob')
  t.match(bobRow, /<label for="[^"]+-until">Exempt until<\/label>/, 'the row has a labelled date field')
  t.match(bobRow, /<label for="[^"]+-exempt-reason">Reason for the exemption<\/label>/, 'and a labelled reason')
  t.match(bobRow, /action="\/2fa\/admin\/users\/bob\/exempt"/, 'a plain form, for browsers without JavaScript')

  const until = new Date(host.clock.ms + 3 * DAY)
  const answer = await admin.post('/2fa/admin/users/bob/exempt', { until: until.toISOString().slice(0, 16), reason: 'phone lost abroad' }, { json: true })
  t.equal(answer.statusCode, 200)
  t.match(answerOf(answer), { id: 'bob', required: false, exemptReason: 'phone lost abroad' })
  t.equal(new Date(String(answerOf(answer).exemptUntil)).getTime(), Math.floor(until.getTime() / 60_000) * 60_000)
  t.match(host.events.find((e) => e.type === 'exempt.on'), { userId: 'bob', actor: 'admin', details: { reason: 'phone lost abroad' } })

  const fragment = await admin.get('/2fa/admin/users/bob', { htmx: true })
  t.match(fragment.body, /exempt until [^<]*: phone lost abroad/, 'the row shows until when, and why')
  t.match(fragment.body, /End exemption/, 'and a way to end it early')
  t.equal(await bobSignsIn(host), 'signed-in', 'while it lasts, the password is enough')

  host.clock.advance(3 * DAY + 60_000)
  t.equal(await bobSignsIn(host), 'pending-setup', 'it ended by itself')
  t.notMatch((await admin.get('/2fa/admin/users/bob', { htmx: true })).body, /End exemption/, 'and the row no longer shows it')
})

t.test('ending an exemption early, by htmx and by a plain form', async (t) => {
  const host = await createHost(t)
  const admin = await adminSignedIn(host)
  const until = new Date(host.clock.ms + 10 * DAY).toISOString().slice(0, 10)

  const byForm = await admin.post('/2fa/admin/users/alice/exempt', { until, reason: 'travel', returnTo: '/2fa/admin/users?q=ali' })
  t.equal(byForm.statusCode, 303, 'a plain form goes back to the list')
  t.equal(byForm.headers.location, '/2fa/admin/users?q=ali', 'the list it came from')
  t.equal((await exemption(host, 'alice')).reason, 'travel')

  const ended = await admin.post('/2fa/admin/users/alice/exempt', { until: '' }, { htmx: true })
  t.equal(ended.statusCode, 200)
  t.match(ended.body, new RegExp(`<tr id="${rowHtmlId('alice')}"`), 'htmx gets the row to swap')
  t.match(ended.body, /is no longer exempt/)
  t.same(await exemption(host, 'alice'), { until: null, reason: null })
  t.ok(host.events.some((e) => e.type === 'exempt.off' && e.userId === 'alice' && e.actor === 'admin'), 'exempt.off is audited')
})

t.test('bad input changes nothing and says why', async (t) => {
  const host = await createHost(t)
  const admin = await adminSignedIn(host)
  const soon = new Date(host.clock.ms + DAY).toISOString()
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ until: '2020-01-01', reason: 'x' }, /in the future/],
    [{ until: new Date(host.clock.ms + 400 * DAY).toISOString(), reason: 'x' }, /at most a year/],
    [{ until: 'next tuesday', reason: 'x' }, /such as 2026-12-31/],
    [{ until: soon }, /Give a reason/],
    [{ until: soon, reason: '   ' }, /Give a reason/],
    [{ until: soon, reason: 'x'.repeat(501) }, /./],
    [{ until: '' }, /Give the date/]
  ]
  for (const [body, message] of cases) {
    const json = await admin.post('/2fa/admin/users/bob/exempt', body, { json: true })
    t.equal(json.statusCode, 422, `${JSON.stringify(body).slice(0, 60)}: 422`)
    t.match(answerOf(json), { error: 'invalid_input', message })
    const page = await admin.post('/2fa/admin/users/bob/exempt', body, { htmx: true })
    t.equal(page.statusCode, 422)
    t.match(page.body, /role="alert"[^>]*>[^<]+</, 'the row comes back with the error in it')
  }
  // A JSON body can carry what a form can't: a list where one date belongs.
  const list = await admin.post('/2fa/admin/users/bob/exempt', { until: ['2027-01-01'], reason: 'x' }, { json: true })
  t.equal(list.statusCode, 422)
  t.match(answerOf(list), { error: 'invalid_input', message: /such as 2026-12-31/ })
  t.same(await exemption(host, 'bob'), { until: null, reason: null }, 'nothing changed')
  t.notOk(host.events.some((e) => e.type === 'exempt.on'), 'nothing audited')
})

t.test('an admin cannot exempt their own account; their row says why', async (t) => {
  const host = await createHost(t)
  const admin = await adminSignedIn(host)
  const until = new Date(host.clock.ms + 2 * DAY).toISOString()
  const json = await admin.post('/2fa/admin/users/admin/exempt', { until, reason: 'me' }, { json: true })
  t.equal(json.statusCode, 409)
  t.match(answerOf(json), { error: 'not_allowed_by_policy', message: /another admin, or the two-factor CLI/ })
  t.same(await exemption(host, 'admin'), { until: null, reason: null })

  const own = rowIn((await admin.get('/2fa/admin/users')).body, 'admin')
  t.notMatch(own, /\/exempt"/, 'no exempt form on their own row')
  t.notMatch(own, /\/reset"/, 'no reset form either')
  t.match(own, /This is your account: another admin, or the two-factor CLI, can/, 'the row says why')

  // Another admin can.
  host.users.set('root', { id: 'root', password: 'root-password', role: 'admin' })
  await host.app.twoFactor.onUserCreated('root')
  const rootClient = host.client()
  t.equal(answerOf(await login(rootClient, 'root', 'root-password')).state, 'pending-setup')
  const { manualKey } = answerOf(await rootClient.get('/2fa/setup', { json: true })) as { manualKey: string }
  host.clock.advance(30_000)
  await rootClient.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  await rootClient.post('/2fa/setup/finish', {}, { json: true })
  const byRoot = await rootClient.post('/2fa/admin/users/admin/exempt', { until, reason: 'admin lost phone' }, { json: true })
  t.equal(byRoot.statusCode, 200, 'another admin exempts them')
  t.equal((await exemption(host, 'admin')).reason, 'admin lost phone')
})
