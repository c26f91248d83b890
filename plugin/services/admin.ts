// What admins change: who must use 2FA, an emergency reset, an unlock, the policy. The admin
// panel, the host (`fastify.twoFactor`) and the CLI all change things through here, so every
// change is the same change, in one transaction with its audit event.
import type { PolicySettings } from '../core/policy.ts'
import type { AccountsStore } from '../db/accounts-store.ts'
import type { EventsStore } from '../db/events-store.ts'
import type { MarksStore } from '../db/marks-store.ts'
import type { SettingsStore } from '../db/settings-store.ts'
import type { UnitOfWork } from '../db/unit-of-work.ts'
import type { Audit } from './audit.ts'
import type { AuditContext } from './context.ts'
import { POLICY_KEY, type Policy } from './policy.ts'
import type { Profiles } from './profiles.ts'
import type { Sessions } from './sessions.ts'

/** How often a refused admin request is written to the audit log, per actor. */
export const ADMIN_DENIED_EVERY_MS = 10 * 60_000

const DAY_MS = 24 * 60 * 60_000

/** An admin's reason goes into the audit log: the panel and the CLI refuse a longer one. */
export const MAX_REASON_LENGTH = 500
/** An exemption is for an emergency: a year at most, from the panel and the CLI alike. */
export const MAX_EXEMPTION_MS = 366 * DAY_MS

export interface AdminDeps {
  profiles: Profiles
  accounts: AccountsStore
  settings: SettingsStore
  events: EventsStore
  policy: Policy
  marks: MarksStore
  sessions: Sessions
  unitOfWork: UnitOfWork
  audit: Audit
  clock: () => number
}

export class Admin {
  constructor (private readonly deps: AdminDeps) {}

  private now (): Date {
    return new Date(this.deps.clock())
  }

  /** New admin accounts are required by default. Safe to call more than once. */
  async onUserCreated (userId: string): Promise<void> {
    const profile = await this.deps.profiles.require(userId)
    await this.deps.accounts.ensure(userId)
    if (profile.isAdmin) await this.deps.accounts.applyDefaultRequired(userId, this.now())
  }

  /** Lifting a requirement also clears the user's 2FA (how an admin rescues a user who lost both phone and codes). */
  async setRequired (userId: string, required: boolean, context: AuditContext): Promise<void> {
    await this.deps.profiles.require(userId)
    const now = this.now()
    const { events } = await this.deps.unitOfWork.run(async (work) => {
      await this.deps.accounts.setRequired(work.tx, userId, required, now)
      const cleared = required ? null : await this.deps.accounts.clearEnrolment(work.tx, userId, now)
      await this.deps.audit.recordIn(work, required ? 'required.on' : 'required.off', { userId, context })
      if (cleared !== null) await this.deps.audit.recordTrustEnded(work, userId, cleared.browsersForgotten, 'requirement_lifted', context)
    })
    await this.deps.audit.publish(events)
    if (!required) await this.deps.sessions.endOthers(userId, undefined, context, 'requirement_lifted')
  }

  /** Emergency reset: clears secret and codes and ends the user's sessions; they enrol again at their next sign-in if required. */
  async reset (userId: string, reason: string, context: AuditContext): Promise<void> {
    await this.deps.profiles.require(userId)
    const { events } = await this.deps.unitOfWork.run(async (work) => {
      const { browsersForgotten } = await this.deps.accounts.clearEnrolment(work.tx, userId, this.now())
      await this.deps.audit.recordIn(work, 'disabled.by_admin', { userId, details: { reason }, context })
      await this.deps.audit.recordTrustEnded(work, userId, browsersForgotten, 'reset', context)
    })
    await this.deps.audit.publish(events)
    await this.deps.sessions.endOthers(userId, undefined, context, 'reset')
  }

  async unlock (userId: string, context: AuditContext): Promise<void> {
    await this.deps.profiles.require(userId)
    const { events } = await this.deps.unitOfWork.run(async (work) => {
      if (await this.deps.accounts.unlock(work.tx, userId, this.now())) {
        await this.deps.audit.recordIn(work, 'lockout.cleared', { userId, context })
      }
    })
    await this.deps.audit.publish(events)
  }

  /**
   * Break-glass: exempts the account from every rule until `until` (with a reason for the audit
   * log), or ends an exemption early (`until` null). It also ends by itself.
   */
  async exempt (userId: string, until: Date | null, reason: string | null, context: AuditContext): Promise<void> {
    await this.deps.profiles.require(userId)
    const { events } = await this.deps.unitOfWork.run(async (work) => {
      await this.deps.accounts.setExemption(work.tx, userId, until, reason, this.now())
      if (until === null) await this.deps.audit.recordIn(work, 'exempt.off', { userId, context })
      else await this.deps.audit.recordIn(work, 'exempt.on', { userId, details: { until: until.toISOString(), reason }, context })
    })
    await this.deps.audit.publish(events)
  }

  async policy (): Promise<PolicySettings> {
    return await this.deps.policy.current()
  }

  async setPolicy (input: PolicySettings, context: AuditContext): Promise<PolicySettings> {
    const previous = await this.deps.policy.current()
    // When the grace period started is the server's to say, never the form's.
    const next = this.deps.policy.parse({ ...input, requireAllSince: previous.requireAllSince })
    // The grace period counts from the moment "require for everyone" is switched on.
    if (next.requireAll && !previous.requireAll) next.requireAllSince = this.now().toISOString()
    if (!next.requireAll) next.requireAllSince = null
    const { events } = await this.deps.unitOfWork.run(async (work) => {
      await this.deps.settings.put(work.tx, POLICY_KEY, next, this.now())
      await this.deps.audit.recordIn(work, 'policy.changed', { details: { before: previous, after: next }, context })
    })
    await this.deps.audit.publish(events)
    return next
  }

  /**
   * Deletes the audit events older than `olderThanDays` days. The deletion is recorded in the
   * same transaction (after it, so the record stays), unless there was nothing to delete.
   */
  async pruneEvents (olderThanDays: number, context: AuditContext): Promise<{ deleted: number, before: Date }> {
    const before = new Date(this.deps.clock() - olderThanDays * DAY_MS)
    const { result: deleted, events } = await this.deps.unitOfWork.run(async (work) => {
      const deleted = await this.deps.events.deleteBefore(work.tx, before)
      if (deleted > 0) await this.deps.audit.recordIn(work, 'events.pruned', { details: { olderThanDays, before: before.toISOString(), deleted }, context })
      return deleted
    })
    await this.deps.audit.publish(events)
    return { deleted, before }
  }

  /**
   * A refused admin request is worth one event per actor per ten minutes: enough to see that
   * someone tried, without every page load filling the log.
   */
  async denied (userId: string, details: Record<string, unknown>, context: AuditContext): Promise<void> {
    const now = this.now()
    if (!await this.deps.marks.take(`admin.denied:${userId}`, now, new Date(now.getTime() + ADMIN_DENIED_EVERY_MS))) return
    await this.deps.audit.record('admin.denied', { userId, details, context })
  }
}
