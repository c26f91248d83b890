// Ending an account's sessions through the session store's per-account index: after a change
// to its second factor, on a lockout, on the host's password change.
import type { AccountSessionIndex } from '../db/session-store.ts'
import type { Audit } from './audit.ts'
import type { AuditContext } from './context.ts'

export type EndReason = 'enrolled' | 'replaced' | 'disabled' | 'reset' | 'requirement_lifted' | 'lockout' | 'host'

export class Sessions {
  constructor (private readonly index: AccountSessionIndex, private readonly audit: Audit) {}

  /** Ends every session of the account but `exceptSessionId` (the one that made the change, if any). */
  async endOthers (userId: string, exceptSessionId: string | undefined, context: AuditContext | null, reason: EndReason): Promise<number> {
    const ended = await this.index.endAccountSessions(userId, exceptSessionId === undefined ? {} : { exceptSessionId })
    if (ended > 0) await this.audit.record('sessions.ended', { userId, details: { count: ended, reason }, context })
    return ended
  }
}
