// Sessions in Redis, with the same per-account index as the Postgres store, so that "sign out
// everywhere else", an admin reset, a lockout and turning 2FA off reach Redis sessions too, on
// every instance that shares the Redis.
//
//   <prefix>s:<sha256(session id)>   the session: { data, expiresAt }, expiring with it (PX)
//   <prefix>u:<user id>              the account's index: a set of those hashes
//
// As in Postgres, keys carry the SHA-256 of the session id, never the id itself: reading the
// Redis (or its dump) gives no cookie to replay. A session read from Redis is only ever
// overwritten (SET … XX), never made again, so a session ended while one of its requests was in
// flight stays ended when that request saves it.
//
// It takes the host's client (ioredis, or anything with the same commands), so Redis is no
// dependency of the plugin.
import type { FastifyBaseLogger } from 'fastify'
import {
  hashSessionId, LOADED_FROM, sessionHandle, settle, storableJson, summaryOf, untouchedAndEmpty,
  type SessionSummary, type StorableSession, type TwoFactorSessionStore
} from './session-store.ts'

type Callback<T = void> = (error?: Error | null, value?: T) => void

/** The Redis commands the store uses, as ioredis spells them. */
export interface RedisCommands {
  get (key: string): Promise<string | null>
  mget (...keys: string[]): Promise<Array<string | null>>
  set (key: string, value: string, px: 'PX', ms: number, condition?: 'XX'): Promise<unknown>
  del (...keys: string[]): Promise<number>
  sadd (key: string, ...members: string[]): Promise<number>
  srem (key: string, ...members: string[]): Promise<number>
  smembers (key: string): Promise<string[]>
  pexpire (key: string, ms: number): Promise<number>
}

export interface RedisSessionStoreOptions {
  /** Put before every key, to share a Redis with other data. @default 'two-factor:' */
  prefix?: string
  /** The clock (ms), for tests; Redis expires keys on its own clock. @default Date.now */
  clock?: () => number
  log?: FastifyBaseLogger
}

interface Stored {
  data: Record<string, unknown>
  expiresAt: number
}

/** Default lifetime of a session whose cookie has no expiry: 24 hours. */
const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000

export class RedisSessionStore implements TwoFactorSessionStore {
  private readonly prefix: string
  private readonly clock: () => number
  private readonly log: FastifyBaseLogger | undefined

  constructor (private readonly redis: RedisCommands, options: RedisSessionStoreOptions = {}) {
    this.prefix = options.prefix ?? 'two-factor:'
    this.clock = options.clock ?? Date.now
    this.log = options.log
  }

  private sessionKey (sidHash: string): string {
    return `${this.prefix}s:${sidHash}`
  }

  private indexKey (userId: string): string {
    return `${this.prefix}u:${userId}`
  }

  get (sessionId: string, callback: Callback<Record<string, unknown> | null>): void {
    const sidHash = hashSessionId(sessionId)
    settle(this.read(sidHash).then((stored) => stored === null ? null : { ...stored.data, [LOADED_FROM]: sidHash }), callback, this.log)
  }

  set (sessionId: string, session: StorableSession, callback: Callback): void {
    settle(this.write(hashSessionId(sessionId), session), callback, this.log)
  }

  destroy (sessionId: string, callback: Callback): void {
    const sidHash = hashSessionId(sessionId)
    const ended = this.read(sidHash).then(async (stored) => {
      await this.redis.del(this.sessionKey(sidHash))
      const userId = userIdOf(stored?.data)
      if (userId !== null) await this.redis.srem(this.indexKey(userId), sidHash)
    })
    settle(ended, callback, this.log)
  }

  async endAccountSessions (userId: string, options: { exceptSessionId?: string } = {}): Promise<number> {
    const except = options.exceptSessionId === undefined ? null : hashSessionId(options.exceptSessionId)
    const ending = (await this.redis.smembers(this.indexKey(userId))).filter((sidHash) => sidHash !== except)
    if (ending.length === 0) return 0
    const ended = await this.redis.del(...ending.map((sidHash) => this.sessionKey(sidHash)))
    await this.redis.srem(this.indexKey(userId), ...ending)
    return ended
  }

  async listAccountSessions (userId: string): Promise<SessionSummary[]> {
    const live = await this.liveSessionsOf(userId)
    return live.map(({ sidHash, stored }) => summaryOf(sessionHandle(sidHash), userId, stored.data, new Date(stored.expiresAt)))
  }

  async endAccountSession (userId: string, handle: string): Promise<boolean> {
    const match = (await this.redis.smembers(this.indexKey(userId))).find((sidHash) => sessionHandle(sidHash) === handle)
    if (match === undefined) return false
    const ended = await this.redis.del(this.sessionKey(match))
    await this.redis.srem(this.indexKey(userId), match)
    return ended === 1
  }

  private async read (sidHash: string): Promise<Stored | null> {
    const stored = parse(await this.redis.get(this.sessionKey(sidHash)))
    return stored !== null && stored.expiresAt > this.clock() ? stored : null
  }

  private async write (sidHash: string, session: StorableSession): Promise<void> {
    if (untouchedAndEmpty(session)) return
    const expires = session.cookie?.expires
    const expiresAt = expires ? new Date(expires).getTime() : this.clock() + DEFAULT_TTL_MS
    const ttl = Math.max(1000, expiresAt - this.clock())
    const { [LOADED_FROM]: loadedFrom, ...data } = storableJson(session)
    const value = JSON.stringify({ data, expiresAt } satisfies Stored)
    const key = this.sessionKey(sidHash)
    // A session read from Redis only overwrites its key: if the key is gone, the session was ended.
    if (loadedFrom === sidHash) await this.redis.set(key, value, 'PX', ttl, 'XX')
    else await this.redis.set(key, value, 'PX', ttl)
    const userId = userIdOf(data)
    if (userId === null) return
    const index = this.indexKey(userId)
    await this.redis.sadd(index, sidHash)
    // The index outlives none of its sessions for long: every sign-in moves its expiry on.
    await this.redis.pexpire(index, ttl)
  }

  /** The account's sessions still in Redis; hashes whose session has expired leave the index. */
  private async liveSessionsOf (userId: string): Promise<Array<{ sidHash: string, stored: Stored }>> {
    const members = await this.redis.smembers(this.indexKey(userId))
    if (members.length === 0) return []
    const values = await this.redis.mget(...members.map((sidHash) => this.sessionKey(sidHash)))
    const live: Array<{ sidHash: string, stored: Stored }> = []
    const gone: string[] = []
    members.forEach((sidHash, i) => {
      const stored = parse(values[i] ?? null)
      if (stored !== null && stored.expiresAt > this.clock()) live.push({ sidHash, stored })
      else gone.push(sidHash)
    })
    if (gone.length > 0) await this.redis.srem(this.indexKey(userId), ...gone)
    return live
  }
}

function parse (value: string | null): Stored | null {
  if (value === null) return null
  try {
    const stored = JSON.parse(value) as Partial<Stored>
    return typeof stored.expiresAt === 'number' && typeof stored.data === 'object' && stored.data !== null ? stored as Stored : null
  } catch {
    return null
  }
}

function userIdOf (data: Record<string, unknown> | undefined): string | null {
  const userId = (data?.twoFactor as { userId?: unknown } | undefined)?.userId
  return typeof userId === 'string' ? userId : null
}
