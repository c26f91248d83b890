// `policy show` and `policy set …`: who must use 2FA, as the admin panel's policy form edits it.
// Only what is named on the command line changes; the grace period starts when "require for
// everyone" is switched on, as the service decides.
import type { PolicySettings } from '../core/policy.ts'
import { expectPositionals, type ParsedArgs } from './args.ts'
import type { Command, CommandContext } from './command.ts'
import { UsageError } from './errors.ts'
import { padTable, plural, utc } from './format.ts'
import { CLI_CONTEXT } from './service.ts'

/** Role names as the admin panel's form accepts them. */
const ROLE_NAME = /^[\w.:@-]{1,64}$/
const MAX_ROLES = 50
const DAY_MS = 24 * 60 * 60_000

type Changes = Partial<Pick<PolicySettings, 'requireAll' | 'graceDays' | 'requiredRoles' | 'exemptRoles' | 'allowSkip'>>

type PolicyInput = { action: 'show' } | { action: 'set', changes: Changes }

function onOff (name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined
  if (value !== 'on' && value !== 'off') throw new UsageError(`--${name} is on or off, not "${value}".`, 'policy')
  return value === 'on'
}

/** "a,b" or "a b"; an empty value ("") clears the list. */
function roleList (name: string, value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined
  const names = [...new Set(value.split(/[\s,]+/).filter((r) => r !== ''))]
  if (names.length > MAX_ROLES) throw new UsageError(`--${name}: at most ${MAX_ROLES} roles.`, 'policy')
  const bad = names.find((r) => !ROLE_NAME.test(r))
  if (bad !== undefined) throw new UsageError(`--${name}: "${bad}" is not a role name (letters, digits and _ . : @ -, up to 64).`, 'policy')
  return names
}

function parseChanges (args: ParsedArgs): Changes {
  const changes: Changes = {
    requireAll: onOff('everyone', args.everyone),
    graceDays: args.graceDays,
    requiredRoles: roleList('roles', args.roles),
    exemptRoles: roleList('exempt-roles', args.exemptRoles),
    allowSkip: onOff('allow-skip', args.allowSkip)
  }
  return Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) as Changes
}

export const policy: Command<PolicyInput> = {
  parse (args) {
    const action = args.positionals[0] ?? 'show'
    if (action === 'show') {
      expectPositionals({ ...args, positionals: args.positionals.slice(1) }, [])
      const given = parseChanges(args)
      if (Object.keys(given).length > 0) throw new UsageError('"policy show" changes nothing; did you mean "policy set"?', 'policy')
      return { action: 'show' }
    }
    if (action !== 'set') throw new UsageError(`"policy" is followed by show or set, not "${action}".`, 'policy')
    expectPositionals({ ...args, positionals: args.positionals.slice(1) }, [])
    const changes = parseChanges(args)
    if (Object.keys(changes).length === 0) {
      throw new UsageError('"policy set" needs at least one of --everyone on|off, --grace-days N, --roles a,b, --exempt-roles a,b, --allow-skip on|off.', 'policy')
    }
    return { action: 'set', changes }
  },
  async run (input, ctx) {
    const before = await ctx.core.services.admin.policy()
    if (input.action === 'show') {
      print(before, ctx)
      return 0
    }
    const wanted = { ...before, ...input.changes }
    const same = (Object.keys(input.changes) as Array<keyof Changes>).every((key) => JSON.stringify(wanted[key]) === JSON.stringify(before[key]))
    if (same) {
      if (ctx.json) ctx.out(JSON.stringify({ ...before, changed: false }))
      else ctx.out('The policy already says that; nothing changed.')
      return 0
    }
    const after = await ctx.core.services.admin.setPolicy(wanted, CLI_CONTEXT)
    if (ctx.json) {
      ctx.out(JSON.stringify({ ...after, changed: true }))
      return 0
    }
    ctx.out('Policy changed (audited as policy.changed, actor cli):\n')
    print(after, ctx)
    if (after.requireAll && !before.requireAll) {
      ctx.out(`\nEveryone without two-factor is asked to set it up at their next sign-in, and may skip for ${plural(after.graceDays, 'day')}.`)
    }
    return 0
  }
}

function print (settings: PolicySettings, ctx: CommandContext): void {
  if (ctx.json) {
    ctx.out(JSON.stringify(settings))
    return
  }
  const roles = (list: readonly string[]) => list.length === 0 ? 'none' : list.join(', ')
  let everyone = 'off'
  if (settings.requireAll) {
    const since = settings.requireAllSince === null ? null : new Date(settings.requireAllSince)
    everyone = since === null
      ? 'on'
      : `on since ${utc(since)}; grace until ${utc(new Date(since.getTime() + settings.graceDays * DAY_MS))} (or that long after a newer account's creation)`
  }
  ctx.out(padTable([
    ['Require for everyone:', everyone],
    ['Grace period:', plural(settings.graceDays, 'day')],
    ['Exempt roles:', `${roles(settings.exemptRoles)} (left out of "everyone")`],
    ['Required roles:', roles(settings.requiredRoles)],
    ['Skip for now:', settings.allowSkip ? 'allowed for per-user and per-role requirements' : 'not allowed outside a grace period']
  ]).join('\n'))
  ctx.out('\nAdmins are required by default; the admin panel and "two-factor require" set it per user.')
}
