// The session store has to be able to find and end an account's sessions: turning 2FA off, an
// admin reset, a lockout, replacing the authenticator and a password change all end the account's
// other sessions through that per-account index. A store that can only get, set and destroy by
// session id would let those changes leave old sessions signed in without a word, so the plugin
// refuses it at startup, naming what is missing. For the same reason the plugin must own the
// session plugin (a host's own @fastify/session would bypass the index) and be registered once.
import t from 'tap'
import Fastify from 'fastify'
import cookie from '@fastify/cookie'
import session from '@fastify/session'
import twoFactor, { type TwoFactorOptions } from '../../plugin/index.ts'
import type { SessionSummary } from '../../plugin/db/session-store.ts'
import { answerOf, Client } from '../helpers/client.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { HOST_KEYS, HOST_SESSION_SECRET, login } from '../fixtures/host.ts'

type Callback<T = void> = (error?: Error | null, value?: T) => void

/** get / set / destroy by session id, and nothing else: what most stores offer. */
class PlainStore {
  readonly rows = new Map<string, { data: Record<string, unknown>, userId: string | null }>()
  get (sid: string, callback: Callback<Record<string, unknown> | null>): void {
    const row = this.rows.get(sid)
    callback(null, row === undefined ? null : JSON.parse(JSON.stringify(row.data)) as Record<string, unknown>)
  }

  set (sid: string, value: unknown, callback: Callback): void {
    const data = JSON.parse(JSON.stringify(value)) as Record<string, unknown>
    const userId = (data.twoFactor as { userId?: string } | undefined)?.userId ?? null
    this.rows.set(sid, { data, userId })
    callback(null)
  }

  destroy (sid: string, callback: Callback): void {
    this.rows.delete(sid)
    callback(null)
  }
}

/** The same store with the per-account index the plugin asks for. */
class IndexedStore extends PlainStore {
  ended: string[] = []
  async endAccountSessions (userId: string, options: { exceptSessionId?: string } = {}): Promise<number> {
    let n = 0
    for (const [sid, row] of this.rows) {
      if (row.userId === userId && sid !== options.exceptSessionId) {
        this.rows.delete(sid)
        n++
      }
    }
    this.ended.push(userId)
    return n
  }

  async listAccountSessions (userId: string): Promise<SessionSummary[]> {
    return [...this.rows].filter(([, row]) => row.userId === userId).map(([sid, row]) => ({
      handle: sid.slice(0, 8),
      userId,
      state: (row.data.twoFactor as { state?: string } | undefined)?.state ?? null,
      expiresAt: new Date(Date.now() + 60_000),
      lastSeenAt: null,
      ip: null,
      userAgent: null
    })) as unknown as SessionSummary[]
  }

  /** One session by its list handle ("sign out that browser"). */
  async endAccountSession (userId: string, handle: string): Promise<boolean> {
    for (const [sid, row] of this.rows) {
      if (row.userId === userId && sid.slice(0, 8) === handle) return this.rows.delete(sid)
    }
    return false
  }
}

const users = new Map([['alice', { id: 'alice', password: 'alice-password' }]])

function optionsWith (db: TwoFactorOptions['database'], patch: Partial<TwoFactorOptions> = {}): TwoFactorOptions {
  return {
    database: db,
    keys: HOST_KEYS,
    session: { secret: HOST_SESSION_SECRET, secure: false },
    rateLimit: false,
    accounts: {
      findUser: (id: string) => users.get(id),
      userId: (user: { id: string }) => user.id,
      label: (user: { id: string }) => user.id,
      verifyPassword: (id: string, password: string) => users.get(id)?.password === password
    },
    ...patch
  }
}

async function startFails (t: { teardown (fn: () => unknown): void }, build: (app: ReturnType<typeof Fastify>) => Promise<void> | void): Promise<Error | null> {
  const app = Fastify()
  t.teardown(() => app.close().catch(() => {}))
  try {
    await build(app)
    await app.ready()
    return null
  } catch (error) {
    return error as Error
  }
}

