// `exempt <user> --until DATE --reason TEXT`, `exempt <user> --off`: the break-glass exemption
// from every rule, as the admin panel sets it (the same limits, the same audit events).
import { parseTime } from '../core/time.ts'
import { MAX_EXEMPTION_MS, MAX_REASON_LENGTH } from '../services/admin.ts'
import { expectPositionals } from './args.ts'
import { factsOf, type Command } from './command.ts'
import { UsageError } from './errors.ts'
import { iso, utc } from './format.ts'
import { CLI_CONTEXT } from './service.ts'
import { terminalText } from './terminal-text.ts'


type ExemptInput = { user: string, until: Date, reason: string } | { user: string, until: null }

export const exempt: Command<ExemptInput> = {
  parse (args) {
    const [user] = expectPositionals(args, ['user'])
    if (args.off) {
      if (args.until !== undefined || args.reason !== undefined) throw new UsageError('"exempt --off" takes no --until or --reason.', 'exempt')
      return { user: user!, until: null }
    }
    if (args.until === undefined) throw new UsageError('"exempt" needs --until DATE --reason "why", or --off to end an exemption.', 'exempt')
    const until = parseTime(args.until.trim())
    if (until === null) throw new UsageError(`--until must be a date (2026-07-01) or a time (2026-07-01T18:00, UTC unless it says otherwise), not "${args.until}".`, 'exempt')
    const now = Date.now()
    if (until.getTime() <= now) throw new UsageError(`--until ${utc(until)} has passed; an exemption ends in the future.`, 'exempt')
    if (until.getTime() > now + MAX_EXEMPTION_MS) throw new UsageError('An exemption lasts a year at most.', 'exempt')
    const reason = args.reason?.trim() ?? ''
    if (reason === '') throw new UsageError('"exempt" needs --reason "why" (it goes into the audit log).', 'exempt')
    if (reason.length > MAX_REASON_LENGTH) throw new UsageError(`Keep --reason under ${MAX_REASON_LENGTH} characters.`, 'exempt')
    return { user: user!, until, reason }
  },
  async run (input, ctx) {
    const userId = await ctx.findUser(input.user)
    const shown = terminalText(userId)
    const { facts } = await factsOf(ctx, userId)
    if (input.until === null) {
      const wasExempt = facts.exemptUntil !== null && facts.exemptUntil > new Date()
      if (wasExempt) await ctx.core.services.admin.exempt(userId, null, null, CLI_CONTEXT)
      if (ctx.json) ctx.out(JSON.stringify({ userId, exemptUntil: null, ended: wasExempt }))
      else ctx.out(wasExempt ? `${shown}: the exemption has ended; the usual rules apply again.` : `${shown} is not exempt; nothing to do.`)
      return 0
    }
    await ctx.core.services.admin.exempt(userId, input.until, input.reason, CLI_CONTEXT)
    if (ctx.json) {
      ctx.out(JSON.stringify({ userId, exemptUntil: iso(input.until), reason: input.reason }))
      return 0
    }
    if (!facts.seen) ctx.err(`Note: no sign-in by "${shown}" is recorded yet; the exemption applies when a user with this id signs in.`)
    ctx.out(`${shown}: exempt from every two-factor rule until ${utc(input.until)}; it ends by itself then.`)
    return 0
  }
}
