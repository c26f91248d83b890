// The audit trail: every change and every sign-in decision is stored with time, user, actor, IP
// and user agent, then handed to the host's `onEvent` hook. Callers pass only non-secret
// details; text is neutralised (control characters, lone surrogates) so no event can forge a
// log line or fail to store.
import type { FastifyBaseLogger } from 'fastify'
import { neutralise } from '../core/text.ts'
import type { EventRow, EventsStore, NewEvent } from '../db/events-store.ts'
import type { MarksStore } from '../db/marks-store.ts'
import type { Work } from '../db/unit-of-work.ts'
import type { AuditContext } from './context.ts'

export const EVENT_TYPES = [
  'enrolment.started',
  'enrolment.completed',
  'authenticator.replaced',
  'disabled',
  'disabled.by_admin',
  'required.on',
  'required.off',
  'policy.changed',
  'recovery.regenerated',
  'recovery.used',
  'challenge.succeeded',
  'challenge.failed',
  'stepup.succeeded',
  'lockout.started',
  'lockout.cleared',
  'wizard.shown',
  'wizard.skipped',
  'sessions.ended',
  'device.trusted',
  'device.used',
  'device.revoked',
  'exempt.on',
  'exempt.off',
  'keys.rotated',
  'events.pruned',
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

export interface EventInput {
  userId?: string | null
  details?: Record<string, unknown>
  context: AuditContext | null
}

export interface AuditOptions {
  onEvent?: (event: TwoFactorEvent) => void | Promise<void>
  alert?: (alert: TwoFactorAlert) => void | Promise<void>
  alertThreshold: number
  alertWindowMs: number
  clock: () => number
  log: FastifyBaseLogger
}

function neutraliseDetails (value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return neutralise(value)
  if (depth > 3 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => neutraliseDetails(v, depth + 1))
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [neutralise(k), neutraliseDetails(v, depth + 1)]))
}

export class Audit {
  constructor (
    private readonly events: EventsStore,
    private readonly marks: MarksStore,
    private readonly options: AuditOptions
  ) {}

  /** The stored row for an event (actor: the context's, else the user themself). */
  row (type: EventType, input: EventInput): NewEvent & { at: Date } {
    const userId = input.userId ?? null
    const context = input.context
    return {
      at: new Date(this.options.clock()),
      type,
      userId,
      actor: context?.actor ?? userId,
      ip: context?.ip === null || context?.ip === undefined ? null : neutralise(context.ip, 64),
      userAgent: context?.userAgent === null || context?.userAgent === undefined ? null : neutralise(context.userAgent),
      details: neutraliseDetails(input.details ?? {}) as Record<string, unknown>
    }
  }

  /** An event that goes with no other change (a sign-in decision): stored, then published. */
  async record (type: EventType, input: EventInput): Promise<TwoFactorEvent> {
    const stored = await this.events.insert(this.row(type, input))
    const [event] = await this.publish([stored])
    return event!
  }

  /** An event in the transaction of the change it records (published by the caller after the commit). */
  async recordIn (work: Work, type: EventType, input: EventInput): Promise<void> {
    await work.record(this.row(type, input))
  }

  /** Trusted browsers forgotten with the factor they skipped (turned off, reset, replaced): one device.revoked for all. */
  async recordTrustEnded (work: Work, userId: string, count: number, reason: string, context: AuditContext): Promise<void> {
    if (count > 0) await this.recordIn(work, 'device.revoked', { userId, details: { count, reason }, context })
  }

  /** Hands committed events to `onEvent`; a failed code may also raise the alert. */
  async publish (rows: EventRow[]): Promise<TwoFactorEvent[]> {
    const published: TwoFactorEvent[] = []
    for (const row of rows) {
      const event = row as TwoFactorEvent
      await this.notify(event)
      if (event.type === 'challenge.failed' && event.userId !== null) await this.checkAlert(event.userId)
      published.push(event)
    }
    return published
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

  /**
   * More than `alertThreshold` failures in the window raises the alert, once per window. The
   * count is taken after this failure's own event is stored, so of concurrent failures the last
   * to count sees them all; the mark makes sure only one of those that see enough raises it.
   */
  private async checkAlert (userId: string): Promise<void> {
    if (this.options.alert === undefined) return
    const now = this.options.clock()
    const windowMs = this.options.alertWindowMs
    const failures = await this.events.countSince(userId, 'challenge.failed', new Date(now - windowMs))
    if (failures <= this.options.alertThreshold) return
    if (!await this.marks.take(`alert:${userId}`, new Date(now), new Date(now + windowMs))) return
    try {
      await this.options.alert({ userId, failures, windowMs, at: new Date(now) })
    } catch (error) {
      this.options.log.warn({ errorName: (error as Error)?.name }, 'two-factor alert hook failed')
    }
  }
}
