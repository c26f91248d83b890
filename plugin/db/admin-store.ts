// Queries behind the admin users list and the CLI's `list`. Each answers in ONE statement: the
// two-factor facts of a whole page of users together with the stored policy, so a page of the
// admin list costs one round trip to the plugin's tables however many rows it shows (no N+1).
import { and, desc, eq, gte, lt, or, sql, type SQL } from 'drizzle-orm'
import { rowsOf, type TwoFactorDatabase } from './database.ts'
import { accounts, enrolments, events, settings } from './schema.ts'

/** What a row shows: 🔒 locked, ✓ enrolled, ⏳ awaiting setup, — not required (in that precedence). */
export type UserStatus = 'locked' | 'enrolled' | 'awaiting' | 'not-required'
export const USER_STATUSES: readonly UserStatus[] = ['enrolled', 'awaiting', 'not-required', 'locked']

/** What the plugin's tables know about one user; a user never seen has every field empty. */
export interface AccountFacts {
  userId: string
  /** True when the plugin has a row for the user (they signed in, or an admin decided for them). */
  seen: boolean
  enrolled: boolean
  enabledAt: Date | null
  /** The admin flag: null when nobody decided (the admin default may apply). */
  required: boolean | null
  lockedUntil: Date | null
  /** An enrolment started and not confirmed yet. */
  pendingEnrolment: boolean
  /** When the plugin first saw the user (stands in for the host's creation date). */
  createdAt: Date | null
  exemptUntil: Date | null
  exemptReason: string | null
}

export interface EventPageQuery {
  userId?: string
  type?: string
  /** Events at or after this. */
  since?: Date
  /** Events older than this; with `beforeId`, also those at this instant with a smaller id. */
  before?: Date
  beforeId?: number
  limit: number
}

export interface FactsPage {
  facts: AccountFacts[]
  /** The stored policy (unparsed), read in the same statement. */
  policy: unknown
}

/**
 * Conditions the plugin's own row decides. `awaiting` and `not-required` here mean "by the
 * admin flag alone" unless `required` says more (the join with the host's users, below): rules
 * on roles and "everyone" need the host's user data (the admin list resolves those; the CLI
 * says so).
 */
function statusCondition (status: UserStatus | 'all', now: Date, required: SQL = sql`a.required is true`): SQL {
  const at = sql`${now.toISOString()}::timestamptz`
  const locked = sql`(a.locked_until is not null and a.locked_until > ${at})`
  const enrolled = sql`(a.secret is not null and a.enabled_at is not null)`
  switch (status) {
    case 'locked': return locked
    case 'enrolled': return sql`(${enrolled} and not ${locked})`
    case 'awaiting': return sql`(not ${enrolled} and not ${locked} and ${required})`
    case 'not-required': return sql`(not ${enrolled} and not ${locked} and not ${required})`
    case 'all': return sql`true`
  }
}

/** What of the policy decides whether a user must enrol (the grace period only decides skipping). */
export interface RequiredRules {
  requireAll: boolean
  requiredRoles: readonly string[]
  exemptRoles: readonly string[]
}

/**
 * `evaluatePolicy(…).required` (core/policy.ts) in SQL, for the host's user `u` (its `is_admin`
 * and `roles`) and the plugin's row `a` (null columns when the plugin never saw the user): an
 * exemption lifts everything; then the admin flag, or the admin default while nobody decided;
 * a required role; "everyone" unless an exempt role. Every part is null-free (a missing row
 * reads as "no"), so `not (…)` is exactly the opposite. The admin list checks each row it shows
 * against the policy itself, and test/admin proves the two agree.
 */
function requiredCondition (rules: RequiredRules, now: Date): SQL {
  const at = sql`${now.toISOString()}::timestamptz`
  const roles = sql`coalesce(u.roles, '{}'::text[])`
  // An empty list overlaps nothing: written as `false`, so the planner can drop that rule outright.
  const hasAny = (list: readonly string[]) => list.length === 0 ? sql`false` : sql`(${roles} && ${sql.param([...list])}::text[])`
  const rulesApply = [
    sql`a.required is true`,
    sql`(a.required is null and coalesce(u.is_admin, false))`,
    hasAny(rules.requiredRoles),
    rules.requireAll ? sql`not ${hasAny(rules.exemptRoles)}` : sql`false`
  ]
  return sql`(not coalesce(a.exempt_until > ${at}, false) and (${sql.join(rulesApply, sql` or `)}))`
}

const FACT_COLUMNS = sql`
  (a.user_id is not null) as seen,
  (a.secret is not null and a.enabled_at is not null) as enrolled,
  a.enabled_at, a.required, a.locked_until,
  exists (select 1 from ${enrolments} e where e.user_id = a.user_id) as pending_enrolment,
  a.created_at, a.exempt_until, a.exempt_reason`

interface FactRow {
  user_id: string
  seen: boolean
  enrolled: boolean
  enabled_at: Date | string | null
  required: boolean | null
  locked_until: Date | string | null
  pending_enrolment: boolean
  created_at: Date | string | null
  exempt_until: Date | string | null
  exempt_reason: string | null
  policy: unknown
  total?: number | string
}

// Drivers differ: postgres.js and PGlite give Dates for timestamptz, but be safe with text.
const toDate = (value: Date | string | null | undefined): Date | null =>
  value === null || value === undefined ? null : value instanceof Date ? value : new Date(value)

// jsonb read through a raw statement arrives parsed from both drivers; text is parsed here.
const toJson = (value: unknown): unknown => {
  if (typeof value !== 'string') return value
  try { return JSON.parse(value) } catch { return undefined }
}

