// The audit trail (SPEC §10): every change and every sign-in decision is stored with time, user,
// actor, IP and user agent, then handed to the host's `onEvent` hook. Callers pass only
// non-secret details; strings are stripped of CR/LF so no event can forge a log line.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { EventsStore } from './db/events-store.ts'

export const EVENT_TYPES = [
  'enrolment.started',
  'enrolment.completed',
  'disabled',
  'disabled.by_admin',
  'required.on',
  'required.off',
  'policy.changed',
  'recovery.regenerated',
  'recovery.used',
  'challenge.succeeded',
  'challenge.failed',
  'lockout.started',
  'lockout.cleared',
  'wizard.shown',
  'wizard.skipped',
  'keys.rotated',
  'admin.denied'
] as const

export type EventType = typeof EVENT_TYPES[number]

export interface TwoFactorEvent {
  id: number
  at: Date
  type: EventType
  userId: string | null
  actor: string | null
  ip: string | null
  userAgent: string | null
  details: Record<string, unknown>
}

export interface TwoFactorAlert {
  userId: string
  failures: number
  windowMs: number
  at: Date
}

export interface RecordInput {
  userId?: string | null
  /** Who did it: the user themself (default), an admin's id, or `cli`. */
  actor?: string | null
  details?: Record<string, unknown>
}

export interface AuditOptions {
  onEvent?: (event: TwoFactorEvent) => void | Promise<void>
  alert?: (alert: TwoFactorAlert) => void | Promise<void>
  alertThreshold: number
  alertWindowMs: number
  clock: () => number
  log: FastifyBaseLogger
}

const MAX_TEXT = 512

/** Replaces CR and LF (and other control characters) and bounds the length. */
export function neutralise (value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, ' ').slice(0, MAX_TEXT)
}

function neutraliseDetails (value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return neutralise(value)
  if (depth > 3 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => neutraliseDetails(v, depth + 1))
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [neutralise(k), neutraliseDetails(v, depth + 1)]))
}

export class Audit {
  constructor (private readonly store: EventsStore, private readonly options: AuditOptions) {}

  async record (request: FastifyRequest | null, type: EventType, input: RecordInput = {}): Promise<TwoFactorEvent> {
    const userAgent = request?.headers['user-agent']
    const userId = input.userId ?? null
    const row = await this.store.insert({
      at: new Date(this.options.clock()),
      type,
      userId,
      actor: input.actor === undefined ? userId : input.actor,
      ip: request?.ip ?? null,
      userAgent: typeof userAgent === 'string' ? neutralise(userAgent) : null,
      details: neutraliseDetails(input.details ?? {}) as Record<string, unknown>
    })
    const event = { ...row, type } as TwoFactorEvent
    await this.notify(event)
    if (type === 'challenge.failed' && userId !== null) await this.checkAlert(userId)
    return event
  }

  private async notify (event: TwoFactorEvent): Promise<void> {
    if (this.options.onEvent === undefined) return
    try {
      await this.options.onEvent(event)
    } catch (error) {
      // A broken notifier must not break sign-in; its message may be anything, so log the name only.
      this.options.log.warn({ eventType: event.type, errorName: (error as Error)?.name }, 'two-factor onEvent hook failed')
    }
  }

  private async checkAlert (userId: string): Promise<void> {
    if (this.options.alert === undefined) return
    const now = this.options.clock()
    const failures = await this.store.countSince(userId, 'challenge.failed', new Date(now - this.options.alertWindowMs))
    // Fire once per burst: when the count first goes past the threshold.
    if (failures !== this.options.alertThreshold + 1) return
    try {
      await this.options.alert({ userId, failures, windowMs: this.options.alertWindowMs, at: new Date(now) })
    } catch (error) {
      this.options.log.warn({ errorName: (error as Error)?.name }, 'two-factor alert hook failed')
    }
  }
}
