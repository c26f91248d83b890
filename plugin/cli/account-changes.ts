// `require`, `reset` and `unlock`: the admin panel's row actions from a terminal, through the same
// service, so each is the same change with the same audit event (actor `cli`).
import { MAX_REASON_LENGTH } from '../services/admin.ts'
import { expectPositionals } from './args.ts'
import { unknownUser } from './account-status.ts'
import { factsOf, type Command } from './command.ts'
import { UsageError } from './errors.ts'
import { CLI_CONTEXT } from './service.ts'
import { terminalText } from './terminal-text.ts'

export const requireCommand: Command<{ user: string, on: boolean }> = {
  parse (args) {
    const [user, value] = expectPositionals(args, ['user', 'on|off'])
    if (value !== 'on' && value !== 'off') throw new UsageError(`The second argument of "require" is on or off, not "${value}".`, 'require')
    return { user: user!, on: value === 'on' }
  },
  async run ({ user, on }, ctx) {
    const userId = await ctx.findUser(user)
    const { facts } = await factsOf(ctx, userId)
    const shown = terminalText(userId)
    const codesBefore = on ? 0 : await ctx.core.stores.recovery.remaining(userId)
    await ctx.core.services.admin.setRequired(userId, on, CLI_CONTEXT)
    if (ctx.json) {
      ctx.out(JSON.stringify({ userId, required: on, cleared: !on && (facts.enrolled || facts.pendingEnrolment) }))
      return 0
    }
    if (!facts.seen) ctx.err(`Note: no sign-in by "${shown}" is recorded yet; the setting applies when a user with this id signs in.`)
    if (on) {
      ctx.out(`${shown}: two-factor is now required${facts.enrolled ? ' (already set up)' : '; they set it up at their next sign-in'}.`)
    } else {
      ctx.out(`${shown}: two-factor is no longer required by an admin.` +
        (facts.enrolled || facts.pendingEnrolment ? ` Their authenticator and ${codesBefore} unused recovery code${codesBefore === 1 ? '' : 's'} were cleared and their sessions ended.` : ''))
    }
    return 0
  }
}

export const reset: Command<{ user: string, reason: string }> = {
  parse (args) {
    const [user] = expectPositionals(args, ['user'])
    const reason = args.reason?.trim() ?? ''
    if (reason === '') throw new UsageError('"reset" needs --reason "why" (it goes into the audit log).', 'reset')
    if (reason.length > MAX_REASON_LENGTH) throw new UsageError(`Keep --reason under ${MAX_REASON_LENGTH} characters.`, 'reset')
    return { user: user!, reason }
  },
  async run ({ user, reason }, ctx) {
    const userId = await ctx.findUser(user)
    const { facts } = await factsOf(ctx, userId)
    if (!facts.seen) throw unknownUser(userId)
    await ctx.core.services.admin.reset(userId, reason, CLI_CONTEXT)
    if (ctx.json) {
      ctx.out(JSON.stringify({ userId, reset: true, wasEnrolled: facts.enrolled }))
      return 0
    }
    const shown = terminalText(userId)
    ctx.out(facts.enrolled
      ? `${shown}: two-factor was reset. Their secret and recovery codes are gone and their sessions ended; they sign in with their password${facts.required === true ? ' and set up two-factor again' : ''}.`
      : `${shown}: had no active two-factor; anything pending was cleared.`)
    return 0
  }
}

export const unlock: Command<{ user: string }> = {
  parse (args) {
    const [user] = expectPositionals(args, ['user'])
    return { user: user! }
  },
  async run ({ user }, ctx) {
    const userId = await ctx.findUser(user)
    const { facts } = await factsOf(ctx, userId)
    if (!facts.seen) throw unknownUser(userId)
    const wasLocked = facts.lockedUntil !== null && facts.lockedUntil > new Date()
    if (wasLocked) await ctx.core.services.admin.unlock(userId, CLI_CONTEXT)
    if (ctx.json) ctx.out(JSON.stringify({ userId, unlocked: wasLocked }))
    else ctx.out(wasLocked ? `${terminalText(userId)}: unlocked.` : `${terminalText(userId)} is not locked; nothing to do.`)
    return 0
  }
}
