// The admin list's role-dependent filters answered by the join (`accounts.usersQuery`, the
// policy's `required` in SQL) give exactly the pages the walk gives (the policy evaluated per
// user, as the sign-in does): a table of policies (per-user flag, admin default, required roles,
// "everyone" in and after its grace, exempt roles, a malformed stored policy) over every host
// role crossed with every state of the plugin's row (never seen, flags, enrolled, locked, a lock
// run out, exemptions running and ended, a setup started). For every policy, filter and search,
// every page, its rows and its total are the same both ways, and both list exactly the users the
// "all" view (the host's page, statuses from the policy) shows with that status. A host query
// that disagrees with the adapter is caught on the rows it shows, logged, and walked instead.
import t from 'tap'
import { sql } from 'drizzle-orm'
import { demoAccounts } from '../../demo-app/accounts.ts'
import { createDemoUser, ensureDemoSchema } from '../../demo-app/app.ts'
import { DEFAULT_POLICY, type PolicySettings } from '../../plugin/core/policy.ts'
import { AdminStore, USER_STATUSES, type UserStatus } from '../../plugin/db/admin-store.ts'
import { migrate } from '../../plugin/db/migrate.ts'
import { accounts, enrolments, settings } from '../../plugin/db/schema.ts'
import { SettingsStore } from '../../plugin/db/settings-store.ts'
import type { AccountsAdapter } from '../../plugin/options.ts'
import { AdminUsers, type AdminUserRow, type AdminUsersDeps, type StatusFilter, type UsersPage } from '../../plugin/services/admin-users.ts'
import { Policy } from '../../plugin/services/policy.ts'
import { Profiles } from '../../plugin/services/profiles.ts'
import { createTestDatabase } from '../helpers/db.ts'

const DAY = 24 * 60 * 60_000
const NOW = Date.parse('2026-06-01T12:00:00Z')
const ROLES = ['user', 'admin', 'finance', 'contractor', 'bots'] as const

/** The plugin's row for a user, as each state leaves it (undefined: the plugin never saw them). */
const STATES: Record<string, Partial<typeof accounts.$inferInsert> | undefined> = {
  unseen: undefined,
  undecided: {},
  'flag-on': { required: true },
  'flag-off': { required: false },
  enrolled: { secret: 'v1.k1.sealed', enabledAt: new Date(NOW - 5 * DAY) },
  'enrolled-flag-off': { secret: 'v1.k1.sealed', enabledAt: new Date(NOW - 5 * DAY), required: false },
  locked: { secret: 'v1.k1.sealed', enabledAt: new Date(NOW - 5 * DAY), lockedUntil: new Date(NOW + 60_000) },
  'locked-not-enrolled': { required: true, lockedUntil: new Date(NOW + 60_000) },
  'lock-ran-out': { secret: 'v1.k1.sealed', enabledAt: new Date(NOW - 5 * DAY), lockedUntil: new Date(NOW - 60_000) },
  'lock-ran-out-flag-on': { required: true, lockedUntil: new Date(NOW - 60_000) },
  'secret-unconfirmed': { secret: 'v1.k1.sealed', required: true },
  exempt: { required: true, exemptUntil: new Date(NOW + DAY), exemptReason: 'phone lost' },
  'exempt-undecided': { exemptUntil: new Date(NOW + DAY), exemptReason: 'phone lost' },
  'exempt-enrolled': { secret: 'v1.k1.sealed', enabledAt: new Date(NOW - 5 * DAY), exemptUntil: new Date(NOW + DAY) },
  'exempt-ended': { required: true, exemptUntil: new Date(NOW - 60_000), exemptReason: 'back' },
  'exempt-ended-undecided': { exemptUntil: new Date(NOW - 60_000) },
  'setup-started': { required: true }
}

