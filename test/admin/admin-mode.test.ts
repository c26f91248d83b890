// Who may use the admin panel, and when it may change things.
//  - An admin whose own account requires 2FA but who pressed "Skip for now" has proven no second
//    factor: the panel is closed to them (403 second_factor_required, next: the wizard).
//  - Admin mode: reading the panel needs a signed-in, enrolled admin, but every change also needs
//    a code entered in the last 15 minutes (`adminFreshWithin`), so a stolen admin cookie alone
//    can't strip another account's second factor. A stale admin is asked for a code (JSON 401
//    step_up_required, a plain form gets the prompt, htmx is sent to /2fa/step-up) and the same
//    request then succeeds.
//  - An admin can't reset, unlock or lift the requirement of their own account from the panel
//    (another admin can): a stolen admin session must not be able to take its own factor away.
//  - Refused requests are audited, but at most once per actor per ten minutes, so nobody can fill
//    the log by hammering the panel.
import t from 'tap'
import { eq } from 'drizzle-orm'
import { accounts, events as eventsTable } from '../../plugin/db/schema.ts'
import { rowHtmlId } from '../../plugin/routes/admin/user-row.ts'
import { answerOf, type Client } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, login, type Host, type HostUser } from '../fixtures/host.ts'

const USERS: HostUser[] = [
  { id: 'admin', password: 'admin-password', role: 'admin' },
  { id: 'root', password: 'root-password', role: 'admin' },
  { id: 'skipper', password: 'skipper-password', role: 'admin' },
  { id: 'alice', password: 'alice-password' },
  { id: 'bob', password: 'bob-password' }
]
const passwordOf = (userId: string): string => USERS.find((u) => u.id === userId)!.password

const PAGES = ['/2fa/admin', '/2fa/admin/users', '/2fa/admin/users/bob', '/2fa/admin/policy', '/2fa/admin/events']
const CHANGES: Array<[string, Record<string, unknown>]> = [
  ['/2fa/admin/users/bob/required', { required: true }],
  ['/2fa/admin/users/bob/required', { required: false }],
  ['/2fa/admin/users/bob/reset', { reason: 'lost phone' }],
  ['/2fa/admin/users/bob/unlock', {}],
  ['/2fa/admin/policy', { requiredRoles: ['staff'] }]
]

/** Password step, then the forced wizard, as JSON; returns the manual key. */
async function enrolledAdmin (host: Host, userId: string): Promise<{ client: Client, manualKey: string }> {
  const client = host.client()
  const answer = answerOf(await login(client, userId, passwordOf(userId)))
  if (answer.state !== 'pending-setup' && answer.state !== 'signed-in') throw new Error(`${userId}: ${String(answer.state)}`)
  const { manualKey } = answerOf(await client.get('/2fa/setup', { json: true })) as { manualKey: string }
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  if (confirm.statusCode !== 200) throw new Error(`confirm failed: ${confirm.statusCode} ${confirm.body}`)
  await client.post('/2fa/setup/finish', {}, { json: true })
  host.clock.advance(30_000)
  return { client, manualKey }
}

async function accountOf (host: Host, userId: string) {
  return (await host.database.db.select().from(accounts).where(eq(accounts.userId, userId)))[0]
}

async function storedDenials (host: Host, userId: string): Promise<number> {
  return (await host.database.db.select().from(eventsTable).where(eq(eventsTable.userId, userId))).filter((e) => e.type === 'admin.denied').length
}

/** The bits of the state a change could alter: bob's account and the policy. */
async function watched (host: Host) {
  const bob = await accountOf(host, 'bob')
  return { required: bob?.required ?? null, secret: bob?.secret ?? null, lockedUntil: bob?.lockedUntil ?? null, policy: await host.app.twoFactor.policy() }
}

/** Every route under /2fa/admin, read from the app's route tree (so a new one is covered too). */
function adminRoutesOf (host: Host): Array<{ method: 'GET' | 'POST', url: string }> {
  const found: Array<{ method: 'GET' | 'POST', url: string }> = []
  const stack: string[] = []
  for (const line of host.app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?$/.exec(line)
    if (match === null) continue
    stack.length = match[1]!.length / 4
    stack.push(match[2]!)
    const url = stack.join('').replace(/^\/+/, '/')
    if (!url.startsWith('/2fa/admin') || match[3] === undefined) continue
    for (const method of match[3].split(', ')) {
      if (method === 'GET' || method === 'POST') found.push({ method, url: url.replace(':id', 'bob') })
    }
  }
  return found
}

