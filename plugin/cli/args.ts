// Reading the command line: one command, its positional arguments and its options. Anything
// the CLI can't understand is a UsageError, which exits with code 2 and says what was wrong.
import { parseArgs } from 'node:util'
import { UsageError } from './errors.ts'

export const COMMANDS = ['list', 'status', 'require', 'reset', 'unlock', 'exempt', 'policy', 'events', 'prune-events', 'doctor', 'rotate-keys', 'migrate', 'help'] as const
export type CommandName = typeof COMMANDS[number]

export interface ParsedArgs {
  command: CommandName
  positionals: string[]
  help: boolean
  json: boolean
  databaseUrl?: string
  dataDir?: string
  keysFile?: string
  config?: string
  status?: string
  reason?: string
  page?: number
  limit?: number
  batchSize?: number
  until?: string
  off: boolean
  everyone?: string
  graceDays?: number
  roles?: string
  exemptRoles?: string
  allowSkip?: string
  user?: string
  type?: string
  since?: string
  format?: string
  olderThan?: number
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  'database-url': { type: 'string' },
  'data-dir': { type: 'string' },
  'keys-file': { type: 'string' },
  config: { type: 'string' },
  status: { type: 'string' },
  reason: { type: 'string' },
  page: { type: 'string' },
  limit: { type: 'string' },
  'batch-size': { type: 'string' },
  until: { type: 'string' },
  off: { type: 'boolean' },
  everyone: { type: 'string' },
  'grace-days': { type: 'string' },
  roles: { type: 'string' },
  'exempt-roles': { type: 'string' },
  'allow-skip': { type: 'string' },
  user: { type: 'string' },
  type: { type: 'string' },
  since: { type: 'string' },
  format: { type: 'string' },
  'older-than': { type: 'string' }
} as const

/** Which options each command accepts besides the connection ones and --help / --json. */
const COMMAND_OPTIONS: Record<CommandName, readonly string[]> = {
  list: ['status', 'page', 'limit'],
  status: [],
  require: [],
  reset: ['reason'],
  unlock: [],
  exempt: ['until', 'reason', 'off'],
  policy: ['everyone', 'grace-days', 'roles', 'exempt-roles', 'allow-skip'],
  events: ['user', 'type', 'since', 'limit', 'format'],
  'prune-events': ['older-than'],
  doctor: ['batch-size'],
  'rotate-keys': ['batch-size'],
  migrate: [],
  help: []
}
const COMMON = ['help', 'json', 'database-url', 'data-dir', 'keys-file', 'config']

function wholeNumber (command: CommandName, name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}.`, command)
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
    if (values.help === true) return { command: 'help', positionals: [], help: true, json: false, off: false }
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
    config: values.config,
    status: values.status,
    reason: values.reason,
    page: wholeNumber(command, 'page', values.page, 1, 1_000_000),
    // A page of `list`; a count of events to export.
    limit: wholeNumber(command, 'limit', values.limit, 1, command === 'events' ? 10_000_000 : 1000),
    batchSize: wholeNumber(command, 'batch-size', values['batch-size'], 1, 10_000),
    until: values.until,
    off: values.off === true,
    everyone: values.everyone,
    graceDays: wholeNumber(command, 'grace-days', values['grace-days'], 0, 365),
    roles: values.roles,
    exemptRoles: values['exempt-roles'],
    allowSkip: values['allow-skip'],
    user: values.user,
    type: values.type,
    since: values.since,
    format: values.format,
    olderThan: wholeNumber(command, 'older-than', values['older-than'], 1, 36_500)
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

/** The command line of a command that walks every account in batches: no arguments, `--batch-size N`. */
export function batchSizeOnly (args: ParsedArgs): { batchSize: number | undefined } {
  expectPositionals(args, [])
  return { batchSize: args.batchSize }
}
