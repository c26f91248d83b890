// A new session id in one round trip: the Postgres store keeps the old row until the new
// session is first stored, and deletes it in that same statement. The old row must still go
// (it is the session a planted or stolen cookie names), nothing else may change: a plain
// destroy still deletes at once, and a session read from its row is still only updated.
import t from 'tap'
import Fastify from 'fastify'
import cookie from '@fastify/cookie'
import session from '@fastify/session'
import { eq } from 'drizzle-orm'
import { migrate } from '../../plugin/db/migrate.ts'
import { sessions } from '../../plugin/db/schema.ts'
import { hashSessionId, PgSessionStore } from '../../plugin/db/session-store.ts'
import { endSession } from '../../plugin/sign-in-session.ts'
import { createTestDatabase } from '../helpers/db.ts'

const SECRET = 'a-session-secret-of-at-least-32-characters'

t.test('PgSessionStore.regenerateSession', async (t) => {
  const database = await createTestDatabase(t)
  await migrate(database.db)
  const statements: string[] = []
  const db = database.logged!({ logQuery: (query) => { statements.push(query) } })
  const store = new PgSessionStore(db)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(cookie)
  await app.register(session, { secret: SECRET, cookieName: 'sid', cookie: { secure: false }, saveUninitialized: false, rolling: false, store: store as never })
  let rowBetween: unknown
  app.post('/start', async (request) => {
    (request.session as unknown as Record<string, unknown>).who = 'alice'
    return { id: request.session.sessionId }
  })
  app.post('/renew', async (request) => {
    const old = request.session.sessionId
    await store.regenerateSession(request)
    rowBetween = await rowOf(old)
    const data = request.session as unknown as Record<string, unknown>
    data.who = 'alice, renewed'
    return { old, id: request.session.sessionId }
  })
  app.post('/renew-twice', async (request) => {
    const old = request.session.sessionId
    await store.regenerateSession(request)
    const between = request.session.sessionId
    await store.regenerateSession(request)
    const data = request.session as unknown as Record<string, unknown>
    data.who = 'alice, renewed twice'
    return { old, between, id: request.session.sessionId }
  })
  app.post('/renew-then-end', async (request) => {
    const old = request.session.sessionId
    await store.regenerateSession(request)
    const data = request.session as unknown as Record<string, unknown>
    data.who = 'nobody'
    // Signed out in the same request (a host's login handler that gives up, say).
    await endSession(request)
    return { old, id: request.session.sessionId }
  })
  app.post('/end', async (request) => {
    await request.session.destroy()
    return {}
  })
  const rowOf = async (id: string) => (await database.db.select().from(sessions).where(eq(sessions.sidHash, hashSessionId(id))))[0]
  const cookieOf = (response: { headers: Record<string, unknown> }) => String(response.headers['set-cookie']).split(';', 1)[0]!

  const started = await app.inject({ method: 'POST', url: '/start' })
  const { id: first } = started.json<{ id: string }>()
  t.ok(await rowOf(first), 'the first session is stored')

  statements.length = 0
  const renewed = await app.inject({ method: 'POST', url: '/renew', headers: { cookie: cookieOf(started) } })
  const { old, id: second } = renewed.json<{ old: string, id: string }>()
  t.equal(old, first)
  t.not(second, first, 'a new id')
  t.ok(rowBetween, 'the old row is kept while the request runs')
  t.equal(await rowOf(first), undefined, 'the old row is gone once the new session is stored')
  t.match((await rowOf(second))?.data, { who: 'alice, renewed' }, 'the new session is stored with what the request put in it')
  const writes = statements.filter((s) => !/^select/i.test(s.trim()))
  t.equal(writes.length, 1, `one statement deletes the old row and stores the new one: ${writes.join(' | ')}`)
  t.match(writes[0], /delete from "two_factor"\."sessions"/i)
  t.match(writes[0], /insert into "two_factor"\."sessions"/i)

  const again = await app.inject({ method: 'POST', url: '/renew', headers: { cookie: cookieOf(renewed) } })
  t.equal(await rowOf(second), undefined, 'a second renewal replaces the renewed session too')
  const { id: third } = again.json<{ id: string }>()
  t.ok(await rowOf(third))

  // A password step that signs in at once (a trusted browser) makes two new ids in one request.
  statements.length = 0
  const twice = await app.inject({ method: 'POST', url: '/renew-twice', headers: { cookie: cookieOf(again) } })
  const ids = twice.json<{ old: string, between: string, id: string }>()
  t.equal(ids.old, third)
  t.equal(await rowOf(third), undefined, 'renewed twice in one request: the row the request began with is gone')
  t.equal(await rowOf(ids.between), undefined, 'the session in between was never stored')
  t.match((await rowOf(ids.id))?.data, { who: 'alice, renewed twice' })
  t.equal(statements.filter((s) => !/^select/i.test(s.trim())).length, 1, 'still one statement')

  const ended = await app.inject({ method: 'POST', url: '/renew-then-end', headers: { cookie: cookieOf(twice) } })
  const endedIds = ended.json<{ old: string, id: string }>()
  t.equal(endedIds.old, ids.id)
  t.equal(await rowOf(ids.id), undefined, 'renewed, then signed out in the same request: the row it began with is gone')
  t.equal(await rowOf(endedIds.id), undefined, 'and the fresh, empty session is not stored')

  const plain = await app.inject({ method: 'POST', url: '/start' })
  const { id: plainId } = plain.json<{ id: string }>()
  t.ok(await rowOf(plainId))
  await app.inject({ method: 'POST', url: '/end', headers: { cookie: cookieOf(plain) } })
  t.equal(await rowOf(plainId), undefined, 'a plain destroy still deletes the row at once')
})
