// `auditRetentionDays`: the audit log keeps that many days. Old events are deleted when the app
// starts and once a day after, by every instance (deleting what another already deleted is a
// no-op). A deletion that finds nothing writes nothing; one that deletes is itself an event.
import type { FastifyInstance } from 'fastify'
import type { AuditContext } from './services/context.ts'
import type { Core } from './services/core.ts'

const DAY_MS = 24 * 60 * 60_000

/** Who the log names for these deletions: the option, not a person. */
const RETENTION_CONTEXT: AuditContext = { actor: 'retention', ip: null, userAgent: null }

export function keepAuditLogFor (fastify: FastifyInstance, core: Core, days: number): void {
  const prune = async () => {
    try {
      await core.services.admin.pruneEvents(days, RETENTION_CONTEXT)
    } catch (error) {
      // A database that can't answer now is the requests' business; the next pass tries again.
      fastify.log.warn({ errorName: (error as Error)?.name }, 'two-factor: pruning old audit events failed')
    }
  }
  // Awaited in `ready()`, so an app that has started has a trimmed log (and tests can rely on it).
  fastify.addHook('onReady', prune)
  const timer = setInterval(() => { void prune() }, DAY_MS)
  timer.unref()
  fastify.addHook('onClose', async () => clearInterval(timer))
}
