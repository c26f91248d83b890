// What a CLI command is: a check of its command line (before any database is opened) and the
// work, given the database, the core and the way to print.
import type { Keyring } from '../core/keyring.ts'
import { normalisePolicy, type PolicySettings } from '../core/policy.ts'
import type { AccountFacts } from '../db/admin-store.ts'
import type { TwoFactorDatabase } from '../db/database.ts'
import type { Core } from '../services/core.ts'
import type { ParsedArgs } from './args.ts'
import type { FindUser } from './users.ts'

export interface CommandContext {
  db: TwoFactorDatabase
  core: Core
  /** The key ring, for commands that declare `needsKeys`. */
  keyring: () => Keyring
  /** The user id a `<user>` argument names (an id, or a login name through the config's adapter). */
  findUser: FindUser
  out: (line: string) => void
  err: (line: string) => void
  /** True once nobody reads the output any more (`| head`): long output may stop early. */
  outputClosed: () => boolean
  json: boolean
}

export interface Command<Input> {
  /** Checks the command line; throws UsageError. */
  parse (args: ParsedArgs): Input
  run (input: Input, ctx: CommandContext): Promise<number>
  /** Loads the key ring before the database is opened (so a bad one fails fast). */
  needsKeys?: boolean
}

/** What the plugin's tables hold for one user, and the policy, in one statement. */
export async function factsOf (ctx: CommandContext, userId: string): Promise<{ facts: AccountFacts, policy: PolicySettings }> {
  const { facts, policy } = await ctx.core.stores.admin.factsFor([userId])
  return { facts: facts[0]!, policy: normalisePolicy(policy) }
}
