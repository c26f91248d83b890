// `two-factor migrate`: apply the plugin's migrations (the plugin also applies them at startup).
import { migrate } from '../db/migrate.ts'
import { expectPositionals } from './args.ts'
import type { Command } from './command.ts'

export const migrateCommand: Command<null> = {
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
