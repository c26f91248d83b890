// The CLI's commands by name. Each one first checks its arguments (a UsageError, exit 2, before
// any database is opened), then runs against the database through the shared service, so every
// change is the same change the admin panel makes, audited with actor `cli`.
import type { CommandName } from './args.ts'
import { requireCommand, reset, unlock } from './account-changes.ts'
import type { Command } from './command.ts'
import { doctor } from './doctor.ts'
import { events, pruneEvents } from './events.ts'
import { exempt } from './exempt.ts'
import { list } from './list.ts'
import { migrateCommand } from './migrate.ts'
import { policy } from './policy.ts'
import { rotate } from './rotate-keys.ts'
import { status } from './status.ts'

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
