// The admin panel: only admins get in; each row action swaps just its row and is
// audited with the acting admin; turning a requirement off clears the user's 2FA; a reset forces
// re-enrolment; unlock clears a lock. One harness for the file: the steps build on each other.
import t from 'tap'
import type { RouteOptions } from 'fastify'
import { eq } from 'drizzle-orm'
import { accounts, recoveryCodes } from '../../plugin/db/schema.ts'
import type { AccountsAdapter } from '../../plugin/index.ts'
import { verifyPassword } from '../../demo-app/passwords.ts'
import { demoUsers, type DemoUser } from '../../demo-app/schema.ts'
import { rowHtmlId } from '../../plugin/routes/admin/user-row.ts'
import type { Client } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, manualKeyFrom, PASSWORDS, passwordStep, type Harness } from '../helpers/demo.ts'

const ALICE_ROW = rowHtmlId('alice')
const BOB_ROW = rowHtmlId('bob')

async function accountOf (h: Harness, userId: string) {
  return (await h.database.db.select().from(accounts).where(eq(accounts.userId, userId)))[0]
}

async function codesOf (h: Harness, userId: string): Promise<number> {
  return (await h.database.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, userId))).length
}

function eventsOf (h: Harness, type: string, userId?: string) {
  return h.events.filter((e) => e.type === type && (userId === undefined || e.userId === userId))
}

/** The row `<tr>` with this id, from a page or a partial. */
function rowIn (html: string, id: string): string {
  const start = html.indexOf(`<tr id="${id}"`)
  if (start === -1) return ''
  return html.slice(start, html.indexOf('</tr>', start) + 5)
}

async function signIn (h: Harness, username: keyof typeof PASSWORDS, manualKey?: string): Promise<Client> {
  const client = h.client()
  const login = await passwordStep(client, username, PASSWORDS[username])
  if (manualKey !== undefined) {
    if (login.headers.location !== '/2fa/challenge') throw new Error(`${username}: expected the challenge, got ${String(login.headers.location)}`)
    await client.get('/2fa/challenge')
    const done = await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
    if (done.statusCode !== 303) throw new Error(`${username}: code refused (${done.statusCode})`)
    h.clock.advance(30_000)
  }
  return client
}