t.test('session.store', async (t) => {
  const database = await createTestDatabase(t)

  await t.test('a store without endAccountSessions and listAccountSessions is refused at registration, naming them', async (t) => {
    const error = await startFails(t, (app) => { app.register(twoFactor, optionsWith(database.db, { session: { secret: HOST_SESSION_SECRET, store: new PlainStore() as never } })) })
    t.ok(error, 'registration fails')
    t.match(error?.message, /"session\.store"/, 'the message names the option')
    t.match(error?.message, /endAccountSessions/, 'and endAccountSessions')
    t.match(error?.message, /listAccountSessions/, 'and listAccountSessions')
    t.notMatch(error?.message, /lacks[^(]*\bget\b/, 'not the methods it has')

    const halfIndexed = Object.assign(new PlainStore(), { endAccountSessions: async () => 0 })
    const half = await startFails(t, (app) => { app.register(twoFactor, optionsWith(database.db, { session: { secret: HOST_SESSION_SECRET, store: halfIndexed as never } })) })
    t.match(half?.message, /lacks [^(]*listAccountSessions/, 'one method missing: that one is named')
    t.notMatch(half?.message, /lacks[^(]*endAccountSessions\b/, 'not the one it has')

    const notAStore = await startFails(t, (app) => { app.register(twoFactor, optionsWith(database.db, { session: { secret: HOST_SESSION_SECRET, store: {} as never } })) })
    t.match(notAStore?.message, /"session\.store".*lacks get, set, destroy, endAccountSessions, listAccountSessions/, 'an empty object lacks them all')
  })

  await t.test('a store with the index is accepted, and used to end an account’s sessions', async (t) => {
    const store = new IndexedStore()
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(twoFactor, optionsWith(database.db, { session: { secret: HOST_SESSION_SECRET, secure: false, store } }))
    app.get('/login', { config: { twoFactor: false } }, async (_request, reply) => ({ csrfToken: reply.generateCsrf() }))
    app.post('/login', { config: { twoFactor: false }, preHandler: app.csrfProtection }, async (request, reply) => {
      const { username } = request.body as { username: string }
      return { ...await request.twoFactor.startLogin(username), csrfToken: reply.generateCsrf() }
    })
    app.get('/', async (request) => ({ userId: request.twoFactor.userId }))
    await app.ready()
    t.pass('registration succeeds')

    const first = new Client(app)
    const second = new Client(app)
    t.match(answerOf(await login(first, 'alice', 'alice-password')), { state: 'signed-in' })
    t.match(answerOf(await login(second, 'alice', 'alice-password')), { state: 'signed-in' })
    t.equal([...store.rows.values()].filter((row) => row.userId === 'alice').length, 2, 'the sessions live in the host’s store')
    t.equal((await app.twoFactor.sessionStore.listAccountSessions('alice')).length, 2)
    t.equal(await app.twoFactor.endSessions('alice', { actor: 'admin' }), 2, 'ended through its index')
    t.same(store.ended, ['alice'])
    t.same(JSON.parse((await first.get('/')).body), { userId: null }, 'nobody is signed in any more')
    t.same(JSON.parse((await second.get('/')).body), { userId: null })
  })

  await t.test('the host registering @fastify/session itself makes registration fail with a clear message', async (t) => {
    const error = await startFails(t, async (app) => {
      await app.register(cookie)
      await app.register(session, { secret: HOST_SESSION_SECRET, cookie: { secure: false } })
      await app.register(twoFactor, optionsWith(database.db))
    })
    t.ok(error, 'registration fails')
    t.match(error?.message, /@fastify\/session itself/, 'it says the app registered @fastify/session')
    t.match(error?.message, /session\.store/, 'and what to do instead')
    t.match(error?.message, /endAccountSessions, listAccountSessions/)
  })

  await t.test('registering the plugin twice fails with a clear message', async (t) => {
    const error = await startFails(t, async (app) => {
      await app.register(twoFactor, optionsWith(database.db))
      await app.register(twoFactor, optionsWith(database.db))
    })
    t.ok(error, 'registration fails')
    t.match(error?.message, /registered twice/)
    t.match(error?.message, /register it once/)
  })
})
