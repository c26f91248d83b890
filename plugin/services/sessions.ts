// Ending an account's sessions through the session store's per-account index: after a change
// to its second factor, on a lockout, on the host's password change.
import { hashSessionId, sessionHandle, type AccountSessionIndex, type SessionSummary } from '../db/session-store.ts'
import type { Audit } from './audit.ts'
import type { AuditContext } from './context.ts'

export type EndReason = 'enrolled' | 'replaced' | 'disabled' | 'reset' | 'requirement_lifted' | 'lockout' | 'host' | 'user'

/** A session as its owner sees it in the list. */
export interface ListedSession extends SessionSummary {
  current: boolean
}

export class Sessions {
  constructor (private readonly index: AccountSessionIndex, private readonly audit: Audit) {}

  /** The account's signed-in sessions, newest first, the one asking marked. */
  async list (userId: string, currentSessionId: string): Promise<ListedSession[]> {
    const current = sessionHandle(hashSessionId(currentSessionId))
    const all = await this.index.listAccountSessions(userId)
    return all.filter((session) => session.state === 'signed-in')
      .map((session) => ({ ...session, current: session.handle === current }))
      .sort((a, b) => (b.lastSeenAt?.getTime() ?? 0) - (a.lastSeenAt?.getTime() ?? 0))
  }

  /** Ends one of the account's sessions by its handle (the owner's "Sign out" in the list). */
  async end (userId: string, handle: string, context: AuditContext): Promise<boolean> {
    const ended = await this.index.endAccountSession(userId, handle)
    if (ended) await this.audit.record('sessions.ended', { userId, details: { count: 1, reason: 'user' }, context })
    return ended
  }

  /** Ends every session of the account but `exceptSessionId` (the one that made the change, if any). */
  async endOthers (userId: string, exceptSessionId: string | undefined, context: AuditContext | null, reason: EndReason): Promise<number> {
    const ended = await this.index.endAccountSessions(userId, exceptSessionId === undefined ? {} : { exceptSessionId })
    if (ended > 0) await this.audit.record('sessions.ended', { userId, details: { count: ended, reason }, context })
    return ended
  }
}