t.test('admin panel', async (t) => {
  const adminRoutes: Array<{ method: string, url: string }> = []
  const h = await createHarness(t, {
    app: {
      onRoute: (route: RouteOptions) => {
        if (!route.url.startsWith('/2fa/admin')) return
        for (const method of [route.method].flat()) if (method !== 'HEAD') adminRoutes.push({ method, url: route.url })
      }
    }
  })
  const concrete = (url: string) => url.replace(':id', 'bob')

  await t.test('a signed-in user who is not an admin gets 403 on every admin route, each audited', async (t) => {
    t.ok(adminRoutes.length >= 9, `found ${adminRoutes.length} admin routes`)
    const alice = await signIn(h, 'alice')
    t.equal((await alice.get('/')).statusCode, 200, 'alice is signed in (no 2FA required)')
    const deniedBefore = eventsOf(h, 'admin.denied', 'alice').length
    for (const route of adminRoutes) {
      const page = route.method === 'GET' ? await alice.get(concrete(route.url)) : await alice.post(concrete(route.url), { required: 'false', reason: 'x' })
      t.equal(page.statusCode, 403, `${route.method} ${route.url}: 403`)
      t.equal(eventsOf(h, 'admin.denied', 'alice').length, deniedBefore + 1, `${route.method} ${route.url}: one admin.denied for all of them (once per actor per 10 minutes)`)
      const json = route.method === 'GET' ? await alice.get(concrete(route.url), { json: true }) : await alice.post(concrete(route.url), {}, { json: true })
      t.equal(json.statusCode, 403)
      t.equal(JSON.parse(json.body).error, 'forbidden', `${route.method} ${route.url}: JSON says forbidden`)
    }
    const denied = eventsOf(h, 'admin.denied', 'alice').at(-1)!
    t.match(denied.details, { method: String, route: /^\/2fa\/admin/ }, 'the event names the route')
    h.clock.advance(10 * 60_000)
    await alice.get('/2fa/admin/users')
    t.equal(eventsOf(h, 'admin.denied', 'alice').length, deniedBefore + 2, 'ten minutes later, the next refusal is audited again')
    t.equal((await accountOf(h, 'bob'))?.required ?? null, null, 'nothing changed for bob')

    const anonymous = h.client()
    const before = h.events.length
    const anon = await anonymous.get('/2fa/admin/users')
    t.equal(anon.statusCode, 403, 'anonymous: 403 too')
    t.match(anon.body, /href="\/login"/, 'with a way to sign in')
    t.equal(h.events.length, before, 'no event for a request nobody can be named for')
  })

  let admin: Client
  let bobKey: string
  await t.test('the admin enrols (forced wizard) and sees the users list', async (t) => {
    const login = await passwordStep(h.client(), 'admin', PASSWORDS.admin)
    t.equal(login.headers.location, '/2fa/setup', 'admins must set up 2FA')
    admin = (await enrol(h, 'admin', PASSWORDS.admin)).client
    bobKey = (await enrol(h, 'bob', PASSWORDS.bob)).manualKey

    const entry = await admin.get('/2fa/admin')
    t.equal(entry.statusCode, 303)
    t.equal(entry.headers.location, '/2fa/admin/users')
    const list = await admin.get('/2fa/admin/users')
    t.equal(list.statusCode, 200)
    t.match(list.body, /<meta name="csrf-token"/)
    t.match(rowIn(list.body, rowHtmlId('admin')), /✓<\/span> enrolled/)
    // onUserCreated stored the admin default as the account's flag.
    t.match(rowIn(list.body, rowHtmlId('admin')), /<td class="tf-user-rule">required for this account by an admin<\/td>/, 'the rule is shown')
    t.match(rowIn(list.body, ALICE_ROW), /—<\/span> not required/)
    t.match(rowIn(list.body, BOB_ROW), /✓<\/span> enrolled/)
    t.match(rowIn(list.body, rowHtmlId('admin')), /\(you\)/)

    const json = JSON.parse((await admin.get('/2fa/admin/users', { json: true })).body)
    t.equal(json.total, 3)
    t.same(json.users.map((u: { id: string }) => u.id), ['admin', 'alice', 'bob'], 'in the host’s order')
    t.match(json.users[1], { id: 'alice', label: 'alice', status: 'not-required', requiredBy: null, lockedUntil: null })
    t.match(json.users[0], { id: 'admin', status: 'enrolled', required: true, requiredFlag: true })
    t.type(json.csrfToken, 'string')

    const search = JSON.parse((await admin.get('/2fa/admin/users?q=bo', { json: true })).body)
    t.same(search.users.map((u: { id: string }) => u.id), ['bob'], 'search goes to the host')
    const enrolled = JSON.parse((await admin.get('/2fa/admin/users?status=enrolled', { json: true })).body)
    t.same(enrolled.users.map((u: { id: string }) => u.id), ['admin', 'bob'], 'status filter')
    const notRequired = JSON.parse((await admin.get('/2fa/admin/users?status=not-required', { json: true })).body)
    t.same(notRequired.users.map((u: { id: string }) => u.id), ['alice'])
    const bad = await admin.get('/2fa/admin/users?status=nonsense', { json: true })
    t.equal(bad.statusCode, 422)
    t.equal(JSON.parse(bad.body).error, 'invalid_input')
    t.equal((await admin.get('/2fa/admin/users?page=0', { json: true })).statusCode, 422)

    const partial = await admin.get('/2fa/admin/users?q=ali', { htmx: true })
    t.match(partial.body, /^\s*<section id="tf-admin-users"/, 'htmx search gets the list region')
    t.notMatch(partial.body, /<html/)
  })

  await t.test('require on, inline: the row swaps and the event names the admin', async (t) => {
    await admin.get('/2fa/admin/users')
    const row = rowIn((await admin.get('/2fa/admin/users')).body, ALICE_ROW)
    t.match(row, new RegExp(`hx-post="/2fa/admin/users/alice/required" hx-target="#${ALICE_ROW}" hx-swap="outerHTML"`), 'the button swaps its row')
    t.match(row, /<form class="tf-inline" method="post" action="\/2fa\/admin\/users\/alice\/required">/, 'a real form behind it')

    const swap = await admin.post('/2fa/admin/users/alice/required', { required: 'true' }, { htmx: true })
    t.equal(swap.statusCode, 200)
    t.match(swap.body, new RegExp(`^\\s*<tr id="${ALICE_ROW}"`), 'the answer is the row alone')
    t.notMatch(swap.body, /<html|<table/)
    t.match(swap.body, /⏳<\/span> awaiting setup/)
    t.match(swap.body, /required for this account by an admin/)
    t.match(swap.body, /role="status">Two-factor is now required for alice/)
    t.equal((await accountOf(h, 'alice'))?.required, true)
    t.match(eventsOf(h, 'required.on', 'alice').at(-1), { actor: 'admin' })

    const next = await passwordStep(h.client(), 'alice', PASSWORDS.alice)
    t.equal(next.headers.location, '/2fa/setup', 'alice is now asked to set up 2FA')

    const json = await admin.post('/2fa/admin/users/alice/required', { required: true }, { json: true })
    t.match(JSON.parse(json.body), { id: 'alice', status: 'awaiting', required: true, requiredBy: 'required for this account by an admin' }, 'JSON gets the row')
    const garbage = await admin.post('/2fa/admin/users/alice/required', { required: 'maybe' }, { htmx: true })
    t.equal(garbage.statusCode, 422, 'anything but true/false is refused')
    t.match(garbage.body, /role="alert" aria-live="assertive">Say required=true/)
    t.equal((await admin.post('/2fa/admin/users/nobody/required', { required: 'true' }, { json: true })).statusCode, 404)
  })

  await t.test('require off clears the secret and codes: the next sign-in is password only', async (t) => {
    const bobSession = await signIn(h, 'bob', bobKey)
    t.equal((await bobSession.get('/')).statusCode, 200)
    await admin.post('/2fa/admin/users/bob/required', { required: 'true' }, { htmx: true })
    t.ok((await accountOf(h, 'bob'))?.secret, 'bob has a secret')
    t.equal(await codesOf(h, 'bob'), 10)

    const row = rowIn((await admin.get('/2fa/admin/users')).body, BOB_ROW)
    t.match(row, /hx-confirm="Stop requiring two-factor for bob\?/, 'the destructive toggle asks first')
    const off = await admin.post('/2fa/admin/users/bob/required', { required: 'false' }, { htmx: true })
    t.equal(off.statusCode, 200)
    t.match(off.body, /—<\/span> not required/)
    const account = await accountOf(h, 'bob')
    t.equal(account?.secret, null, 'secret cleared')
    t.equal(account?.enabledAt, null)
    t.equal(account?.required, false)
    t.equal(await codesOf(h, 'bob'), 0, 'recovery codes cleared')
    t.match(eventsOf(h, 'required.off', 'bob').at(-1), { actor: 'admin' })
    t.equal((await bobSession.get('/')).headers.location, '/login', 'bob’s open session ended with his old factor')

    const login = await passwordStep(h.client(), 'bob', PASSWORDS.bob)
    t.equal(login.headers.location, '/', 'bob signs in with the password alone')
  })

  await t.test('an admin can’t lift their own requirement or reset themselves here', async (t) => {
    const self = await admin.post('/2fa/admin/users/admin/required', { required: 'false' }, { json: true })
    t.equal(self.statusCode, 409)
    t.equal(JSON.parse(self.body).error, 'not_allowed_by_policy')
    const reset = await admin.post('/2fa/admin/users/admin/reset', { reason: 'oops' }, { htmx: true })
    t.equal(reset.statusCode, 409)
    t.match(reset.body, new RegExp(`^\\s*<tr id="${rowHtmlId('admin')}"`), 'htmx gets the row back, with the reason')
    t.ok((await accountOf(h, 'admin'))?.secret, 'the admin’s 2FA is untouched')
  })

  let aliceKey: string
  await t.test('reset (with a reason) forces re-enrolment', async (t) => {
    aliceKey = (await enrol(h, 'alice', PASSWORDS.alice)).manualKey
    const aliceSession = await signIn(h, 'alice', aliceKey)

    const noReason = await admin.post('/2fa/admin/users/alice/reset', { reason: '  ' }, { htmx: true })
    t.equal(noReason.statusCode, 422, 'a reason is required')
    t.match(noReason.body, /Give a reason for the reset/)
    t.match(noReason.body, /aria-invalid="true"/)
    const noReasonJson = await admin.post('/2fa/admin/users/alice/reset', {}, { json: true })
    t.equal(JSON.parse(noReasonJson.body).error, 'invalid_input')
    const noReasonPage = await admin.post('/2fa/admin/users/alice/reset', { reason: '' })
    t.equal(noReasonPage.statusCode, 422, 'without JavaScript: a page with the row and the error')
    t.match(noReasonPage.body, /<html[\s\S]*Give a reason for the reset/)
    t.ok((await accountOf(h, 'alice'))?.secret, 'nothing was reset')

    // A reason that can't be stored as text (a forged log line, a lone surrogate) is refused
    // before anything changes: there is no reset without its audit event.
    for (const reason of ['Lost her phone\r\nfake: line', 'lost phone \ud800']) {
      const refused = await admin.post('/2fa/admin/users/alice/reset', { reason }, { json: true })
      t.equal(refused.statusCode, 422, `${JSON.stringify(reason)} refused`)
      t.equal(JSON.parse(refused.body).error, 'invalid_input')
    }
    t.ok((await accountOf(h, 'alice'))?.secret, 'still nothing was reset')
    t.equal(eventsOf(h, 'disabled.by_admin', 'alice').length, 0, 'and no event')

    const reset = await admin.post('/2fa/admin/users/alice/reset', { reason: 'Lost her phone' }, { htmx: true })
    t.equal(reset.statusCode, 200)
    t.match(reset.body, /⏳<\/span> awaiting setup/)
    t.equal((await accountOf(h, 'alice'))?.secret, null)
    t.equal(await codesOf(h, 'alice'), 0)
    const event = eventsOf(h, 'disabled.by_admin', 'alice').at(-1)
    t.match(event, { actor: 'admin', details: { reason: 'Lost her phone' } }, 'audited with the reason')
    t.equal((await aliceSession.get('/')).headers.location, '/login', 'her sessions ended')

    const again = h.client()
    t.equal((await passwordStep(again, 'alice', PASSWORDS.alice)).headers.location, '/2fa/setup', 'she enrols again at her next sign-in')
    const newKey = manualKeyFrom((await again.get('/2fa/setup')).body)
    t.not(newKey, aliceKey, 'with a new secret')
    t.equal((await again.post('/2fa/setup/confirm', { code: codeFor(aliceKey, h.clock.ms) })).statusCode, 422, 'the old authenticator no longer works')
  })

  await t.test('unlock clears a lock', async (t) => {
    bobKey = (await enrol(h, 'bob', PASSWORDS.bob)).manualKey
    const guesser = h.client()
    await passwordStep(guesser, 'bob', PASSWORDS.bob)
    await guesser.get('/2fa/challenge')
    for (let i = 0; i < 5; i++) await guesser.post('/2fa/challenge', { code: '000000' })
    t.ok((await accountOf(h, 'bob'))?.lockedUntil, 'bob is locked')

    const locked = JSON.parse((await admin.get('/2fa/admin/users?status=locked', { json: true })).body)
    t.same(locked.users.map((u: { id: string }) => u.id), ['bob'], 'the locked filter finds him')
    t.type(locked.users[0].lockedUntil, 'string')
    const row = rowIn((await admin.get('/2fa/admin/users?status=locked')).body, BOB_ROW)
    t.match(row, /🔒<\/span> locked until \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/)
    t.match(row, new RegExp(`hx-post="/2fa/admin/users/bob/unlock" hx-target="#${BOB_ROW}" hx-swap="outerHTML"`))

    // Without JavaScript: the form posts and the browser comes back to the list it was on.
    const unlock = await admin.post('/2fa/admin/users/bob/unlock', { returnTo: '/2fa/admin/users?status=locked' })
    t.equal(unlock.statusCode, 303)
    t.equal(unlock.headers.location, '/2fa/admin/users?status=locked', 'back to the same filtered list')
    const offsite = await admin.post('/2fa/admin/users/bob/unlock', { returnTo: 'https://evil.example/' })
    t.equal(offsite.headers.location, '/2fa/admin/users', 'only our own list pages as a way back')
    const account = await accountOf(h, 'bob')
    t.equal(account?.lockedUntil, null)
    t.equal(account?.failedAttempts, 0)
    t.match(eventsOf(h, 'lockout.cleared', 'bob').at(-1), { actor: 'admin' })
    t.match(JSON.parse((await admin.get('/2fa/admin/users?q=bob', { json: true })).body).users[0], { status: 'enrolled', lockedUntil: null })

    await signIn(h, 'bob', bobKey)
    t.pass('bob signs in with his code again')
  })

  await t.test('the demo’s edit-user form uses fastify.twoFactor.setRequired', async (t) => {
    const page = await admin.get('/admin/users/alice')
    t.equal(page.statusCode, 200)
    t.match(page.body, /<input id="edit-require" type="checkbox" name="requireTwoFactor" value="on" checked/, 'ticked: alice is required')
    const save = await admin.post('/admin/users/alice', { role: 'user' })
    t.equal(save.statusCode, 303)
    t.equal((await accountOf(h, 'alice'))?.required, false, 'unticked → not required')
    t.match(eventsOf(h, 'required.off', 'alice').at(-1), { actor: 'admin' })
    t.notMatch((await admin.get('/admin/users/alice')).body, /name="requireTwoFactor" value="on" checked/)
    await admin.post('/admin/users/alice', { role: 'user', requireTwoFactor: 'on' })
    t.equal((await accountOf(h, 'alice'))?.required, true, 'ticked → required')

    const created = await admin.post('/admin/users', { username: 'root2', password: 'root2-password-123', role: 'admin' })
    t.equal(created.statusCode, 303)
    t.equal((await accountOf(h, 'root2'))?.required, true, 'a new admin is required from the start (onUserCreated)')
    t.equal((await h.client().get('/admin')).statusCode, 303, 'the demo admin page wants a sign-in')
  })

  await t.test('a host without listUsers: the list shows the users the two-factor tables know', async (t) => {
    const db = h.database.db
    const findUser = async (id: string) => (await db.select().from(demoUsers).where(eq(demoUsers.id, id)).limit(1))[0]
    const bare: AccountsAdapter<DemoUser> = {
      findUser,
      userId: (user) => user.id,
      label: (user) => user.username,
      isAdmin: (user) => user.role === 'admin',
      async verifyPassword (userId, password) {
        const user = await findUser(userId)
        return user !== undefined && await verifyPassword(password, user.passwordHash)
      }
    }
    const other = await createHarness(t, { database: h.database, clock: h.clock, app: { twoFactor: { accounts: bare } } })
    const { client } = await enrol(other, 'root2', 'root2-password-123')
    const page = await client.get('/2fa/admin/users')
    t.match(page.body, /has no <code>listUsers<\/code>/, 'the page says why the list is partial')
    const json = JSON.parse((await client.get('/2fa/admin/users', { json: true })).body)
    t.same(json.users.map((u: { id: string }) => u.id), ['admin', 'alice', 'bob', 'root2'], 'every account the plugin has a row for, by id')
    t.equal(json.total, 4)
  })
})
