// The host's side of the CLI, in a file the CLI finds as drizzle-kit finds drizzle.config.ts:
// `two-factor.config.ts` (or .mts, .js, .mjs) in the current folder, or the file --config names.
// Its default export says how to reach the host's users (the `accounts` adapter, so that
// `<user>` may be a login name) and, optionally, where the database and keys are. Without a
// file the CLI works as before: users are their ids.
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { TwoFactorDatabase } from '../db/database.ts'
import { missingIndexMethods, type TwoFactorSessionStore } from '../db/session-store.ts'
import type { AccountsAdapter } from '../options.ts'
import { CliFailure } from './errors.ts'

/** The default export of `two-factor.config.ts`. */
export interface TwoFactorCliConfig {
  /**
   * The host's users: the same adapter the plugin is given (with `findByLogin` for login
   * names), or a function that builds it on the database the CLI opened.
   */
  accounts?: AccountsAdapter | ((db: TwoFactorDatabase) => AccountsAdapter | Promise<AccountsAdapter>)
  /**
   * A Postgres connection string, used when neither --database-url nor DATABASE_URL is given.
   * Read it from the environment (`process.env.APP_DATABASE_URL`) rather than writing a password here.
   */
  databaseUrl?: string
  /** An embedded PGlite folder, relative to the config file, used when no URL is given. */
  dataDir?: string
  /** The key ring spec ("id:base64key,…"), used when TWO_FACTOR_KEYS and --keys-file are not given. */
  keys?: string
  /**
   * The app's session store when it is not the plugin's Postgres one (a RedisSessionStore, say),
   * or a function of the database returning it: a reset, a lifted requirement and an unlock from
   * the CLI must end the user's sessions where the app keeps them.
   */
  sessionStore?: TwoFactorSessionStore | ((db: TwoFactorDatabase) => TwoFactorSessionStore | Promise<TwoFactorSessionStore>)
}

export interface LoadedConfig extends Omit<TwoFactorCliConfig, 'dataDir'> {
  /** The file read, for messages; null when there was none. */
  file: string | null
  /** The PGlite folder, resolved against the config file's folder. */
  dataDir?: string
}

export const CONFIG_FILES = ['two-factor.config.ts', 'two-factor.config.mts', 'two-factor.config.js', 'two-factor.config.mjs'] as const

/** The config --config names, else the first of CONFIG_FILES in `cwd`, else none. */
export async function loadConfig (configArg: string | undefined, cwd: string): Promise<LoadedConfig> {
  let file: string | undefined
  if (configArg !== undefined) {
    file = resolve(cwd, configArg)
    if (!existsSync(file)) throw new CliFailure(`The config file ${file} does not exist.`)
  } else {
    file = CONFIG_FILES.map((name) => join(cwd, name)).find((path) => existsSync(path))
    if (file === undefined) return { file: null }
  }
  const config = checked((await importConfig(file)).default, file)
  return { ...config, file, dataDir: config.dataDir === undefined ? undefined : resolve(dirname(file), config.dataDir) }
}

/** The adapter the config gives, built on the CLI's database when it is a function; null without one. */
export async function accountsOf (config: LoadedConfig, db: TwoFactorDatabase): Promise<AccountsAdapter | null> {
  if (config.accounts === undefined) return null
  const adapter = typeof config.accounts === 'function' ? await config.accounts(db) : config.accounts
  checkAdapter(adapter, config.file!)
  return adapter
}

async function importConfig (file: string): Promise<{ default?: unknown }> {
  const url = pathToFileURL(file).href
  try {
    return await import(url) as { default?: unknown }
  } catch (error) {
    // Plain node (the installed bin) can't load TypeScript; tsx can, when the host has it.
    if ((error as NodeJS.ErrnoException).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw loadFailure(file, error)
  }
  let tsImport: (specifier: string, parent: string) => Promise<unknown>
  try {
    ({ tsImport } = await import('tsx/esm/api'))
  } catch {
    throw new CliFailure(`${file} is TypeScript: install tsx (npm install --save-dev tsx) to let the CLI read it, or write the config as two-factor.config.mjs.`)
  }
  try {
    return await tsImport(url, import.meta.url) as { default?: unknown }
  } catch (error) {
    throw loadFailure(file, error)
  }
}

/** The file's own error, first line only: a stack would bury the message an operator can act on. */
function loadFailure (file: string, error: unknown): CliFailure {
  const message = String((error as Error)?.message ?? error).split('\n')[0]
  return new CliFailure(`Could not load the config file ${file}: ${message}`)
}

function checked (value: unknown, file: string): TwoFactorCliConfig {
  if (value === null || typeof value !== 'object') {
    throw new CliFailure(`${file} must export default an object: { accounts, databaseUrl?, dataDir?, keys?, sessionStore? }.`)
  }
  const config = value as Record<string, unknown>
  const known = new Set(['accounts', 'databaseUrl', 'dataDir', 'keys', 'sessionStore'])
  const unknown = Object.keys(config).filter((key) => !known.has(key))
  if (unknown.length > 0) throw new CliFailure(`${file}: unknown setting ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${[...known].join(', ')}).`)
  for (const key of ['databaseUrl', 'dataDir', 'keys'] as const) {
    // Undefined is allowed: `databaseUrl: process.env.X` with X unset means "not set here".
    if (config[key] !== undefined && typeof config[key] !== 'string') throw new CliFailure(`${file}: "${key}" must be a string.`)
  }
  const accounts = config.accounts
  if (accounts !== undefined && typeof accounts !== 'function') checkAdapter(accounts, file)
  const store = config.sessionStore
  if (store !== undefined && typeof store !== 'function' && missingIndexMethods(store).length > 0) {
    throw new CliFailure(`${file}: "sessionStore" lacks ${missingIndexMethods(store).join(', ')} (a store the plugin accepts, such as RedisSessionStore, has them).`)
  }
  return config as TwoFactorCliConfig
}

function checkAdapter (adapter: unknown, file: string): asserts adapter is AccountsAdapter {
  if (adapter === null || typeof adapter !== 'object') throw new CliFailure(`${file}: "accounts" must be the adapter (findUser, userId, label, findByLogin) or a function of the database returning it.`)
  const a = adapter as Record<string, unknown>
  for (const name of ['findUser', 'userId']) {
    if (typeof a[name] !== 'function') throw new CliFailure(`${file}: accounts.${name} must be a function.`)
  }
  if (a.findByLogin !== undefined && typeof a.findByLogin !== 'function') throw new CliFailure(`${file}: accounts.findByLogin must be a function when given.`)
}

/** The session store the config names, or null for the plugin's Postgres one. */
export async function sessionStoreOf (config: LoadedConfig, db: TwoFactorDatabase): Promise<TwoFactorSessionStore | null> {
  if (config.sessionStore === undefined) return null
  const store = typeof config.sessionStore === 'function' ? await config.sessionStore(db) : config.sessionStore
  const missing = missingIndexMethods(store)
  if (missing.length > 0) throw new CliFailure(`${config.file}: "sessionStore" lacks ${missing.join(', ')}.`)
  return store
}
