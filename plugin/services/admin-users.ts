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
//   or any filter with q      roles), which the plugin can't query, so the host's list is walked
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
  strategy: 'host-page' | 'plugin-page' | 'scan' | 'plugin-only'
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
      result = await this.walk(query.q, query.status, query.page, query.from)
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
