// What each CLI command does. Each one first checks its arguments (a UsageError, exit 2, before
// any database is opened), then runs against the database through the shared service, so every
// change is the same change the admin panel makes, audited with actor `cli`.
import type { AccountFacts, UserStatus } from '../db/admin-store.ts'
import { USER_STATUSES } from '../db/admin-store.ts'
import { migrate } from '../db/migrate.ts'
import { rotateKeys, type RotationReport } from '../db/rotate-keys.ts'
import { normalisePolicy, type PolicySettings } from '../core/policy.ts'
import type { Keyring } from '../core/keyring.ts'
import { expectPositionals, type CommandName } from './args.ts'
import { factsOf, type Command, type CommandContext } from './command.ts'
import { doctor } from './doctor.ts'
import { CliFailure, UsageError } from './errors.ts'
import { events, pruneEvents } from './events.ts'
import { exempt } from './exempt.ts'
import { iso, padTable, utc } from './format.ts'
import { policy } from './policy.ts'
import { CLI_ACTOR, CLI_CONTEXT } from './service.ts'
import { terminalText } from './terminal-text.ts'

const LIST_LIMIT = 50
const STATUS_TEXT: Record<UserStatus, string> = {
  enrolled: 'enrolled',
  awaiting: 'awaiting setup',
  'not-required': 'not required',
  locked: 'locked'
}

/** The status as the plugin's own row decides it (roles and "everyone" need the app). */
function statusOfFacts (facts: AccountFacts, now: Date): UserStatus {
  if (facts.lockedUntil !== null && facts.lockedUntil > now) return 'locked'
  if (facts.enrolled) return 'enrolled'
  return facts.required === true ? 'awaiting' : 'not-required'
}

function policyNote (policy: PolicySettings): string | null {
  const rules: string[] = []
  const roles = (names: readonly string[]) => names.map(terminalText).join(', ')
  if (policy.requireAll) rules.push('"require for everyone"' + (policy.exemptRoles.length > 0 ? ` (exempt: ${roles(policy.exemptRoles)})` : ''))
  if (policy.requiredRoles.length > 0) rules.push(`roles ${roles(policy.requiredRoles)}`)
  if (rules.length === 0) return null
  return `Note: the policy also requires 2FA by ${rules.join(' and ')}; that depends on the app's user data, so the admin panel shows it, not this list.`
}

function unknownUser (userId: string): CliFailure {
  return new CliFailure(`The two-factor tables have no record of user "${userId}". Give the user id as the app stores it (or, with a two-factor.config.ts whose adapter has findByLogin, a login name); "two-factor list" shows the ids it knows.`)
}

// ── list ────────────────────────────────────────────────────────────────────────────────────

const list: Command<{ status: UserStatus | 'all', page: number, limit: number }> = {
  parse (args) {
    expectPositionals(args, [])
    const status = args.status ?? 'all'
    if (status !== 'all' && !(USER_STATUSES as readonly string[]).includes(status)) {
      throw new UsageError(`--status must be one of: ${USER_STATUSES.join(', ')}.`, 'list')
    }
    return { status: status as UserStatus | 'all', page: args.page ?? 1, limit: args.limit ?? LIST_LIMIT }
  },
  async run ({ status, page, limit }, ctx) {
    const now = new Date()
    const result = await ctx.core.stores.admin.pageByStatus(status, now, (page - 1) * limit, limit)
    const policy = normalisePolicy(result.policy)
    const rows = result.facts.map((f) => ({
      userId: f.userId,
      status: statusOfFacts(f, now),
      requiredFlag: f.required,
      enabledAt: f.enrolled ? f.enabledAt : null,
      lockedUntil: f.lockedUntil !== null && f.lockedUntil > now ? f.lockedUntil : null,
      pendingEnrolment: f.pendingEnrolment
    }))
    if (ctx.json) {
      ctx.out(JSON.stringify({
        users: rows.map((r) => ({ ...r, enabledAt: iso(r.enabledAt), lockedUntil: iso(r.lockedUntil) })),
        total: result.total,
        page,
        limit
      }))
      return 0
    }
    if (rows.length === 0) {
      ctx.out(result.total === 0 ? 'No accounts match.' : `No accounts on page ${page} (${result.total} in all).`)
    } else {
      ctx.out(padTable([
        ['USER', 'STATUS', 'REQUIRED FLAG', 'DETAILS'],
        ...rows.map((r) => [
          r.userId,
          STATUS_TEXT[r.status],
          r.requiredFlag === null ? '-' : r.requiredFlag ? 'yes' : 'no',
          r.lockedUntil !== null ? `until ${utc(r.lockedUntil)}` : r.enabledAt !== null ? `on since ${utc(r.enabledAt)}` : r.pendingEnrolment ? 'setup started' : ''
        ])
      ]).join('\n'))
      const first = (page - 1) * limit + 1
      ctx.out(`\n${first}–${first + rows.length - 1} of ${result.total}${first + rows.length - 1 < result.total ? ` (next: --page ${page + 1})` : ''}`)
    }
    const note = policyNote(policy)
    if (note !== null) ctx.out(note)
    return 0
  }
}

