// Sessions for @fastify/session, indexed by account.
//
// The index is what makes "end every other session" true: turning 2FA off, replacing the
// authenticator, an admin reset, a lockout and a password change all end the account's other
// sessions, signed-in and half-signed-in. A store that can't list and end an account's sessions
// would let those changes leave old sessions signed in, silently; the plugin refuses such a
// store at startup (see `missingIndexMethods`).
//
// The Postgres store keys rows by SHA-256 of the session id: someone reading the table (or a
// backup) learns no cookie they could replay. The account's id is kept in its own column.
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { and, eq, lt, ne, sql } from 'drizzle-orm'
import type { TwoFactorDatabase } from './database.ts'
import { sessions } from './schema.ts'
import { Unavailable } from '../errors.ts'

type Callback<T = void> = (error?: Error | null, value?: T) => void

/** One of an account's sessions, as its owner may see it: a handle, never the session id. */
export interface SessionSummary {
  /** Names the session in lists and in "sign out" links; the session id can't be derived from it. */
  handle: string
  userId: string
  state: string | null
  expiresAt: Date
  createdAt: Date | null
  lastSeenAt: Date | null
  ip: string | null
  userAgent: string | null
}

/** What the plugin needs of a session store besides @fastify/session's get / set / destroy. */
export interface AccountSessionIndex {
  /** Ends every session of the account except the one whose id is `exceptSessionId`; returns how many ended. */
  endAccountSessions (userId: string, options?: { exceptSessionId?: string }): Promise<number>
  /** The account's live sessions. */
  listAccountSessions (userId: string): Promise<SessionSummary[]>
  /** Ends the account's session with this handle; false when it has none such. */
  endAccountSession (userId: string, handle: string): Promise<boolean>
}

export interface SessionStoreCallbacks {
  get (sessionId: string, callback: Callback<Record<string, unknown> | null>): void
  set (sessionId: string, session: unknown, callback: Callback): void
  destroy (sessionId: string, callback: Callback): void
}

export type TwoFactorSessionStore = SessionStoreCallbacks & AccountSessionIndex

/**
 * A store that gives a request's session a new id in fewer round trips than @fastify/session's
 * `regenerate()` (which destroys the old session at once; the new one is stored at the
 * response). The plugin uses it when the store has it, `regenerate()` otherwise.
 */
export interface SessionRegenerating {
  regenerateSession (request: FastifyRequest): Promise<void>
  /**
   * Deletes at once the row a session made by `regenerateSession` was to replace when stored
   * (before that session is itself ended in the same request, so it will never be stored).
   */
  dropReplaced (session: object): Promise<void>
}

export const SESSION_INDEX_METHODS = ['endAccountSessions', 'listAccountSessions', 'endAccountSession'] as const

/** The methods a store lacks to be the plugin's session store (empty when it has them all). */
export function missingIndexMethods (store: unknown): string[] {
  const candidate = store as Record<string, unknown> | null
  return [...['get', 'set', 'destroy'], ...SESSION_INDEX_METHODS].filter((name) => typeof candidate?.[name] !== 'function')
}

/** Default lifetime of a stored session when its cookie has no expiry: 24 hours. */
const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000

export const hashSessionId = (sessionId: string): string =>
  createHash('sha256').update(sessionId).digest('hex')

/** A list handle for a session: derived from the stored hash, so it opens nothing. */
export const sessionHandle = (sidHash: string): string =>
  createHash('sha256').update(`handle:${sidHash}`).digest('base64url').slice(0, 22)

export interface StorableSession {
  cookie?: { expires?: Date | string | null }
  twoFactor?: { userId?: string, state?: string }
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
export function untouchedAndEmpty (session: StorableSession): boolean {
  if (typeof session.isModified !== 'function' || session.isModified()) return false
  for (const key in session) {
    if (key !== 'cookie' && key !== LOADED_FROM && typeof session[key] !== 'function') return false
  }
  return true
}

/**
 * Put on a session read from the table (never stored): the hash of the row it came from. A
 * write of such a session only updates that row and never makes it again, so a session ended
 * while one of its requests was in flight (signed out elsewhere, a reset, a lockout) stays
 * ended when that request saves it. A new session (and one made by `regenerate`) has no mark
 * and is inserted.
 */
export const LOADED_FROM = 'twoFactorLoadedFrom'

/**
 * Put on a session made by `regenerateSession` (a symbol, so neither stored nor hashed by
 * @fastify/session): the hash of the row it replaces, deleted by the statement that first
 * stores it.
 */
const REPLACES = Symbol('twoFactorReplaces')

/** The session as JSON that jsonb accepts: a lone surrogate (which it refuses) becomes U+FFFD. */
export function storableJson (session: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(session, (_key, value: unknown) => typeof value === 'string' ? value.toWellFormed() : value)) as Record<string, unknown>
}