const POLICIES: Array<{ name: string, stored: unknown }> = [
  { name: 'nothing set (the admin default and per-user flags only)', stored: undefined },
  { name: 'a required role', stored: { ...DEFAULT_POLICY, requiredRoles: ['finance'] } },
  { name: 'two required roles, one nobody has', stored: { ...DEFAULT_POLICY, requiredRoles: ['finance', 'contractor', 'nobody'], allowSkip: false } },
  { name: 'everyone, in the grace period', stored: { ...DEFAULT_POLICY, requireAll: true, requireAllSince: new Date(NOW - DAY).toISOString(), graceDays: 7 } },
  { name: 'everyone, the grace over', stored: { ...DEFAULT_POLICY, requireAll: true, requireAllSince: new Date(NOW - 30 * DAY).toISOString(), graceDays: 7 } },
  { name: 'everyone, no grace, since unknown', stored: { ...DEFAULT_POLICY, requireAll: true, requireAllSince: null, graceDays: 0 } },
  { name: 'everyone but an exempt role', stored: { ...DEFAULT_POLICY, requireAll: true, requireAllSince: new Date(NOW - 30 * DAY).toISOString(), exemptRoles: ['bots'] } },
  { name: 'everyone but exempt roles, one of them also required', stored: { ...DEFAULT_POLICY, requireAll: true, exemptRoles: ['bots', 'admin', 'finance'], requiredRoles: ['finance'] } },
  { name: 'everyone, every role exempt', stored: { ...DEFAULT_POLICY, requireAll: true, exemptRoles: [...ROLES] } },
  { name: 'exempt roles without "everyone" change nothing', stored: { ...DEFAULT_POLICY, requiredRoles: ['admin'], exemptRoles: ['admin', 'finance'] } },
  { name: 'a malformed stored policy reads as the defaults', stored: { requireAll: 'yes', requiredRoles: 'finance', exemptRoles: [1] } },
  { name: 'a partly malformed one keeps what is well formed', stored: { requireAll: true, exemptRoles: 'bots', requiredRoles: ['contractor'] } }
]

const SEARCHES = ['', 'fin', 'flag', 'exempt-', 'no such user', '%', '_']

t.test('the join gives the walk’s pages for every policy, filter and search', async (t) => {
  const { db } = await createTestDatabase(t)
  await migrate(db)
  await ensureDemoSchema(db)

  // Every role crossed with every state; ids run against the usernames, so the order is the host's.
  const combos = ROLES.flatMap((role) => Object.keys(STATES).map((state) => ({ role, state })))
  for (const [i, { role, state }] of combos.entries()) {
    const id = `id${String(combos.length - i).padStart(3, '0')}`
    await createDemoUser(db, { id, username: `${role}-${state}`, password: 'not-a-password', role, passwordCost: 1024, createdAt: new Date(NOW - (i % 10) * DAY) })
    const row = STATES[state]
    if (row !== undefined) await db.insert(accounts).values({ userId: id, createdAt: new Date(NOW - 20 * DAY), ...row })
    if (state === 'setup-started') {
      await db.insert(enrolments).values({ id: `e-${id}`, userId: id, secret: 'v1.k1.sealed', algorithm: 'SHA1', digits: 6, period: 30, createdAt: new Date(NOW), expiresAt: new Date(NOW + DAY) })
    }
  }
  // One account the host no longer has: listed by neither way under the role-dependent filters.
  await db.insert(accounts).values({ userId: 'deleted', required: true })

  const demo = demoAccounts(db)
  const { usersQuery, ...withoutQuery } = demo
  t.type(usersQuery, 'function')
  const service = (adapter: AccountsAdapter, log?: AdminUsersDeps['log']) => new AdminUsers({
    store: new AdminStore(db),
    adapter,
    profiles: new Profiles(adapter),
    policy: new Policy(new SettingsStore(db), { allowSkip: true }),
    clock: () => NOW,
    log
  })
  const joined = service(demo)
  const walked = service(withoutQuery)

  /** Every page of a view, following its next links as the page does. */
  async function allPages (users: AdminUsers, q: string, status: StatusFilter): Promise<UsersPage[]> {
    const pages: UsersPage[] = []
    let query: { page: number, from?: number } = { page: 1 }
    for (;;) {
      const page = await users.page({ q, status, ...query })
      pages.push(page)
      if (!page.hasNext) return pages
      query = { page: page.page + 1, ...(page.nextFrom === null ? {} : { from: page.nextFrom }) }
    }
  }
  const ids = (rows: AdminUserRow[]) => rows.map((r) => r.userId)

  let compared = 0
  for (const policy of POLICIES) {
    await db.delete(settings)
    if (policy.stored !== undefined) await db.insert(settings).values({ key: 'policy', value: policy.stored })

    for (const q of SEARCHES) {
      // What the policy says of each user, from the "all" view (the host's pages, one statuses statement each).
      const everyone = (await allPages(walked, q, 'all')).flatMap((p) => p.users)
      const statusCounts = new Map<UserStatus, number>()
      for (const status of USER_STATUSES) {
        const expected = everyone.filter((row) => row.status === status)
        statusCounts.set(status, expected.length)
        const fast = await allPages(joined, q, status)
        const slow = await allPages(walked, q, status)
        const label = `${policy.name}, ${status}${q === '' ? '' : `, q ${JSON.stringify(q)}`}`
        const byJoin = fast.flatMap((p) => p.users)
        // Enrolled and locked without a search are the plugin's pages, in user-id order.
        const inOrder = (rows: AdminUserRow[]) => fast[0]!.strategy === 'plugin-page' ? [...rows].sort((a, b) => a.userId < b.userId ? -1 : 1) : rows
        t.same(ids(inOrder(byJoin)), ids(inOrder(expected)), `${label}: exactly the users the policy gives this status, in the view’s order`)
        t.same(inOrder(byJoin), inOrder(expected), `${label}: with the same rows`)
        if (q !== '' || status === 'awaiting' || status === 'not-required') {
          t.ok(fast.every((p) => p.strategy === 'join'), `${label}: answered by the join`)
          t.same(fast.map((p) => p.users), slow.map((p) => p.users), `${label}: page by page as the walk`)
          t.equal(fast.at(-1)!.total, slow.at(-1)!.total, `${label}: the last page’s total as the walk’s`)
          t.equal(fast.at(-1)!.total, expected.length, `${label}: which is exact`)
          // A page reached by its number is the page reached by the links; past the end is empty, with the count.
          if (fast.length > 1) t.same(ids((await joined.page({ q, status, page: 2 })).users), ids(fast[1]!.users), `${label}: page 2 by its number`)
          const past = await joined.page({ q, status, page: fast.length + 1 })
          t.same(past.users, [])
          t.equal(past.total, expected.length, `${label}: past the end, the count`)
          compared++
        }
      }
      t.equal([...statusCounts.values()].reduce((a, b) => a + b, 0), everyone.length, `${policy.name}, q ${JSON.stringify(q)}: every user has one status`)
    }
  }
  t.ok(compared >= POLICIES.length * SEARCHES.length * 2, `${compared} views compared`)
  t.ok(POLICIES.length * ROLES.length * Object.keys(STATES).length > 1000, 'over a thousand user × policy cases')
})