function rowIn (html: string, id: string): string {
  const start = html.indexOf(`<tr id="${id}"`)
  return start === -1 ? '' : html.slice(start, html.indexOf('</tr>', start) + 5)
}

t.test('the admin panel', async (t) => {
  const host = await createHost(t, { users: USERS })

  await t.test('an admin who skipped setting up 2FA gets 403 second_factor_required on every admin route', async (t) => {
    const skipper = host.client()
    t.match(answerOf(await login(skipper, 'skipper', passwordOf('skipper'))), { state: 'pending-setup' }, 'admins are required to use 2FA')
    const skipped = await skipper.post('/2fa/setup/skip', {}, { json: true })
    t.match(answerOf(skipped), { state: 'signed-in' }, '“Skip for now” signs the admin in')
    const before = await watched(host)

    for (const url of PAGES) {
      const json = await skipper.get(url, { json: true })
      t.equal(json.statusCode, 403, `GET ${url} (JSON): 403`)
      t.match(answerOf(json), { error: 'second_factor_required', next: '/2fa/setup' })
      const page = await skipper.get(url)
      t.equal(page.statusCode, 403, `GET ${url} (page): 403`)
      t.match(page.body, /href="\/2fa\/setup"/, 'the page links to the wizard')
    }
    for (const [url, body] of CHANGES) {
      const json = await skipper.post(url, body, { json: true })
      t.equal(json.statusCode, 403, `POST ${url} (JSON): 403`)
      t.match(answerOf(json), { error: 'second_factor_required', next: '/2fa/setup' })
      const form = await skipper.post(url, body)
      t.equal(form.statusCode, 403, `POST ${url} (form): 403`)
      t.match(form.body, /href="\/2fa\/setup"/)
    }
    const routes = adminRoutesOf(host)
    t.ok(routes.length >= PAGES.length + 4, `${routes.length} admin routes found`)
    for (const route of routes) {
      const json = route.method === 'GET' ? await skipper.get(route.url, { json: true }) : await skipper.post(route.url, {}, { json: true })
      t.equal(json.statusCode, 403, `${route.method} ${route.url}: 403`)
      t.match(answerOf(json), { error: 'second_factor_required', next: '/2fa/setup' })
    }
    t.same(await watched(host), before, 'nothing changed')
    t.equal(await storedDenials(host, 'skipper'), 1, 'one admin.denied for all of them')
    t.match(host.events.find((e) => e.type === 'admin.denied' && e.userId === 'skipper')?.details, { why: 'no_second_factor' })
  })

  await t.test('admin.denied is written at most once per actor per 10 minutes', async (t) => {
    const alice = host.client()
    t.match(answerOf(await login(alice, 'alice', passwordOf('alice'))), { state: 'signed-in' })

    const refusals = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const url = PAGES[i % PAGES.length]!
      return (await alice.get(url, { json: true })).statusCode
    }))
    t.same([...new Set(refusals)], [403], 'ten refused at once')
    t.equal(await storedDenials(host, 'alice'), 1, 'one admin.denied for ten concurrent refusals')
    for (const [url, body] of CHANGES) t.equal((await alice.post(url, body, { json: true })).statusCode, 403)
    host.clock.advance(9 * 60_000)
    t.equal((await alice.get('/2fa/admin/users')).statusCode, 403)
    t.equal(await storedDenials(host, 'alice'), 1, 'still one after nine minutes and more refusals')
    host.clock.advance(60_000)
    await Promise.all([alice.get('/2fa/admin/users', { json: true }), alice.get('/2fa/admin/policy', { json: true }), alice.get('/2fa/admin/events', { json: true })])
    t.equal(await storedDenials(host, 'alice'), 2, 'ten minutes on: written again, once')
    t.equal(host.events.filter((e) => e.type === 'admin.denied' && e.userId === 'alice').length, 2, 'and handed to onEvent as often')

    // Each actor has their own allowance.
    const bob = host.client()
    await login(bob, 'bob', passwordOf('bob'))
    await bob.get('/2fa/admin/users')
    await bob.get('/2fa/admin/users')
    t.equal(await storedDenials(host, 'bob'), 1, 'bob’s first refusal is written too, once')
  })

  let admin: Client
  let adminKey = ''
  await t.test('admin mode: reading needs a signed-in admin, changing needs a code from the last 15 minutes', async (t) => {
    const enrolledNow = await enrolledAdmin(host, 'admin')
    admin = enrolledNow.client
    adminKey = enrolledNow.manualKey
    const manualKey = adminKey

    await t.test('fresh after the code of the wizard: a change goes through', async (t) => {
      const on = await admin.post('/2fa/admin/users/bob/required', { required: true }, { json: true })
      t.equal(on.statusCode, 200)
      t.match(answerOf(on), { id: 'bob', required: true })
    })

    await t.test('16 minutes later: the panel reads, every change is refused until a code is entered', async (t) => {
      host.clock.advance(16 * 60_000)
      for (const url of PAGES.slice(1)) {
        t.equal((await admin.get(url, { json: true })).statusCode, 200, `GET ${url}: readable`)
        t.equal((await admin.get(url)).statusCode, 200, `GET ${url} page: readable`)
      }
      const before = await watched(host)
      for (const [url, body] of CHANGES) {
        const json = await admin.post(url, body, { json: true })
        t.equal(json.statusCode, 401, `POST ${url} (JSON): 401`)
        t.match(answerOf(json), { error: 'step_up_required', next: '/2fa/step-up' })

        const form = await admin.post(url, body)
        t.equal(form.statusCode, 401, `POST ${url} (form): the step-up prompt, 401`)
        const back = url.startsWith('/2fa/admin/policy') ? '/2fa/admin/policy' : '/2fa/admin/users'
        t.match(form.body, new RegExp(`name="returnTo" value="${back}"`), 'it returns to the panel page')
        t.match(form.body, /action="\/2fa\/step-up"/)

        const htmx = await admin.post(url, body, { htmx: true })
        t.equal(htmx.statusCode, 401, `POST ${url} (htmx): 401`)
        t.equal(htmx.headers['hx-redirect'], `/2fa/step-up?returnTo=${encodeURIComponent(back)}`, 'htmx is sent to the prompt')
      }
      for (const route of adminRoutesOf(host).filter((r) => r.method === 'POST')) {
        const json = await admin.post(route.url, {}, { json: true })
        t.equal(json.statusCode, 401, `POST ${route.url}: step-up first`)
        t.match(answerOf(json), { error: 'step_up_required' })
      }
      t.same(await watched(host), before, 'nothing changed')
      t.equal(await storedDenials(host, 'admin'), 0, 'asking for a code is not a denial')
    })

    await t.test('after a code at /2fa/step-up the same requests succeed', async (t) => {
      const prompt = await admin.get('/2fa/step-up?returnTo=%2F2fa%2Fadmin%2Fusers', { json: true })
      t.equal(prompt.statusCode, 200)
      const fresh = await admin.post('/2fa/step-up', { code: codeFor(manualKey, host.clock.ms), returnTo: '/2fa/admin/users' }, { json: true })
      t.equal(fresh.statusCode, 200)
      t.match(answerOf(fresh), { next: '/2fa/admin/users', freshUntil: new Date(host.clock.ms + 15 * 60_000).toISOString() }, 'fresh for 15 minutes')
      for (const [url, body] of CHANGES) {
        const done = await admin.post(url, body, { json: true })
        t.equal(done.statusCode, 200, `POST ${url}: 200`)
      }
      t.match(await watched(host), { required: false, policy: { requiredRoles: ['staff'] } }, 'the changes were made')
      host.clock.advance(14 * 60_000)
      t.equal((await admin.post('/2fa/admin/users/bob/required', { required: true }, { json: true })).statusCode, 200, 'still fresh at 14 minutes')
      host.clock.advance(2 * 60_000)
      t.equal((await admin.post('/2fa/admin/users/bob/required', { required: false }, { json: true })).statusCode, 401, 'stale again at 16')
    })
  })

  await t.test('an admin can’t reset, unlock or lift the requirement of their own account; another admin can', async (t) => {
    // Admin mode asks for a fresh code first.
    const fresh = await admin.post('/2fa/step-up', { code: codeFor(adminKey, host.clock.ms), returnTo: '/2fa/admin/users' }, { json: true })
    t.equal(fresh.statusCode, 200)
    host.clock.advance(30_000)
    const { client: root } = await enrolledAdmin(host, 'root')
    const before = await accountOf(host, 'admin')
    t.ok(before?.secret, 'the admin is enrolled')

    const own: Array<[string, Record<string, unknown>, RegExp]> = [
      ['/2fa/admin/users/admin/reset', { reason: 'testing' }, /You can’t reset your own two-factor here/],
      ['/2fa/admin/users/admin/unlock', {}, /You can’t unlock your own account here/],
      ['/2fa/admin/users/admin/required', { required: false }, /You can’t lift your own requirement here/]
    ]
    for (const [url, body, why] of own) {
      const json = await admin.post(url, body, { json: true })
      t.equal(json.statusCode, 409, `${url} (JSON): 409`)
      t.match(answerOf(json), { error: 'not_allowed_by_policy', message: why, id: 'admin' })
      const htmx = await admin.post(url, body, { htmx: true })
      t.equal(htmx.statusCode, 409, `${url} (htmx): 409`)
      const row = rowIn(htmx.body, rowHtmlId('admin'))
      t.not(row, '', 'the answer is the admin’s row')
      t.match(row, why, 'the row says why')
      const form = await admin.post(url, body)
      t.equal(form.statusCode, 409, `${url} (form): 409`)
      t.match(form.body, why)
    }
    const after = await accountOf(host, 'admin')
    t.same({ secret: after?.secret, required: after?.required, enabledAt: after?.enabledAt }, { secret: before?.secret, required: before?.required, enabledAt: before?.enabledAt }, 'nothing changed')
    t.ok((await admin.post('/2fa/admin/users/admin/required', { required: true }, { json: true })).statusCode === 200, 'requiring it of oneself is fine')

    // Locked (as after five wrong codes; set directly, since a real lockout also ends the admin's
    // other sessions, this panel's included).
    await host.database.db.update(accounts).set({ failedAttempts: 5, lockouts: 1, lockedUntil: new Date(host.clock.ms + 15 * 60_000) }).where(eq(accounts.userId, 'admin'))
    t.equal((await admin.post('/2fa/admin/users/admin/unlock', {}, { json: true })).statusCode, 409, 'still not by the admin themself')

    const unlock = await root.post('/2fa/admin/users/admin/unlock', {}, { json: true })
    t.equal(unlock.statusCode, 200, 'another admin can unlock')
    t.equal((await accountOf(host, 'admin'))?.lockedUntil, null)
    const reset = await root.post('/2fa/admin/users/admin/reset', { reason: 'lost phone' }, { json: true })
    t.equal(reset.statusCode, 200, 'another admin can reset')
    t.equal((await accountOf(host, 'admin'))?.secret, null)
    const lift = await root.post('/2fa/admin/users/admin/required', { required: false }, { json: true })
    t.equal(lift.statusCode, 200, 'another admin can lift the requirement')
    t.match(answerOf(lift), { id: 'admin', requiredFlag: false })
  })
})

t.test('adminFreshWithin: "1m" shortens admin mode', async (t) => {
  const host = await createHost(t, { users: USERS, twoFactor: { adminFreshWithin: '1m' } })
  const { client: admin, manualKey } = await enrolledAdmin(host, 'admin')
  t.equal((await admin.post('/2fa/admin/users/bob/required', { required: true }, { json: true })).statusCode, 200, 'fresh 30 seconds after the code')
  host.clock.advance(61_000)
  const refused = await admin.post('/2fa/admin/users/bob/required', { required: false }, { json: true })
  t.equal(refused.statusCode, 401, 'stale after a minute')
  t.match(answerOf(refused), { error: 'step_up_required' })
  t.equal((await admin.get('/2fa/admin/users', { json: true })).statusCode, 200, 'reading is still fine')
  const fresh = await admin.post('/2fa/step-up', { code: codeFor(manualKey, host.clock.ms), returnTo: '/2fa/admin/users' }, { json: true })
  t.match(answerOf(fresh), { freshUntil: new Date(host.clock.ms + 60_000).toISOString() }, 'fresh for one minute')
  t.equal((await admin.post('/2fa/admin/users/bob/required', { required: false }, { json: true })).statusCode, 200)
})
