// Sessions in Redis (RedisSessionStore), shared by two instances on one database: a session
// made on one is good on the other; "sign out all other sessions" on one, an admin reset on the
// other, and a sign-out end it everywhere at its next request; the account's list is the same
// from both. Keys hold SHA-256 digests of session ids, never the ids. Needs Redis (REDIS_URL,
// default the machine's own at 127.0.0.1:6379); skipped with a reason where there is none.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { RedisSessionStore } from '../../plugin/index.ts'
import { sessions as sessionsTable } from '../../plugin/db/schema.ts'
import { answerOf } from '../helpers/client.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { TestClock } from '../helpers/demo.ts'
import { createHost, HOST_SESSION_SECRET, login, type Host } from '../fixtures/host.ts'
import { sameCookies, whoIs } from '../sign-in/support.ts'
import { REDIS_URL, redisReachable } from '../helpers/redis.ts'

const missing = await redisReachable() ? false : `needs Redis at ${REDIS_URL} (set REDIS_URL)`

t.test('two instances sharing sessions in Redis', { skip: missing }, async (t) => {
  const prefix = `tf-test-${randomBytes(6).toString('hex')}:`
  const database = await createTestDatabase(t)
  const clock = new TestClock(Date.now())
  const instance = async (): Promise<{ host: Host, redis: Redis }> => {
    const redis = new Redis(REDIS_URL)
    t.teardown(() => { redis.disconnect() })
    const store = new RedisSessionStore(redis, { prefix, clock: clock.now })
    const host = await createHost(t, { database, clock, twoFactor: { session: { secret: HOST_SESSION_SECRET, secure: false, store } } })
    return { host, redis }
  }
  const a = await instance()
  const b = await instance()
  t.teardown(async () => {
    const keys = await a.redis.keys(`${prefix}*`)
    if (keys.length > 0) await a.redis.del(...keys)
  })

  // Alice signs in on A (no 2FA: the password is enough), in two browsers.
  const first = a.host.client()
  t.equal(answerOf(await login(first, 'alice', 'alice-password')).state, 'signed-in')
  const second = a.host.client()
  t.equal(answerOf(await login(second, 'alice', 'alice-password')).state, 'signed-in')
  const firstOnB = sameCookies(b.host, first)
  t.equal((await whoIs(firstOnB)).userId, 'alice', 'a session made on A is good on B')

  const keys = await a.redis.keys(`${prefix}*`)
  t.equal(keys.filter((key) => key.startsWith(`${prefix}s:`)).length, 2, 'two sessions in Redis')
  t.ok(keys.includes(`${prefix}u:alice`), 'and alice\'s index')
  const sessionId = decodeURIComponent(first.sessionCookie() ?? '').split('.')[0]!
  t.notOk(keys.some((key) => key.includes(sessionId)), 'no key carries a session id')
  t.equal((await database.db.select().from(sessionsTable)).length, 0, 'nothing in the Postgres sessions table')

  const listed = answerOf(await firstOnB.get('/2fa/sessions', { json: true })) as { sessions: Array<{ current: boolean }> }
  t.equal(listed.sessions.length, 2, 'B lists both of alice\'s sessions')
  t.equal(listed.sessions.filter((s) => s.current).length, 1, 'this one marked')

  // "Sign out all other sessions" on B ends the second browser, which next asks A.
  const ended = await firstOnB.post('/2fa/sessions/end-others', {}, { json: true })
  t.equal(ended.statusCode, 200)
  t.equal(answerOf(ended).ended, 1)
  t.equal((await whoIs(second)).userId, null, 'the other browser is signed out on A at its next request')
  t.equal((await whoIs(first)).userId, 'alice', 'this one is not')

  // An admin reset on A ends the remaining session, which next asks B.
  await a.host.app.twoFactor.reset('alice', { actor: 'cli', reason: 'test' })
  t.equal((await whoIs(firstOnB)).userId, null, 'a reset on A signs the browser out on B')

  // Sign-out on B removes the key; A sees nobody.
  const third = b.host.client()
  await login(third, 'bob', 'bob-password')
  const thirdOnA = sameCookies(a.host, third)
  t.equal((await whoIs(thirdOnA)).userId, 'bob')
  await third.post('/logout', {}, { json: true })
  t.equal((await whoIs(thirdOnA)).userId, null, 'signed out on B: signed out on A')
  t.same(answerOf(await b.host.client().get('/', { json: true })).userId, null)
  t.same(await new RedisSessionStore(a.redis, { prefix, clock: clock.now }).listAccountSessions('bob'), [], 'bob\'s ended session left Redis')
})

t.test('an expired session is gone from the store and the list', { skip: missing }, async (t) => {
  const prefix = `tf-test-${randomBytes(6).toString('hex')}:`
  const redis = new Redis(REDIS_URL)
  t.teardown(async () => {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    redis.disconnect()
  })
  const clock = new TestClock(Date.now())
  const store = new RedisSessionStore(redis, { prefix, clock: clock.now })
  const host = await createHost(t, { clock, twoFactor: { session: { secret: HOST_SESSION_SECRET, secure: false, store, maxAgeMs: 60 * 60_000 } } })
  const client = host.client()
  await login(client, 'alice', 'alice-password')
  t.equal((await store.listAccountSessions('alice')).length, 1)
  clock.advance(61 * 60_000)
  t.equal((await whoIs(client)).userId, null, 'past its lifetime the session is nobody')
  t.same(await store.listAccountSessions('alice'), [], 'and not listed')
})
