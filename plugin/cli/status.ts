// `two-factor status <user>`: one account in full, with its recent events.
import { expectPositionals } from './args.ts'
import { policyNote, STATUS_TEXT, statusOfFacts, unknownUser } from './account-status.ts'
import { factsOf, type Command } from './command.ts'
import { iso, padTable, utc } from './format.ts'
import { terminalText } from './terminal-text.ts'

export const status: Command<{ user: string }> = {
  parse (args) {
    const [user] = expectPositionals(args, ['user'])
    return { user: user! }
  },
  async run ({ user }, ctx) {
    const userId = await ctx.findUser(user)
    const now = new Date()
    const { facts, policy } = await factsOf(ctx, userId)
    if (!facts.seen) throw unknownUser(userId)
    const [codesLeft, recent] = await Promise.all([
      ctx.core.stores.recovery.remaining(userId),
      ctx.core.stores.admin.eventsPage({ userId, limit: 5 })
    ])
    const state = statusOfFacts(facts, now)
    const locked = facts.lockedUntil !== null && facts.lockedUntil > now ? facts.lockedUntil : null
    const exemptUntil = facts.exemptUntil !== null && facts.exemptUntil > now ? facts.exemptUntil : null
    if (ctx.json) {
      ctx.out(JSON.stringify({
        userId,
        status: state,
        enrolled: facts.enrolled,
        enabledAt: iso(facts.enrolled ? facts.enabledAt : null),
        recoveryCodesLeft: codesLeft,
        requiredFlag: facts.required,
        lockedUntil: iso(locked),
        pendingEnrolment: facts.pendingEnrolment,
        exemptUntil: iso(exemptUntil),
        exemptReason: exemptUntil === null ? null : facts.exemptReason,
        policy,
        recentEvents: recent.events.map((e) => ({ at: e.at.toISOString(), type: e.type, actor: e.actor }))
      }))
      return 0
    }
    ctx.out(padTable([
      ['User:', userId],
      ['Status:', STATUS_TEXT[state]],
      ['Two-factor:', facts.enrolled && facts.enabledAt !== null ? `on since ${utc(facts.enabledAt)}` : 'off'],
      ['Recovery codes:', `${codesLeft} unused`],
      ['Required (flag):', facts.required === null ? 'not set (the admin default applies to admins)' : facts.required ? 'yes' : 'no (lifted by an admin)'],
      ['Locked:', locked === null ? 'no' : `until ${utc(locked)}`],
      ['Setup started:', facts.pendingEnrolment ? 'yes, not confirmed' : 'no'],
      ['Exempt:', exemptUntil === null ? 'no' : `from every rule until ${utc(exemptUntil)} (${facts.exemptReason ?? 'no reason given'})`]
    ]).join('\n'))
    if (recent.events.length > 0) {
      ctx.out('\nRecent events:')
      for (const e of recent.events) ctx.out(`  ${utc(e.at)}  ${terminalText(e.type)}${e.actor !== null && e.actor !== userId ? ` (by ${terminalText(e.actor)})` : ''}`)
    }
    const note = policyNote(policy)
    if (note !== null) ctx.out(`\n${note}`)
    return 0
  }
}
