// A Postgres session store for @fastify/session, so several app instances share sessions.
//
// Rows are keyed by SHA-256 of the session id: someone reading the table (or a backup) learns
// no cookie they could replay. The signed-in user's id is kept in its own column so that
// disabling or resetting 2FA can end that user's other sessions.
import { createHash } from 'node:crypto'
import { and, eq, lt, ne, sql } from 'drizzle-orm'
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
  /** @fastify/session's: whether the data changed since the session was made or loaded. */
  isModified?: () => boolean
  [key: string]: unknown
}

/**
 * `regenerate()` in @fastify/session stores the new session at once, empty, and the response
 * stores it again with what the request put in it: the first write is one INSERT per sign-in
 * step for nothing. A session that holds nothing but its cookie and that nobody changed has
 * nothing to keep: a new one needs no row until it holds something (and then it is changed), a
 * loaded one has its row already. (A session emptied on purpose is changed, so it is written.)
 */
function untouchedAndEmpty (session: StorableSession): boolean {
  if (typeof session.isModified !== 'function' || session.isModified()) return false
  for (const key in session) {
    if (key !== 'cookie' && typeof session[key] !== 'function') return false
  }
  return true
}

/**
 * The three statements @fastify/session runs, prepared once. The read runs on every request
 * that carries a session cookie; unprepared, each one cost drizzle a rebuild of the query and
 * postgres.js a second round trip (it describes an unnamed statement's parameters before
 * binding them). Measured in bench/: see README "Performance".
 */
function prepareStatements (db: TwoFactorDatabase) {
  const bySid = eq(sessions.sidHash, sql.placeholder('sidHash'))
  return {
    get: db.select({ data: sessions.data, expiresAt: sessions.expiresAt }).from(sessions)
      .where(bySid).limit(1).prepare('two_factor_session_get'),
    set: db.insert(sessions).values({
      sidHash: sql.placeholder('sidHash'),
      userId: sql.placeholder('userId'),
      data: sql.placeholder('data'),
      expiresAt: sql.placeholder('expiresAt')
    }).onConflictDoUpdate({
      target: sessions.sidHash,
      set: { userId: sql`excluded.user_id`, data: sql`excluded.data`, expiresAt: sql`excluded.expires_at` }
    }).prepare('two_factor_session_set'),
    destroy: db.delete(sessions).where(bySid).prepare('two_factor_session_destroy')
  }
}

export class PgSessionStore {
  private readonly statements: ReturnType<typeof prepareStatements>

  constructor (
    private readonly db: TwoFactorDatabase,
    private readonly clock: () => number = Date.now
  ) {
    this.statements = prepareStatements(db)
  }

  set (sessionId: string, session: StorableSession, callback: Callback): void {
    if (untouchedAndEmpty(session)) {
      callback()
      return
    }
    const data = JSON.parse(JSON.stringify(session)) as Record<string, unknown>
    const expires = session.cookie?.expires
    const expiresAt = expires ? new Date(expires) : new Date(this.clock() + DEFAULT_TTL_MS)
    const userId = session.twoFactor?.userId ?? null
    const sidHash = hashSessionId(sessionId)
    this.statements.set.execute({ sidHash, userId, data, expiresAt })
      .then(() => callback(), (error: unknown) => callback(unavailable(error)))
  }

  get (sessionId: string, callback: Callback<Record<string, unknown> | null>): void {
    this.statements.get.execute({ sidHash: hashSessionId(sessionId) })
      .then((rows) => {
        const row = rows[0]
        callback(null, row !== undefined && row.expiresAt.getTime() > this.clock() ? row.data : null)
      }, (error: unknown) => callback(unavailable(error)))
  }

  destroy (sessionId: string, callback: Callback): void {
    this.statements.destroy.execute({ sidHash: hashSessionId(sessionId) })
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
