// A Postgres session store for @fastify/session, so several app instances share sessions.
//
// Rows are keyed by SHA-256 of the session id: someone reading the table (or a backup) learns
// no cookie they could replay. The signed-in user's id is kept in its own column so that
// disabling or resetting 2FA can end that user's other sessions.
import { createHash } from 'node:crypto'
import { and, eq, lt, ne } from 'drizzle-orm'
import type { TwoFactorDatabase } from './database.ts'
import { sessions } from './schema.ts'
import { Unavailable } from '../errors.ts'

type Callback<T = void> = (error?: Error | null, value?: T) => void

/** Default lifetime of a stored session when its cookie has no expiry: 24 hours. */
const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000

export const hashSessionId = (sessionId: string): string =>
  createHash('sha256').update(sessionId).digest('hex')

interface StorableSession {
  cookie?: { expires?: Date | string | null }
  twoFactor?: { userId?: string }
  [key: string]: unknown
}

export class PgSessionStore {
  constructor (
    private readonly db: TwoFactorDatabase,
    private readonly clock: () => number = Date.now
  ) {}

  set (sessionId: string, session: StorableSession, callback: Callback): void {
    const data = JSON.parse(JSON.stringify(session)) as Record<string, unknown>
    const expires = session.cookie?.expires
    const expiresAt = expires ? new Date(expires) : new Date(this.clock() + DEFAULT_TTL_MS)
    const userId = session.twoFactor?.userId ?? null
    const sidHash = hashSessionId(sessionId)
    this.db.insert(sessions).values({ sidHash, userId, data, expiresAt })
      .onConflictDoUpdate({ target: sessions.sidHash, set: { userId, data, expiresAt } })
      .then(() => callback(), (error: unknown) => callback(unavailable(error)))
  }

  get (sessionId: string, callback: Callback<Record<string, unknown> | null>): void {
    this.db.select({ data: sessions.data, expiresAt: sessions.expiresAt }).from(sessions)
      .where(eq(sessions.sidHash, hashSessionId(sessionId))).limit(1)
      .then((rows) => {
        const row = rows[0]
        callback(null, row !== undefined && row.expiresAt.getTime() > this.clock() ? row.data : null)
      }, (error: unknown) => callback(unavailable(error)))
  }

  destroy (sessionId: string, callback: Callback): void {
    this.db.delete(sessions).where(eq(sessions.sidHash, hashSessionId(sessionId)))
      .then(() => callback(), (error: unknown) => callback(unavailable(error)))
  }

  /** Ends every session of a user except (optionally) the one making the change. */
  async destroyUserSessions (userId: string, exceptSessionId?: string): Promise<number> {
    const condition = exceptSessionId === undefined
      ? eq(sessions.userId, userId)
      : and(eq(sessions.userId, userId), ne(sessions.sidHash, hashSessionId(exceptSessionId)))
    const rows = await this.db.delete(sessions).where(condition).returning({ sidHash: sessions.sidHash })
    return rows.length
  }

  async pruneExpired (): Promise<number> {
    const rows = await this.db.delete(sessions).where(lt(sessions.expiresAt, new Date(this.clock())))
      .returning({ sidHash: sessions.sidHash })
    return rows.length
  }
}

// The driver's error may quote the statement and its parameters, so it is not passed on (log
// serializers print `cause` too): callers see a 503 (fail closed) carrying only the driver's
// error code (a SQLSTATE or ECONNREFUSED), which is enough to diagnose an outage.
export function unavailable (error: unknown): Error {
  const wrapped = new Unavailable() as Error & { dbCode?: string }
  const code = (error as { code?: unknown, cause?: { code?: unknown } }).cause?.code ?? (error as { code?: unknown }).code
  if (typeof code === 'string') wrapped.dbCode = code
  return wrapped
}
