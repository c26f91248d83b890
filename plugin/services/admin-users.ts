// The admin users list: which users a page shows and the two-factor status of each.
//
// Users belong to the host, statuses to the plugin, and a status filter can't be answered by
// either side's paging alone. So each view is answered by the side that can page it:
//
//   all                       the host pages (`listUsers`), then ONE statement fetches the
//                             statuses of that page (AdminStore.factsFor). Exact total.
//   enrolled, locked (no q)   the plugin's row alone decides these, so the plugin pages: ONE
//                             statement returns the page of ids, their statuses and the total
//                             (AdminStore.pageByStatus); the host then loads those users in one
//                             call (`findUsers(ids)`, or `findUser` per id if it lacks that).
//   awaiting, not-required,   whether a user must enrol depends on the host's data (admin flag,
//   or any filter with q,     roles). When the host's users are in the plugin's database and
//   with `usersQuery`         the adapter says how to select them, ONE statement joins them with
//                             the plugin's rows, the policy's `required` in SQL, and returns the
//                             page (plus one row, to know there is a next page); the host then
//                             loads those users in one call, and each row's status is worked out
//                             by the policy itself as everywhere else. Should a row disagree
//                             with the filter (the host's query and its `isAdmin`/`roles` tell
//                             different stories), that is logged and the page is walked instead.
//                             The total is known when the page reaches the end.
//   the same, without it      the plugin can't query the host's data, so the host's list is walked
//                             in growing chunks (250, 1 000, 4 000, then 5 000 users), one
//                             statuses statement per chunk, and the walk STOPS as soon as the
//                             page is full and one more match shows there is a next page. The
//                             "next" link carries where the walk stopped (`from`), so paging on
//                             costs only the next page's walk. The total is exact when the walk
//                             reached the end of the list; otherwise it is not counted (null):
//                             counting would mean reading every user of the host for each page.
//
// Users the plugin knows but the host no longer does (deleted accounts) still appear under
// enrolled/locked, labelled by id, so an admin can see and clear what is left of them.
import type { SQL } from 'drizzle-orm'
import type { AccountFacts, AdminStore, UserStatus } from '../db/admin-store.ts'
import { requirementParts, type PolicySettings, type Requirement, type RequirementPart } from '../core/policy.ts'
import type { AccountsAdapter } from '../options.ts'
import type { Policy } from './policy.ts'
import { Profiles, type UserProfile } from './profiles.ts'

export const PAGE_SIZE = 25
/** The walk's chunks grow from the first to the largest. */
export const SCAN_FIRST_CHUNK = 250
export const SCAN_CHUNK = 5000

export type StatusFilter = UserStatus | 'all'
export const STATUS_FILTERS: readonly StatusFilter[] = ['all', 'enrolled', 'awaiting', 'not-required', 'locked']

export interface AdminUserRow {
  userId: string
  label: string
  /** False when the host has no such user (any more). */
  known: boolean
  isAdmin: boolean
  status: UserStatus
  /** The admin flag as stored: null when nobody decided. */
  requiredFlag: boolean | null
  required: boolean
  /** The reasons, for the page to put in words ("required: role admin", "required: everyone, 4 days left"). */
  requiredBy: RequirementPart[]
  exemptUntil: Date | null
  exemptReason: string | null
  lockedUntil: Date | null
  enabledAt: Date | null
}

export interface UsersPage {
  users: AdminUserRow[]
  /** Null when a walk stopped before the end of the host's list (see above). */
  total: number | null
  page: number
  pageCount: number | null
  hasNext: boolean
  /** Where the next page's walk starts in the host's list (walked views only). */
  nextFrom: number | null
  q: string
  status: StatusFilter
  /** Which path answered (for tests and the benchmarks). */
  strategy: 'host-page' | 'plugin-page' | 'join' | 'scan' | 'plugin-only'
}

export interface UsersQuery {
  q: string
  status: StatusFilter
  /** 1-based. */
  page: number
  /** Walked views: the host offset where this page's walk starts (from the previous page). */
  from?: number
}

interface PartialPage {
  users: AdminUserRow[]
  total: number | null
  hasNext: boolean
  nextFrom: number | null
  strategy: UsersPage['strategy']
}