/**
 * Calls @fastify/session back outside the store's promise: whatever the rest of the response
 * then throws must not become an unhandled rejection (which ends the process) in our chain.
 */
export function settle<T> (promise: Promise<T>, callback: Callback<T>, log: FastifyBaseLogger | undefined): void {
  promise.then((value) => ({ error: null, value }), (error: unknown) => ({ error: unavailable(error), value: undefined }))
    .then(({ error, value }) => {
      try {
        callback(error, value as T)
      } catch (thrown) {
        log?.error({ errorName: (thrown as Error)?.name, errorCode: (thrown as { code?: unknown })?.code }, 'two-factor: answering after a session store call failed')
      }
    })
}

/**
 * The statements the store runs for @fastify/session (read, insert, replace, update, delete),
 * prepared once. The read runs on every request that carries a session cookie.
 */
function prepareStatements (db: TwoFactorDatabase) {
  const bySid = eq(sessions.sidHash, sql.placeholder('sidHash'))
  const newRow = {
    sidHash: sql.placeholder('sidHash'),
    userId: sql.placeholder('userId'),
    data: sql.placeholder('data'),
    expiresAt: sql.placeholder('expiresAt')
  }
  const overwrite = {
    target: sessions.sidHash,
    set: { userId: sql`excluded.user_id`, data: sql`excluded.data`, expiresAt: sql`excluded.expires_at` }
  }
  return {
    get: db.select({ data: sessions.data, expiresAt: sessions.expiresAt }).from(sessions)
      .where(bySid).limit(1).prepare('two_factor_session_get'),
    set: db.insert(sessions).values(newRow).onConflictDoUpdate(overwrite).prepare('two_factor_session_set'),
    // A new session in place of an old one: the old row goes in the statement that stores the
    // new one (it is unconditional, as `destroy` then `set` were).
    replace: db.with(db.$with('replaced').as(db.delete(sessions).where(eq(sessions.sidHash, sql.placeholder('replacesSidHash'))).returning({ sidHash: sessions.sidHash })))
      .insert(sessions).values(newRow).onConflictDoUpdate(overwrite).prepare('two_factor_session_replace'),
    // Raw placeholders skip the columns' encoding: the data comes as JSON text, the expiry as ISO text.
    update: db.update(sessions).set({
      userId: sql`${sql.placeholder('userId')}`,
      data: sql`${sql.placeholder('dataJson')}::jsonb`,
      expiresAt: sql`${sql.placeholder('expiresAtIso')}::timestamptz`
    }).where(bySid).prepare('two_factor_session_update'),
    destroy: db.delete(sessions).where(bySid).prepare('two_factor_session_destroy')
  }
}

export class PgSessionStore implements TwoFactorSessionStore, SessionRegenerating {
  private readonly statements: ReturnType<typeof prepareStatements>
  /** Ids whose `destroy` is left to the first write of the session that replaces them. */
  private readonly destroyedWithReplacement = new Set<string>()

  constructor (
    private readonly db: TwoFactorDatabase,
    private readonly clock: () => number = Date.now,
    private readonly log?: FastifyBaseLogger
  ) {
    this.statements = prepareStatements(db)
  }

  set (sessionId: string, session: StorableSession, callback: Callback): void {
    if (untouchedAndEmpty(session)) {
      callback()
      return
    }
    const expires = session.cookie?.expires
    const expiresAt = expires ? new Date(expires) : new Date(this.clock() + DEFAULT_TTL_MS)
    const userId = session.twoFactor?.userId ?? null
    const sidHash = hashSessionId(sessionId)
    const { [LOADED_FROM]: loadedFrom, ...data } = storableJson(session)
    const replaces = (session as { [REPLACES]?: string })[REPLACES]
    // A session read from its row only updates it: if the row is gone, the session was ended.
    const write = loadedFrom === sidHash
      ? this.statements.update.execute({ sidHash, userId, dataJson: JSON.stringify(data), expiresAtIso: expiresAt.toISOString() })
      : replaces !== undefined
        ? this.statements.replace.execute({ replacesSidHash: replaces, sidHash, userId, data, expiresAt })
          .then(() => { delete (session as { [REPLACES]?: string })[REPLACES] })
        : this.statements.set.execute({ sidHash, userId, data, expiresAt })
    settle(write.then(() => undefined), callback, this.log)
  }

