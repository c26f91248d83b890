// The audit log from the command line: `events` reads it (newest first, as the admin panel
// shows it), as text to read or JSON lines to export; `prune-events` deletes what is older than
// N days, itself an audited change.
import { parseTime } from '../core/time.ts'
import type { EventRow } from '../db/events-store.ts'
import { EVENT_TYPES } from '../services/audit.ts'
import { expectPositionals } from './args.ts'
import type { Command } from './command.ts'
import { UsageError } from './errors.ts'
import { plural, utc } from './format.ts'
import { CLI_CONTEXT } from './service.ts'
import { terminalText } from './terminal-text.ts'

/** On a terminal, a screenful; an export (jsonl) is everything that matches unless --limit says. */
const TEXT_LIMIT = 50
const PAGE = 500

interface EventsInput {
  user?: string
  type?: string
  since?: Date
  limit?: number
  format: 'text' | 'jsonl'
}

export const events: Command<EventsInput> = {
  parse (args) {
    expectPositionals(args, [])
    const format = args.format ?? (args.json ? 'jsonl' : 'text')
    if (format !== 'text' && format !== 'jsonl') throw new UsageError(`--format is text or jsonl, not "${format}".`, 'events')
    if (args.json && format !== 'jsonl') throw new UsageError('--json is --format jsonl; give one of them.', 'events')
    if (args.type !== undefined && !(EVENT_TYPES as readonly string[]).includes(args.type)) {
      throw new UsageError(`--type "${args.type}" is not an event type. Types: ${EVENT_TYPES.join(', ')}.`, 'events')
    }
    let since: Date | undefined
    if (args.since !== undefined) {
      const parsed = parseTime(args.since.trim())
      if (parsed === null) throw new UsageError(`--since must be a date (2026-07-01) or a time (2026-07-01T18:00, UTC unless it says otherwise), not "${args.since}".`, 'events')
      since = parsed
    }
    if (args.user !== undefined && (args.user.trim() === '' || args.user.length > 256)) throw new UsageError('--user must be 1–256 characters.', 'events')
    return { user: args.user, type: args.type, since, limit: args.limit, format }
  },
  async run (input, ctx) {
    const userId = input.user === undefined ? undefined : await ctx.findUser(input.user)
    const limit = input.limit ?? (input.format === 'text' ? TEXT_LIMIT : Infinity)
    let written = 0
    let cursor: { before: Date, beforeId: number } | undefined
    let more = true
    // Page by page, so an export of millions of rows never sits in memory, and stops as soon as
    // the reader has gone (`| head`).
    while (more && written < limit && !ctx.outputClosed()) {
      const page = await ctx.core.stores.admin.eventsPage({
        userId, type: input.type, since: input.since, ...cursor, limit: Math.min(PAGE, limit - written)
      })
      for (const event of page.events) ctx.out(input.format === 'jsonl' ? jsonLine(event) : textLine(event))
      written += page.events.length
      more = page.hasMore
      const last = page.events.at(-1)
      if (last !== undefined) cursor = { before: last.at, beforeId: last.id }
      // A closed pipe is reported by the event loop's I/O phase, which an embedded database's
      // queries (settled without leaving the microtask queue) would never reach.
      await new Promise((resolve) => setImmediate(resolve))
    }
    if (input.format === 'text') {
      if (written === 0) ctx.out('No events match.')
      else if (more) ctx.out(`\nThe newest ${plural(written, 'event')} shown; --limit N shows more, --since DATE goes back to a date.`)
    }
    return 0
  }
}

function jsonLine (e: EventRow): string {
  return JSON.stringify({ id: e.id, at: e.at.toISOString(), type: e.type, userId: e.userId, actor: e.actor, ip: e.ip, userAgent: e.userAgent, details: e.details })
}

/** Time, type, user, who did it (when not the user), IP, details; stored text is escaped. */
function textLine (e: EventRow): string {
  const parts = [e.at.toISOString().slice(0, 19).replace('T', ' ') + ' UTC', e.type, e.userId ?? '-']
  if (e.actor !== null && e.actor !== e.userId) parts.push(`by ${e.actor}`)
  if (e.ip !== null) parts.push(`from ${e.ip}`)
  if (Object.keys(e.details ?? {}).length > 0) parts.push(JSON.stringify(e.details))
  return parts.map(terminalText).join('  ')
}

export const pruneEvents: Command<{ olderThanDays: number }> = {
  parse (args) {
    expectPositionals(args, [])
    if (args.olderThan === undefined) throw new UsageError('"prune-events" needs --older-than DAYS.', 'prune-events')
    return { olderThanDays: args.olderThan }
  },
  async run ({ olderThanDays }, ctx) {
    const { deleted, before } = await ctx.core.services.admin.pruneEvents(olderThanDays, CLI_CONTEXT)
    if (ctx.json) {
      ctx.out(JSON.stringify({ deleted, before: before.toISOString(), olderThanDays }))
      return 0
    }
    ctx.out(deleted === 0
      ? `No audit events older than ${plural(olderThanDays, 'day')} (before ${utc(before)}); nothing to do.`
      : `Deleted ${plural(deleted, 'audit event')} older than ${plural(olderThanDays, 'day')} (before ${utc(before)}); the deletion is logged as events.pruned.`)
    return 0
  }
}