export interface AdminUsersDeps {
  store: AdminStore
  adapter: AccountsAdapter
  profiles: Profiles
  policy: Policy
  clock: () => number
  /** Where a host query that disagrees with the adapter is reported. */
  log?: { warn (details: object, message: string): void }
}

export class AdminUsers {
  constructor (private readonly deps: AdminUsersDeps) {}

  private policyFrom (stored: unknown): PolicySettings {
    return this.deps.policy.parse(stored)
  }

  async page (query: UsersQuery): Promise<UsersPage> {
    const offset = (query.page - 1) * PAGE_SIZE
    const { adapter } = this.deps
    let result: PartialPage
    if (adapter.listUsers === undefined) {
      result = await this.pluginPage(query.status, offset, 'plugin-only')
    } else if (query.status === 'all') {
      result = await this.hostPage(query.q, offset)
    } else if ((query.status === 'enrolled' || query.status === 'locked') && query.q === '') {
      result = await this.pluginPage(query.status, offset, 'plugin-page')
    } else {
      const joined = adapter.usersQuery === undefined ? null : await this.joined(adapter.usersQuery({ q: query.q }), query.status, offset)
      result = joined ?? await this.walk(query.q, query.status, query.page, query.from)
    }
    return {
      ...result,
      page: query.page,
      pageCount: result.total === null ? null : Math.max(1, Math.ceil(result.total / PAGE_SIZE)),
      q: query.q,
      status: query.status
    }
  }

  /** One user's row, for the inline swaps: one host lookup and one statement. */
  async row (userId: string): Promise<AdminUserRow | null> {
    const user = await this.deps.adapter.findUser(userId)
    if (user === null || user === undefined) return null
    const { facts, policy } = await this.deps.store.factsFor([userId])
    return this.rowOf(this.deps.profiles.of(user), facts[0]!, this.policyFrom(policy), new Date(this.deps.clock()))
  }

  private async hostPage (q: string, offset: number) {
    const { users, total } = await this.deps.adapter.listUsers!({ q, offset, limit: PAGE_SIZE })
    const profiles = users.map((user) => this.deps.profiles.of(user))
    const { facts, policy } = await this.deps.store.factsFor(profiles.map((p) => p.userId))
    const settings = this.policyFrom(policy)
    const now = new Date(this.deps.clock())
    const rows = profiles.map((p, i) => this.rowOf(p, facts[i]!, settings, now))
    return { users: rows, total, hasNext: offset + rows.length < total, nextFrom: null, strategy: 'host-page' as const }
  }

  private async pluginPage (status: StatusFilter, offset: number, strategy: 'plugin-page' | 'plugin-only') {
    const now = new Date(this.deps.clock())
    const { facts, total, policy } = await this.deps.store.pageByStatus(status, now, offset, PAGE_SIZE)
    const users = await this.findUsers(facts.map((f) => f.userId))
    const settings = this.policyFrom(policy)
    const rows = facts.map((f) => {
      const user = users.get(f.userId)
      const profile = user === undefined ? Profiles.unknown(f.userId) : this.deps.profiles.of(user)
      return { ...this.rowOf(profile, f, settings, now), known: user !== undefined }
    })
    return { users: rows, total, hasNext: offset + rows.length < total, nextFrom: null, strategy }
  }

  /**
   * The page from the join of the host's query with the plugin's rows (see above); null when a
   * row the statement chose is not one the policy gives this status, or the host can't load it.
   */
  private async joined (hostUsers: SQL, status: UserStatus, offset: number): Promise<PartialPage | null> {
    const { store, log } = this.deps
    const now = new Date(this.deps.clock())
    const settings = this.policyFrom(await store.policy())
    const facts = await store.pageJoined(hostUsers, status, settings, now, offset, PAGE_SIZE + 1)
    const page = facts.slice(0, PAGE_SIZE)
    const users = await this.findUsers(page.map((f) => f.userId))
    const rows: AdminUserRow[] = []
    for (const f of page) {
      const user = users.get(f.userId)
      const row = user === undefined ? null : this.rowOf(this.deps.profiles.of(user), f, settings, now)
      if (row === null || row.status !== status) {
        log?.warn({ userId: f.userId, filter: status, status: row?.status ?? 'unknown to findUsers' }, 'fastify-two-factor: accounts.usersQuery disagrees with the adapter (isAdmin, roles, userId, findUsers); this page of the admin list was walked instead')
        return null
      }
      rows.push(row)
    }
    const hasNext = facts.length > PAGE_SIZE
    // Pages before this one were full, so a last page counts them all; past the end, a count says how many there are.
    const total = hasNext ? null : rows.length === 0 && offset > 0 ? await store.countJoined(hostUsers, status, settings, now) : offset + rows.length
    return { users: rows, total, hasNext, nextFrom: null, strategy: 'join' }
  }

