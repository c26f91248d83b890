// The admin users list at 100 000 users: every page's statuses come from ONE statement
// on the plugin's tables, whichever page and filter; the statements are counted with a drizzle
// logger on the same connection. The role-dependent filters are answered both ways, by the
// join (`usersQuery`, as the demo has it) and by the walk (the same adapter without it), and
// must give the same pages. Timings are printed for the benchmarks issue, not asserted.
import t from 'tap'
import { sql } from 'drizzle-orm'
import { demoAccounts } from '../../demo-app/accounts.ts'
import { createDemoUser, ensureDemoSchema } from '../../demo-app/app.ts'
import { PAGE_SIZE } from '../../plugin/services/admin-users.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { createHarness, enrol, PASSWORDS, TestClock } from '../helpers/demo.ts'

const USERS = 100_000

t.test('users list at 100 000 users', async (t) => {
  const database = await createTestDatabase(t)
  const statements: string[] = []
  const logger = { logQuery: (query: string) => { statements.push(query) } }
  const counted = database.logged!(logger)

  // The seed's times come from the database's clock: the app's runs with it.
  // The demo's adapter; `walkOnly` hides its usersQuery, as from a host without one.
  let walkOnly = false
  const demo = demoAccounts(counted)
  const accounts = { ...demo, get usersQuery () { return walkOnly ? undefined : demo.usersQuery } }
  const h = await createHarness(t, { database: { ...database, db: counted }, clock: new TestClock(Date.now()), app: { twoFactor: { accounts } } })
  await ensureDemoSchema(database.db)
  await createDemoUser(database.db, { username: 'admin', password: PASSWORDS.admin, role: 'admin' })
  await h.app.twoFactor.onUserCreated('admin')

  // One statement each: 100 000 host users (one in a thousand an admin, one in ten in finance),
  // and their two-factor rows: 30% enrolled, 1% of those locked, 10% required but not set up.
  let started = performance.now()
  await database.db.execute(sql`
    insert into demo_users (id, username, password_hash, role, created_at)
    select 'u' || lpad(g::text, 6, '0'), 'user' || lpad(g::text, 6, '0'), 'not-a-hash',
      case when g % 1000 = 0 then 'admin' when g % 10 = 1 then 'finance' else 'user' end,
      now() - interval '30 days'
    from generate_series(1, ${USERS}) as g`)
  await database.db.execute(sql`
    insert into two_factor.accounts (user_id, secret, enabled_at, required, locked_until, created_at)
    select 'u' || lpad(g::text, 6, '0'),
      case when g % 10 < 3 then 'v1.k1.sealed.not.real' end,
      case when g % 10 < 3 then now() - interval '10 days' end,
      case when g % 10 = 3 then true end,
      case when g % 100 = 2 then now() + interval '1 day' end,
      now() - interval '30 days'
    from generate_series(1, ${USERS}) as g`)
  await database.db.execute(sql`analyze`)
  t.comment(`seeded ${USERS} users and their two-factor rows in ${Math.round(performance.now() - started)} ms (${database.kind})`)

  // The admin enrols (the forced wizard), so the panel opens to a session that proved a factor.
  const { client: admin } = await enrol(h, 'admin', PASSWORDS.admin)

  async function measure (url: string) {
    statements.length = 0
    started = performance.now()
    const response = await admin.get(url, { json: true })
    const ms = performance.now() - started
    t.equal(response.statusCode, 200, url)
    const body = JSON.parse(response.body) as { users: Array<{ id: string, status: string }>, total: number | null }
    const plugin = statements.filter((s) => /"two_factor"\."accounts"|two_factor\.accounts/.test(s))
    const host = statements.filter((s) => /"demo_users"/.test(s))
    t.comment(`${url}: ${ms.toFixed(0)} ms, ${statements.length} statements (${plugin.length} on two_factor.accounts, ${host.length} on the host's users), ${body.users.length} rows of ${body.total}`)
    return { body, plugin, host, all: statements.length, ms }
  }

  await t.test('all users: the host pages, one statement fetches the page’s statuses', async (t) => {
    for (const page of [1, 2001, 4001]) {
      const { body, plugin, host, all } = await measure(`/2fa/admin/users?page=${page}`)
      t.equal(body.total, USERS + 1)
      t.equal(body.users.length, page === 4001 ? 1 : PAGE_SIZE)
      t.equal(plugin.length, 1, `page ${page}: ONE statement for the statuses of the page`)
      t.match(plugin[0], /unnest\(\$1::text\[\]\)/, 'the whole page as one array parameter')
      t.ok(host.length <= 3, `page ${page}: the host’s own list and count, and the admin check`)
      t.ok(all <= 6, `page ${page}: ${all} statements in all (session, admin check, host page and count, statuses)`)
    }
    const middle = await measure('/2fa/admin/users?page=2001')
    const statuses = new Set(middle.body.users.map((u) => u.status))
    t.same([...statuses].sort(), ['awaiting', 'enrolled', 'locked', 'not-required'], 'a page shows every status')
  })

  await t.test('enrolled and locked: the plugin pages, one statement, the host loads the page’s users at once', async (t) => {
    for (const [status, total] of [['enrolled', 29_001], ['locked', 1000]] as const) {
      for (const page of [1, Math.ceil(total / PAGE_SIZE)]) {
        const { body, plugin, host } = await measure(`/2fa/admin/users?status=${status}&page=${page}`)
        t.equal(body.total, total, `${status}: the total is exact`)
        t.ok(body.users.length > 0 && body.users.every((u) => u.status === status), `${status} page ${page}: only ${status}`)
        t.equal(plugin.length, 1, `${status} page ${page}: ONE statement gives the page, the statuses and the total`)
        t.equal(host.length, 2, `${status} page ${page}: the admin check and one findUsers for the whole page`)
      }
    }
  })

  await t.test('awaiting and not-required depend on roles: without usersQuery, the host’s list is walked until the page is full', async (t) => {
    walkOnly = true
    t.teardown(() => { walkOnly = false })
    const first = await measure('/2fa/admin/users?status=awaiting')
    t.equal(first.body.users.length, PAGE_SIZE)
    t.ok(first.body.users.every((u) => u.status === 'awaiting'))
    t.equal(first.body.total, null, 'the walk stopped early, so the total is not counted')
    // The first chunk (250 users) holds exactly a page of them; the walk stops at the first match past it, in the next chunk.
    t.equal(first.plugin.length, 2, 'the walk stops once the page is full and one more match is seen: two statuses statements')
    const next = (first.body as unknown as { next: string }).next
    t.match(next, /^\/2fa\/admin\/users\?status=awaiting&page=2&from=\d+$/, 'the next link says where the walk stopped')
    const second = await measure(next)
    t.equal(second.body.users.length, PAGE_SIZE)
    t.same(second.body.users.filter((u) => first.body.users.some((f) => f.id === u.id)), [], 'no overlap with page 1')
    t.ok(second.plugin.length <= 2, 'paging on costs only the next page’s walk')
    const jumped = await measure('/2fa/admin/users?status=awaiting&page=2')
    t.same(jumped.body.users.map((u) => u.id), second.body.users.map((u) => u.id), 'the same page when reached by its number')

    const last = await measure('/2fa/admin/users?status=awaiting&page=400')
    // Flagged (g % 10 = 3): 10 000 (the admin is enrolled).
    t.equal(last.body.total, 10_000, 'a walk to the end counts exactly')
    t.equal(last.body.users.length, PAGE_SIZE)
    t.comment(`walking all ${USERS} users for the last page: ${last.ms.toFixed(0)} ms, ${last.plugin.length} statuses statements`)

    const notRequired = await measure('/2fa/admin/users?status=not-required')
    t.equal(notRequired.body.users.length, PAGE_SIZE)
    t.ok(notRequired.body.users.every((u) => u.status === 'not-required'))
    t.equal(notRequired.plugin.length, 1, 'a dense filter fills its page from the first chunk')

    const search = await measure('/2fa/admin/users?status=enrolled&q=user0999')
    t.ok(search.body.users.every((u) => u.status === 'enrolled' && /^u0999\d\d$/.test(u.id)), 'only enrolled users matching the search')
    t.equal(search.plugin.length, 1, 'a search narrows the walk to one chunk')
    const rest = await measure((search.body as unknown as { next: string }).next)
    t.equal(rest.body.users.length, 4, 'user099900–user099999 hold 30 enrolled, one of them locked: 25 + 4')
    t.equal(rest.body.total, 29, 'the walk reached the end of the search: the total is exact')
  })

  await t.test('awaiting and not-required with usersQuery: one statement joins the host’s users with the plugin’s rows, the same pages as the walk', async (t) => {
    async function both (url: string) {
      walkOnly = true
      const walked = await measure(url)
      walkOnly = false
      const joined = await measure(url)
      t.same(joined.body.users, walked.body.users, `${url}: the same rows as the walk`)
      return { walked, joined }
    }
    const { joined: first } = await both('/2fa/admin/users?status=awaiting')
    t.equal(first.body.users.length, PAGE_SIZE)
    t.equal(first.plugin.length, 1, 'ONE statement on the plugin’s tables gives the page and its statuses')
    t.match(first.plugin[0], /"demo_users"/, 'joined with the host’s users')
    t.equal(first.host.length, 3, 'the admin check, the join, and one findUsers for the page')
    t.equal(first.body.total, null, 'the page is not the last, and a count would join every user: not counted')
    const next = (first.body as unknown as { next: string }).next
    t.equal(next, '/2fa/admin/users?status=awaiting&page=2', 'the next page is a page number')
    const second = await measure(next)
    walkOnly = true
    const walkedFirst = await measure('/2fa/admin/users?status=awaiting')
    const walkedSecond = await measure((walkedFirst.body as unknown as { next: string }).next)
    walkOnly = false
    t.same(second.body.users, walkedSecond.body.users, 'page 2: the same rows as the walk’s page 2 (reached by its next link)')

    const { walked: lastWalked, joined: last } = await both('/2fa/admin/users?status=awaiting&page=400')
    t.equal(last.body.total, 10_000, 'the last page counts exactly')
    t.equal(last.body.total, lastWalked.body.total)
    t.equal(last.plugin.length, 1, 'even the last page is one statement on the plugin’s tables')
    t.comment(`the last page: joined ${last.ms.toFixed(0)} ms, walked ${lastWalked.ms.toFixed(0)} ms`)
    const past = await both('/2fa/admin/users?status=awaiting&page=401')
    t.same(past.joined.body.users, [])
    t.equal(past.joined.body.total, 10_000, 'past the end: counted, as the walk does')

    await both('/2fa/admin/users?status=not-required')
    await both('/2fa/admin/users?status=not-required&page=3')
    const search = await both('/2fa/admin/users?status=enrolled&q=user0999')
    t.equal(search.joined.body.total, null)
    const rest = await both('/2fa/admin/users?status=enrolled&q=user0999&page=2')
    t.equal(rest.joined.body.users.length, 4)
    t.equal(rest.joined.body.total, 29, 'the search’s last page: the total is exact')
    await both('/2fa/admin/users?status=locked&q=user09')
    await both('/2fa/admin/users?status=awaiting&q=user0999')
  })
})
