// The CLI from arguments to exit code: parse, check the command's arguments before touching any
// database, read the config file, open the database, run, close. Exit codes: 0 done, 1 failed,
// 2 bad arguments.
import { parseCommandLine, COMMANDS, type CommandName, type ParsedArgs } from './args.ts'
import { COMMAND_TABLE } from './commands.ts'
import { accountsOf, loadConfig, sessionStoreOf } from './config.ts'
import { openConnection, loadKeyring, type CliEnv, type Connection } from './connect.ts'
import { CliFailure, describeDatabaseError, UsageError } from './errors.ts'
import { COMMAND_HELP, OVERVIEW } from './help.ts'
import { createCliCore, stderrLogger } from './service.ts'
import { terminalText } from './terminal-text.ts'
import { userLookup } from './users.ts'

export interface CliIo extends CliEnv {
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** True once the reader of stdout has gone; long output stops there. @default never */
  stdoutClosed?: () => boolean
}

export async function main (argv: readonly string[], io: CliIo): Promise<number> {
  dropOutputToClosedPipes()
  const out = (line: string) => io.stdout(line + '\n')
  const err = (line: string) => io.stderr(line + '\n')

  let args: ParsedArgs
  let input: unknown
  try {
    args = parseCommandLine(argv)
    if (args.command === 'help') return help(args, out)
    if (args.help) {
      out(COMMAND_HELP[args.command])
      return 0
    }
    input = COMMAND_TABLE[args.command].parse(args)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    // Messages quote what was typed (an unknown command, an unexpected argument).
    err(`two-factor: ${terminalText(error.message)}`)
    err(error.command === undefined ? 'See: two-factor --help' : `See: two-factor ${error.command} --help`)
    return 2
  }

  const command = COMMAND_TABLE[args.command as Exclude<CommandName, 'help'>]
  let connection: Connection | null = null
  try {
    const config = await loadConfig(args.config, io.cwd)
    const keyring = command.needsKeys === true ? loadKeyring(args, io, config) : null
    connection = await openConnection(args, io, config)
    const core = createCliCore(connection.db, keyring, stderrLogger(err), await sessionStoreOf(config, connection.db))
    const accounts = await accountsOf(config, connection.db)
    return await command.run(input, {
      db: connection.db,
      core,
      keyring: () => {
        if (keyring === null) throw new CliFailure(`"${args.command}" does not load the key ring.`)
        return keyring
      },
      findUser: userLookup(accounts, core.stores.admin, args.json ? () => {} : err),
      out,
      err,
      outputClosed: io.stdoutClosed ?? (() => false),
      json: args.json
    })
  } catch (error) {
    // Messages quote user ids, paths and what the driver said.
    err(`two-factor: ${terminalText(failureMessage(error))}`)
    return 1
  } finally {
    await connection?.close().catch(() => {})
  }
}

function help (args: ParsedArgs, out: (line: string) => void): number {
  const topic = args.positionals[0]
  if (topic === undefined) {
    out(OVERVIEW)
    return 0
  }
  if (!(COMMANDS as readonly string[]).includes(topic)) throw new UsageError(`No help for "${topic}": commands are ${COMMANDS.join(', ')}.`)
  out(COMMAND_HELP[topic as CommandName])
  return 0
}

/** What went wrong, in words an operator can act on, and never a statement's parameters. */
function failureMessage (error: unknown): string {
  if (error instanceof CliFailure) return error.message
  const database = describeDatabaseError(error)
  if (database !== null) return database
  const e = error as Error
  return `failed unexpectedly (${e?.name ?? 'error'}). Nothing was changed after that point.`
}

/**
 * `two-factor list | head -1`: once the reader of a pipe has gone, the next write to it fails
 * with EPIPE, which node reports as an 'error' event on process.stdout (or stderr), and with no
 * listener that ends the process with a stack trace. Output with nowhere to go is dropped
 * instead (node discards writes to the closed stream): the command runs to its end, closes its
 * database as usual and exits with its own code. Any other write error still ends the process.
 * The bin entry hands main the process's streams, so main sets this up; once per process.
 */
function dropOutputToClosedPipes (): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (!stream.listeners('error').includes(ignoreClosedPipe)) stream.on('error', ignoreClosedPipe)
  }
}

function ignoreClosedPipe (error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error
}