  /**
   * `regenerate()` with the old row kept until the new session is first stored, which deletes it
   * in the same statement: one round trip for both, at the response. @fastify/session's
   * `regenerate()` calls `destroy` for the old id synchronously, so the id is in the set for
   * exactly that call. Until the response, a concurrent request with the old cookie still finds
   * the old session (as one that read it a moment earlier would): what it could do there, it
   * could do before this request began; the prompt's attempts and the code's step are counted in
   * the database, not in the session.
   */
  async regenerateSession (request: FastifyRequest): Promise<void> {
    const old = request.session as unknown as { sessionId: string, [REPLACES]?: string }
    // Regenerated twice in one request (a password step that signs in at once), the session in
    // between was never stored: the row to delete is still the one the request began with.
    const replaces = old[REPLACES] ?? hashSessionId(old.sessionId)
    this.destroyedWithReplacement.add(old.sessionId)
    try {
      await request.session.regenerate()
    } finally {
      this.destroyedWithReplacement.delete(old.sessionId)
    }
    (request.session as unknown as { [REPLACES]?: string })[REPLACES] = replaces
  }

  get (sessionId: string, callback: Callback<Record<string, unknown> | null>): void {
    const sidHash = hashSessionId(sessionId)
    const read = this.statements.get.execute({ sidHash })
      .then((rows) => {
        const row = rows[0]
        return row !== undefined && row.expiresAt.getTime() > this.clock() ? { ...row.data, [LOADED_FROM]: sidHash } : null
      })
    settle(read, callback, this.log)
  }

  async dropReplaced (session: object): Promise<void> {
    const marked = session as { [REPLACES]?: string }
    const replaces = marked[REPLACES]
    if (replaces === undefined) return
    await this.statements.destroy.execute({ sidHash: replaces }).catch((error: unknown) => { throw unavailable(error) })
    delete marked[REPLACES]
  }

  destroy (sessionId: string, callback: Callback): void {
    if (this.destroyedWithReplacement.delete(sessionId)) {
      callback()
      return
    }
    settle(this.statements.destroy.execute({ sidHash: hashSessionId(sessionId) }).then(() => undefined), callback, this.log)
  }

  async endAccountSessions (userId: string, options: { exceptSessionId?: string } = {}): Promise<number> {
    const condition = options.exceptSessionId === undefined
      ? eq(sessions.userId, userId)
      : and(eq(sessions.userId, userId), ne(sessions.sidHash, hashSessionId(options.exceptSessionId)))
    const rows = await this.db.delete(sessions).where(condition).returning({ sidHash: sessions.sidHash })
    return rows.length
  }

  async listAccountSessions (userId: string): Promise<SessionSummary[]> {
    const rows = await this.db.select({ sidHash: sessions.sidHash, data: sessions.data, expiresAt: sessions.expiresAt })
      .from(sessions).where(eq(sessions.userId, userId))
    const now = this.clock()
    return rows.filter((row) => row.expiresAt.getTime() > now).map((row) => summaryOf(sessionHandle(row.sidHash), userId, row.data, row.expiresAt))
  }

  async endAccountSession (userId: string, handle: string): Promise<boolean> {
    const rows = await this.db.select({ sidHash: sessions.sidHash }).from(sessions).where(eq(sessions.userId, userId))
    const match = rows.find((row) => sessionHandle(row.sidHash) === handle)
    if (match === undefined) return false
    const ended = await this.db.delete(sessions).where(and(eq(sessions.sidHash, match.sidHash), eq(sessions.userId, userId))).returning({ sidHash: sessions.sidHash })
    return ended.length === 1
  }

  async pruneExpired (): Promise<number> {
    const rows = await this.db.delete(sessions).where(lt(sessions.expiresAt, new Date(this.clock())))
      .returning({ sidHash: sessions.sidHash })
    return rows.length
  }
}

/** A stored session's summary, from the data the plugin keeps in it (any store can use it). */
export function summaryOf (handle: string, userId: string, data: Record<string, unknown>, expiresAt: Date): SessionSummary {
  const state = (data.twoFactor as { state?: unknown } | undefined)?.state
  const meta = (data.twoFactorMeta ?? {}) as Partial<Record<'createdAt' | 'lastSeenAt' | 'ip' | 'userAgent', unknown>>
  const date = (value: unknown) => typeof value === 'number' ? new Date(value) : null
  const text = (value: unknown) => typeof value === 'string' ? value : null
  return {
    handle,
    userId,
    state: typeof state === 'string' ? state : null,
    expiresAt,
    createdAt: date(meta.createdAt),
    lastSeenAt: date(meta.lastSeenAt),
    ip: text(meta.ip),
    userAgent: text(meta.userAgent)
  }
}

// The driver's error may quote the statement and its parameters, so it is not passed on (log
// serializers print `cause` too): callers see a 503 (fail closed) carrying only the driver's
// error code (a SQLSTATE or ECONNREFUSED), which is enough to diagnose an outage.
export function unavailable (error: unknown): Error {
  const wrapped = new Unavailable() as Error & { dbCode?: string }
  const code = (error as { code?: unknown, cause?: { code?: unknown } })?.cause?.code ?? (error as { code?: unknown })?.code
  if (typeof code === 'string') wrapped.dbCode = code
  return wrapped
}
