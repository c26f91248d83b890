// Where the CLI's data lives: a Postgres server (DATABASE_URL, postgres.js) or an embedded
// PGlite folder (the demo's .data/pglite by default), and the key ring for rotate-keys.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { Keyring, KeyringError } from '../core/keyring.ts'
import type { TwoFactorDatabase } from '../db/database.ts'
import type { ParsedArgs } from './args.ts'
import type { LoadedConfig } from './config.ts'
import { CliFailure } from './errors.ts'

export const DEFAULT_DATA_DIR = join('.data', 'pglite')
/** The demo keeps its generated key ring next to its PGlite folder. */
const DEMO_KEYS_FILE = 'two-factor-keys'

export interface Connection {
  db: TwoFactorDatabase
  /** For messages: which database, never a password. */
  description: string
  /** The PGlite folder, when that is what was opened. */
  dataDir: string | null
  close (): Promise<void>
}

export interface CliEnv {
  env: Record<string, string | undefined>
  cwd: string
}

/**
 * Which database to open, a server URL or a PGlite folder: the command line's, else
 * DATABASE_URL, else the config file's, else the demo's folder.
 */
export function databaseTarget (args: ParsedArgs, { env, cwd }: CliEnv, config: LoadedConfig): { url: string } | { dataDir: string } {
  if (args.databaseUrl !== undefined) return { url: args.databaseUrl }
  if (args.dataDir !== undefined) return { dataDir: resolve(cwd, args.dataDir) }
  const url = nonEmpty(env.DATABASE_URL) ?? nonEmpty(config.databaseUrl)
  if (url !== undefined) return { url }
  return { dataDir: config.dataDir ?? resolve(cwd, DEFAULT_DATA_DIR) }
}

export async function openConnection (args: ParsedArgs, io: CliEnv, config: LoadedConfig): Promise<Connection> {
  const target = databaseTarget(args, io, config)
  if ('url' in target) {
    const { url } = target
    const [{ default: postgres }, { drizzle }] = await Promise.all([import('postgres'), import('drizzle-orm/postgres-js')])
    let client
    try {
      client = postgres(url, { max: 2, onnotice: () => {}, connect_timeout: 10 })
    } catch {
      throw new CliFailure('DATABASE_URL is not a valid connection string (postgres://user:password@host:5432/database).')
    }
    return {
      db: drizzle(client) as unknown as TwoFactorDatabase,
      description: `Postgres at ${safeHost(url)}`,
      dataDir: null,
      close: async () => { await client.end({ timeout: 5 }) }
    }
  }
  const { dataDir } = target
  // PGlite would quietly create an empty database in a folder that holds none.
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    throw new CliFailure(`No PGlite database in ${dataDir}. Give --data-dir (the app's PGlite folder) or set DATABASE_URL.`)
  }
  // PGlite is an optional peer of the package: an app on a Postgres server need not install it.
  const [{ PGlite }, { drizzle }] = await Promise.all([import('@electric-sql/pglite'), import('drizzle-orm/pglite')]).catch((error: { code?: unknown }) => {
    if (error?.code === 'ERR_MODULE_NOT_FOUND') throw new CliFailure('--data-dir needs the optional package @electric-sql/pglite (npm install @electric-sql/pglite), or give a Postgres server with DATABASE_URL / --database-url.')
    throw error
  })
  let client
  try {
    client = new PGlite(dataDir)
    await client.waitReady
  } catch {
    throw new CliFailure(`Could not open the PGlite database in ${dataDir}. Is the app still running on it? Stop it first.`)
  }
  return {
    db: drizzle(client) as unknown as TwoFactorDatabase,
    description: `PGlite in ${dataDir}`,
    dataDir,
    close: async () => { await client.close() }
  }
}

/**
 * --keys-file, else TWO_FACTOR_KEYS, else the config file's `keys`, else the demo's key file
 * beside its PGlite folder (the command line first, as for the database). Read before the
 * database is opened, so a bad key ring fails fast.
 */
export function loadKeyring (args: ParsedArgs, io: CliEnv, config: LoadedConfig): Keyring {
  const { env, cwd } = io
  let spec: string | undefined
  let source = 'TWO_FACTOR_KEYS'
  const target = databaseTarget(args, io, config)
  if (args.keysFile !== undefined) {
    const file = resolve(cwd, args.keysFile)
    if (!existsSync(file)) throw new CliFailure(`The keys file ${file} does not exist.`)
    spec = readFileSync(file, 'utf8').trim()
    source = `the keys file ${file}`
  } else if (nonEmpty(env.TWO_FACTOR_KEYS) !== undefined) {
    spec = nonEmpty(env.TWO_FACTOR_KEYS)
  } else if (nonEmpty(config.keys) !== undefined) {
    spec = config.keys
    source = `"keys" in ${config.file}`
  } else if ('dataDir' in target) {
    const file = join(dirname(target.dataDir), DEMO_KEYS_FILE)
    if (existsSync(file)) {
      spec = readFileSync(file, 'utf8').trim()
      source = `the keys file ${file}`
    }
  }
  try {
    return Keyring.fromEnv(spec, 'TWO_FACTOR_KEYS')
  } catch (error) {
    if (error instanceof KeyringError) throw new CliFailure(source === 'TWO_FACTOR_KEYS' ? error.message : `${error.message} (read from ${source})`)
    throw error
  }
}

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value
}

/** host:port/database of a connection string, without user or password. */
function safeHost (url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}${parsed.port === '' ? '' : `:${parsed.port}`}${parsed.pathname}`
  } catch {
    return 'DATABASE_URL'
  }
}
