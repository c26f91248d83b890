// The two ways a command ends badly: the command line was wrong (exit 2), or the work failed
// (exit 1). Both carry a message written for the operator; neither carries a secret.
export class UsageError extends Error {
  readonly exitCode = 2
  constructor (message: string, readonly command?: string) {
    super(message)
    this.name = 'UsageError'
  }
}

export class CliFailure extends Error {
  readonly exitCode = 1
  constructor (message: string) {
    super(message)
    this.name = 'CliFailure'
  }
}

/**
 * A database error as the operator can act on it. drizzle's messages quote the statement and
 * its parameters (which may be sealed secrets), so only the driver's code is used.
 */
export function describeDatabaseError (error: unknown): string | null {
  const e = error as { code?: unknown, cause?: { code?: unknown } }
  const code = typeof e.cause?.code === 'string' ? e.cause.code : typeof e.code === 'string' ? e.code : null
  if (code === null) return null
  const known: Record<string, string> = {
    ECONNREFUSED: 'Could not connect to the database (connection refused). Is Postgres running, and is DATABASE_URL right?',
    ENOTFOUND: 'Could not connect to the database: the host in DATABASE_URL was not found.',
    ETIMEDOUT: 'Could not connect to the database: the connection timed out.',
    '28P01': 'The database refused the user name or password in DATABASE_URL.',
    '28000': 'The database refused the connection (authorisation).',
    '3D000': 'The database named in DATABASE_URL does not exist.',
    '42P01': 'The two-factor tables are missing. Run: two-factor migrate',
    '3F000': 'The two-factor tables are missing. Run: two-factor migrate'
  }
  return known[code] ?? `The database reported an error (code ${code}).`
}
