// What every benchmark section is handed by the runner.
import type { Keyring } from '../plugin/index.ts'
import type { BenchDatabase } from './lib/database.ts'
import type { ServerProcess, ServerSettings } from './lib/server-process.ts'
import type { Seeder } from './lib/seed.ts'

export interface BenchContext {
  database: BenchDatabase
  keyring: Keyring
  settings: ServerSettings
  seeder: Seeder
  /** The demo app with the plugin, in its own process. */
  plugin: ServerProcess
  /** The same sessions without the plugin, in its own process. */
  baseline: ServerProcess
  /** Complete sign-ins (password, then code) the plugin app has served so far. */
  signIns: number
  /** Load-generator connections: the machine has 2 cores shared by app, Postgres and load. */
  connections: number
  log (message: string): void
}
