// Reading the command line: one command, its positional arguments and its options. Anything
// the CLI can't understand is a UsageError, which exits with code 2 and says what was wrong.
import { parseArgs } from 'node:util'
import { UsageError } from './errors.ts'

export const COMMANDS = ['list', 'status', 'require', 'reset', 'unlock', 'rotate-keys', 'migrate', 'help'] as const
export type CommandName = typeof COMMANDS[number]

export interface ParsedArgs {
  command: CommandName
  positionals: string[]
  help: boolean
  json: boolean
  databaseUrl?: string
  dataDir?: string
  keysFile?: string
  status?: string
  reason?: string
  page?: number
  limit?: number
  batchSize?: number
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  'database-url': { type: 'string' },
  'data-dir': { type: 'string' },
  'keys-file': { type: 'string' },
  status: { type: 'string' },
  reason: { type: 'string' },
  page: { type: 'string' },
  limit: { type: 'string' },
  'batch-size': { type: 'string' }
} as const

/** Which options each command accepts besides the connection ones and --help / --json. */
const COMMAND_OPTIONS: Record<CommandName, readonly string[]> = {
  list: ['status', 'page', 'limit'],
  status: [],
  require: [],
  reset: ['reason'],
  unlock: [],
  'rotate-keys': ['batch-size'],
  migrate: [],
  help: []
}
const COMMON = ['help', 'json', 'database-url', 'data-dir', 'keys-file']

function wholeNumber (name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}.`)
  return Number(value)
}

export function parseCommandLine (argv: readonly string[]): ParsedArgs {
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true })
  } catch (error) {
    // node's messages name the option ("Unknown option '--x'"), which is what the user needs.
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, '.'))
  }
  const { values, positionals } = parsed
  const [first, ...rest] = positionals
  if (first === undefined) {
    if (values.help === true) return { command: 'help', positionals: [], help: true, json: false }
    throw new UsageError('Which command? Try: two-factor --help')
  }
  if (!(COMMANDS as readonly string[]).includes(first)) throw new UsageError(`Unknown command "${first}". Commands: ${COMMANDS.join(', ')}.`)
  const command = first as CommandName

  const allowed = new Set([...COMMON, ...COMMAND_OPTIONS[command]])
  for (const name of Object.keys(values)) {
    if (!allowed.has(name)) throw new UsageError(`"${command}" takes no --${name} option.`, command)
  }
  if (values['database-url'] !== undefined && values['data-dir'] !== undefined) {
    throw new UsageError('Give either --database-url or --data-dir, not both.', command)
  }
  return {
    command,
    positionals: rest,
    help: values.help === true,
    json: values.json === true,
    databaseUrl: values['database-url'],
    dataDir: values['data-dir'],
    keysFile: values['keys-file'],
    status: values.status,
    reason: values.reason,
    page: wholeNumber('page', values.page, 1, 1_000_000),
    limit: wholeNumber('limit', values.limit, 1, 1000),
    batchSize: wholeNumber('batch-size', values['batch-size'], 1, 10_000)
  }
}

/** Exactly these positionals, or a UsageError naming what is missing or extra. */
export function expectPositionals (args: ParsedArgs, names: readonly string[]): string[] {
  const got = args.positionals
  if (got.length < names.length) throw new UsageError(`"${args.command}" needs ${names.map((n) => `<${n}>`).join(' ')}; missing <${names[got.length]}>.`, args.command)
  if (got.length > names.length) throw new UsageError(`"${args.command}" takes ${names.length === 0 ? 'no arguments' : names.map((n) => `<${n}>`).join(' ')}; unexpected "${got[names.length]}".`, args.command)
  for (const [i, value] of got.entries()) {
    if (value.trim() === '' || value.length > 256) throw new UsageError(`<${names[i]}> must be 1–256 characters.`, args.command)
  }
  return got
}