// ── status ──────────────────────────────────────────────────────────────────────────────────

const status: Command<{ user: string }> = {
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

// ── require ─────────────────────────────────────────────────────────────────────────────────

const requireCommand: Command<{ user: string, on: boolean }> = {
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

// ── reset ───────────────────────────────────────────────────────────────────────────────────

const reset: Command<{ user: string, reason: string }> = {
  parse (args) {
    const [user] = expectPositionals(args, ['user'])
    const reason = args.reason?.trim() ?? ''
    if (reason === '') throw new UsageError('"reset" needs --reason "why" (it goes into the audit log).', 'reset')
    if (reason.length > 500) throw new UsageError('Keep --reason under 500 characters.', 'reset')
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

// ── unlock ──────────────────────────────────────────────────────────────────────────────────

const unlock: Command<{ user: string }> = {
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

// ── rotate-keys ─────────────────────────────────────────────────────────────────────────────

const rotate: Command<{ batchSize: number | undefined }> = {
  needsKeys: true,
  parse (args) {
    expectPositionals(args, [])
    return { batchSize: args.batchSize }
  },
  async run ({ batchSize }, ctx) {
    const keyring = ctx.keyring()
    const started = Date.now()
    const report = await rotateKeys(ctx.db, keyring, {
      batchSize,
      audit: ctx.core.services.audit,
      actor: CLI_ACTOR,
      onBatch: ctx.json ? undefined : (r) => ctx.err(`… ${r.secrets + r.pendingSecrets} re-sealed so far`)
    })
    if (ctx.json) {
      ctx.out(JSON.stringify({ ...report, ms: Date.now() - started }))
    } else {
      printRotation(report, keyring, Date.now() - started, ctx)
    }
    return report.failures.length > 0 ? 1 : 0
  }
}

function printRotation (report: RotationReport, keyring: Keyring, ms: number, ctx: CommandContext): void {
  ctx.out(`Re-sealed ${report.secrets} secret${report.secrets === 1 ? '' : 's'} and ${report.pendingSecrets} pending setup${report.pendingSecrets === 1 ? '' : 's'} under key "${terminalText(report.currentKeyId)}" in ${ms} ms (${report.batches} batch${report.batches === 1 ? '' : 'es'}).`)
  if (report.changedMeanwhile > 0) ctx.out(`${report.changedMeanwhile} changed while rotating and were left as the app wrote them.`)
  for (const failure of report.failures) {
    const why = failure.reason === 'unknown-key'
      ? 'sealed under a key that is not in TWO_FACTOR_KEYS (add the old key after the new one)'
      : 'could not be decrypted (damaged or altered); reset this user'
    ctx.err(`Failed: ${terminalText(failure.userId)} (${failure.column}): ${why}.`)
  }
  if (report.remaining > 0) ctx.out(`${report.remaining} account${report.remaining === 1 ? '' : 's'} still hold a secret under an older key.`)
  const old = Object.entries(report.recoveryCodesByOldKey)
  if (old.length > 0) {
    ctx.out(`Unused recovery codes made under older keys: ${old.map(([id, n]) => `${n} under "${terminalText(id)}"`).join(', ')}. ` +
      'Keep those keys in TWO_FACTOR_KEYS (after the current one) until their owners regenerate their codes.')
  } else if (report.remaining === 0) {
    const others = keyring.keyIds.filter((id) => id !== report.currentKeyId)
    if (others.length > 0) ctx.out(`Nothing uses ${others.map((id) => `"${terminalText(id)}"`).join(', ')} any more: ${others.length === 1 ? 'it' : 'they'} may be removed from TWO_FACTOR_KEYS.`)
  }
}

// ── migrate ─────────────────────────────────────────────────────────────────────────────────

const migrateCommand: Command<null> = {
  parse (args) {
    expectPositionals(args, [])
    return null
  },
  async run (_input, ctx) {
    const { applied } = await migrate(ctx.db)
    if (ctx.json) ctx.out(JSON.stringify({ applied }))
    else ctx.out(applied === 0 ? 'The two-factor tables are up to date.' : `Applied ${applied} migration${applied === 1 ? '' : 's'}.`)
    return 0
  }
}

export const COMMAND_TABLE: Record<Exclude<CommandName, 'help'>, Command<any>> = {
  list,
  status,
  require: requireCommand,
  reset,
  unlock,
  exempt,
  policy,
  events,
  'prune-events': pruneEvents,
  doctor,
  'rotate-keys': rotate,
  migrate: migrateCommand
}