function factsOf (row: FactRow): AccountFacts {
  return {
    userId: row.user_id,
    seen: row.seen === true,
    enrolled: row.enrolled === true,
    enabledAt: toDate(row.enabled_at),
    required: row.required,
    lockedUntil: toDate(row.locked_until),
    pendingEnrolment: row.pending_enrolment === true,
    createdAt: toDate(row.created_at),
    exemptUntil: toDate(row.exempt_until),
    exemptReason: row.exempt_reason
  }
}

export class AdminStore {
  constructor (private readonly db: TwoFactorDatabase) {}

  /**
   * The facts for these user ids, in the order given, and the stored policy: one statement.
   * (`unnest … with ordinality` keeps the host's order; a left join gives users the plugin
   * has never seen an empty row rather than no row.)
   */
  async factsFor (userIds: readonly string[]): Promise<FactsPage> {
    if (userIds.length === 0) return { facts: [], policy: await this.policy() }
    // One array parameter, however many ids: a chunk of thousands stays one short statement.
    const rows = rowsOf<FactRow>(await this.db.execute(sql`
      select u.id as user_id, ${FACT_COLUMNS}, p.value as policy
      from unnest(${sql.param([...userIds])}::text[]) with ordinality as u(id, ord)
      left join ${accounts} a on a.user_id = u.id
      left join ${settings} p on p.key = 'policy'
      order by u.ord`))
    return { facts: rows.map(factsOf), policy: toJson(rows[0]?.policy) }
  }

  /**
   * One page of the accounts whose own row decides `status`, ordered by user id, with the
   * number of them all and the stored policy: one statement. Only a page past the end costs a
   * second statement, to still give the total.
   *
   * The total is an uncorrelated subquery (Postgres runs it once), not `count(*) over ()`: a window
   * over every match makes the page wait for all of them (59 ms for page 2 of 50 000 enrolled
   * accounts, against 9 ms with the subquery, which also reads the narrower index).
   */
  async pageByStatus (status: UserStatus | 'all', now: Date, offset: number, limit: number): Promise<FactsPage & { total: number }> {
    const where = statusCondition(status, now)
    const rows = rowsOf<FactRow>(await this.db.execute(sql`
      select a.user_id, ${FACT_COLUMNS},
        (select value from ${settings} where key = 'policy') as policy,
        (select count(*) from ${accounts} a where ${where}) as total
      from ${accounts} a
      where ${where}
      order by a.user_id
      limit ${limit} offset ${offset}`))
    if (rows.length === 0) {
      const counted = rowsOf<{ total: number | string, policy: unknown }>(await this.db.execute(sql`
        select (select count(*) from ${accounts} a where ${where}) as total,
          (select value from ${settings} where key = 'policy') as policy`))
      return { facts: [], total: Number(counted[0]?.total ?? 0), policy: toJson(counted[0]?.policy) }
    }
    return { facts: rows.map(factsOf), total: Number(rows[0]?.total ?? 0), policy: toJson(rows[0]?.policy) }
  }

  /**
   * One page (`limit` rows from `offset`) of the host's users with `status`, in the host's order
   * (`sort`, then `id`), with their facts: ONE statement joining the host's query with the
   * plugin's rows, so the database filters every user and only the page crosses the wire. No
   * total: counting would mean joining every user for each page (35–70 ms at 100 000 users here,
   * where a first page takes a few).
   */
  async pageJoined (hostUsers: SQL, status: UserStatus, rules: RequiredRules, now: Date, offset: number, limit: number): Promise<AccountFacts[]> {
    const rows = rowsOf<FactRow>(await this.db.execute(sql`
      select u.id as user_id, ${FACT_COLUMNS}
      from (${hostUsers}) u
      left join ${accounts} a on a.user_id = u.id
      where ${statusCondition(status, now, requiredCondition(rules, now))}
      order by u.sort, u.id
      limit ${limit} offset ${offset}`))
    return rows.map(factsOf)
  }

  /** How many of the host's users have `status`: for a page past the end, which has no rows to count from. */
  async countJoined (hostUsers: SQL, status: UserStatus, rules: RequiredRules, now: Date): Promise<number> {
    const rows = rowsOf<{ total: number | string }>(await this.db.execute(sql`
      select count(*) as total
      from (${hostUsers}) u
      left join ${accounts} a on a.user_id = u.id
      where ${statusCondition(status, now, requiredCondition(rules, now))}`))
    return Number(rows[0]?.total ?? 0)
  }

  /**
   * One page of the audit log, newest first. The cursor is (time, id): events share a
   * millisecond often enough that paging by time alone would skip some.
   */
  async eventsPage (query: EventPageQuery): Promise<{ events: Array<typeof events.$inferSelect>, hasMore: boolean }> {
    const filters: SQL[] = []
    if (query.userId !== undefined) filters.push(eq(events.userId, query.userId))
    if (query.type !== undefined) filters.push(eq(events.type, query.type))
    if (query.since !== undefined) filters.push(gte(events.at, query.since))
    if (query.before !== undefined) {
      filters.push(query.beforeId === undefined
        ? lt(events.at, query.before)
        : or(lt(events.at, query.before), and(eq(events.at, query.before), lt(events.id, query.beforeId)))!)
    }
    const rows = await this.db.select().from(events)
      .where(filters.length > 0 ? and(...filters) : undefined)
      .orderBy(desc(events.at), desc(events.id))
      .limit(query.limit + 1)
    return { events: rows.slice(0, query.limit), hasMore: rows.length > query.limit }
  }

  async policy (): Promise<unknown> {
    const rows = await this.db.select({ value: settings.value }).from(settings).where(sql`${settings.key} = 'policy'`).limit(1)
    return rows[0]?.value
  }
}