  /**
   * Walks the host's list from `from` (or the start), classifying each user, until this page
   * is full and one more match is seen. Without `from`, the earlier pages' matches are skipped.
   */
  private async walk (q: string, status: StatusFilter, page: number, from: number | undefined): Promise<PartialPage> {
    const now = new Date(this.deps.clock())
    const rows: AdminUserRow[] = []
    let skip = from === undefined ? (page - 1) * PAGE_SIZE : 0
    let matches = 0
    let hostOffset = from ?? 0
    let chunk = SCAN_FIRST_CHUNK
    for (;;) {
      const { users, total } = await this.deps.adapter.listUsers!({ q, offset: hostOffset, limit: chunk })
      const profiles = users.map((user) => this.deps.profiles.of(user))
      const { facts, policy } = await this.deps.store.factsFor(profiles.map((p) => p.userId))
      const settings = this.policyFrom(policy)
      for (const [i, profile] of profiles.entries()) {
        const row = this.rowOf(profile, facts[i]!, settings, now)
        if (row.status !== status) continue
        matches++
        if (skip > 0) {
          skip--
        } else if (rows.length < PAGE_SIZE) {
          rows.push(row)
        } else {
          // A match past the page: there is a next page, and its walk starts here.
          return { users: rows, total: null, hasNext: true, nextFrom: hostOffset + i, strategy: 'scan' }
        }
      }
      hostOffset += users.length
      if (users.length < chunk || hostOffset >= total) break
      chunk = Math.min(SCAN_CHUNK, chunk * 4)
    }
    // The end of the list: every match from the walk's start has been counted.
    const before = from === undefined ? 0 : (page - 1) * PAGE_SIZE
    return { users: rows, total: before + matches, hasNext: false, nextFrom: null, strategy: 'scan' }
  }

  /** The host's users by id, in one call when the adapter can (`findUsers`). */
  private async findUsers (ids: string[]): Promise<Map<string, unknown>> {
    const { adapter } = this.deps
    const found = adapter.findUsers !== undefined
      ? await adapter.findUsers(ids)
      : await Promise.all(ids.map(async (id) => await adapter.findUser(id)))
    const byId = new Map<string, unknown>()
    for (const user of found) {
      if (user !== null && user !== undefined) byId.set(String(adapter.userId(user)), user)
    }
    return byId
  }

  private rowOf (profile: UserProfile, facts: AccountFacts, settings: PolicySettings, now: Date): AdminUserRow {
    const requirement = this.deps.policy.requirement(profile, facts, settings, now)
    return {
      userId: profile.userId,
      label: profile.label,
      known: true,
      isAdmin: profile.isAdmin,
      status: statusOf(facts, requirement, now),
      requiredFlag: facts.required,
      required: requirement.required,
      requiredBy: requirementParts(requirement, now),
      exemptUntil: requirement.exemptUntil,
      exemptReason: requirement.exemptUntil === null ? null : facts.exemptReason,
      lockedUntil: facts.lockedUntil !== null && facts.lockedUntil > now ? facts.lockedUntil : null,
      enabledAt: facts.enrolled ? facts.enabledAt : null
    }
  }
}

export function statusOf (facts: AccountFacts, requirement: Requirement, now: Date): UserStatus {
  if (facts.lockedUntil !== null && facts.lockedUntil > now) return 'locked'
  if (facts.enrolled) return 'enrolled'
  return requirement.required ? 'awaiting' : 'not-required'
}

export function parseStatusFilter (value: unknown): StatusFilter | null {
  if (value === undefined || value === '') return 'all'
  return typeof value === 'string' && (STATUS_FILTERS as readonly string[]).includes(value) ? value as StatusFilter : null
}