t.test('a host query that disagrees with the adapter: the rows it shows are checked, the page is walked, and it is logged', async (t) => {
  const { db } = await createTestDatabase(t)
  await migrate(db)
  await ensureDemoSchema(db)
  for (const [username, role] of [['ann', 'admin'], ['ben', 'user'], ['cat', 'admin']] as const) {
    await createDemoUser(db, { username, password: 'not-a-password', role, passwordCost: 1024 })
  }
  const demo = demoAccounts(db)
  // Says nobody is an admin, where isAdmin says ann and cat are (and so, undecided, awaiting setup).
  const lying = {
    ...demo,
    usersQuery: ({ q }: { q: string }) => sql`select id, username as sort, false as is_admin, array[role] as roles from demo_users where username like ${`%${q}%`}`
  }
  const warnings: object[] = []
  const users = new AdminUsers({
    store: new AdminStore(db),
    adapter: lying,
    profiles: new Profiles(lying),
    policy: new Policy(new SettingsStore(db), { allowSkip: true }),
    clock: () => NOW,
    log: { warn: (details) => { warnings.push(details) } }
  })
  const notRequired = await users.page({ q: '', status: 'not-required', page: 1 })
  t.equal(notRequired.strategy, 'scan', 'the join offered the admins as not required: walked instead')
  t.same(notRequired.users.map((r) => r.userId), ['ben'], 'the walk’s answer, from the policy')
  t.match(warnings, [{ userId: 'ann', filter: 'not-required', status: 'awaiting' }], 'the first row that disagreed is logged')

  // A query whose ids findUsers can't load is caught the same way.
  const wrongIds = { ...demo, usersQuery: () => sql`select 'x-' || id as id, username as sort, role = 'admin' as is_admin, array[role] as roles from demo_users` }
  const other = new AdminUsers({
    store: new AdminStore(db),
    adapter: wrongIds,
    profiles: new Profiles(wrongIds),
    policy: new Policy(new SettingsStore(db), { allowSkip: true }),
    clock: () => NOW,
    log: { warn: (details) => { warnings.push(details) } }
  })
  const page = await other.page({ q: '', status: 'awaiting', page: 1 })
  t.equal(page.strategy, 'scan')
  t.same(page.users.map((r) => r.userId), ['ann', 'cat'])
  t.match(warnings.at(-1), { userId: 'x-ann', status: 'unknown to findUsers' })
})
