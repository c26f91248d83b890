// `two-factor list`: the accounts the plugin's tables know, by status, a page at a time.
import type { UserStatus } from '../db/admin-store.ts'
import { USER_STATUSES } from '../db/admin-store.ts'
import { normalisePolicy } from '../core/policy.ts'
import { expectPositionals } from './args.ts'
import { policyNote, STATUS_TEXT, statusOfFacts } from './account-status.ts'
import type { Command } from './command.ts'
import { UsageError } from './errors.ts'
import { iso, padTable, utc } from './format.ts'

const LIST_LIMIT = 50

export const list: Command<{ status: UserStatus | 'all', page: number, limit: number }> = {
  parse (args) {
    expectPositionals(args, [])
    const status = args.status ?? 'all'
    if (status !== 'all' && !(USER_STATUSES as readonly string[]).includes(status)) {
      throw new UsageError(`--status must be one of: ${USER_STATUSES.join(', ')}.`, 'list')
    }
    return { status: status as UserStatus | 'all', page: args.page ?? 1, limit: args.limit ?? LIST_LIMIT }
  },
  async run ({ status, page, limit }, ctx) {
    const now = new Date()
    const result = await ctx.core.stores.admin.pageByStatus(status, now, (page - 1) * limit, limit)
    const policy = normalisePolicy(result.policy)
    const rows = result.facts.map((f) => ({
      userId: f.userId,
      status: statusOfFacts(f, now),
      requiredFlag: f.required,
      enabledAt: f.enrolled ? f.enabledAt : null,
      lockedUntil: f.lockedUntil !== null && f.lockedUntil > now ? f.lockedUntil : null,
      pendingEnrolment: f.pendingEnrolment
    }))
    if (ctx.json) {
      ctx.out(JSON.stringify({
        users: rows.map((r) => ({ ...r, enabledAt: iso(r.enabledAt), lockedUntil: iso(r.lockedUntil) })),
        total: result.total,
        page,
        limit
      }))
      return 0
    }
    if (rows.length === 0) {
      ctx.out(result.total === 0 ? 'No accounts match.' : `No accounts on page ${page} (${result.total} in all).`)
    } else {
      ctx.out(padTable([
        ['USER', 'STATUS', 'REQUIRED FLAG', 'DETAILS'],
        ...rows.map((r) => [
          r.userId,
          STATUS_TEXT[r.status],
          r.requiredFlag === null ? '-' : r.requiredFlag ? 'yes' : 'no',
          r.lockedUntil !== null ? `until ${utc(r.lockedUntil)}` : r.enabledAt !== null ? `on since ${utc(r.enabledAt)}` : r.pendingEnrolment ? 'setup started' : ''
        ])
      ]).join('\n'))
      const first = (page - 1) * limit + 1
      ctx.out(`\n${first}–${first + rows.length - 1} of ${result.total}${first + rows.length - 1 < result.total ? ` (next: --page ${page + 1})` : ''}`)
    }
    const note = policyNote(policy)
    if (note !== null) ctx.out(note)
    return 0
  }
}
