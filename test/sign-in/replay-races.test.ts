// Attack: use one code twice, by replaying it later or by racing many submissions at once
// (single use, recovery codes, the failure counter). On a real Postgres the 50
// requests run on 20 connections at once; on PGlite they interleave on one.
import t from 'tap'
import { and, eq } from 'drizzle-orm'
import { events } from '../../plugin/db/schema.ts'
import { Client } from '../helpers/client.ts'
import { codeFor, createHarness, manualKeyFrom, PASSWORDS, passwordStep, type Harness } from '../helpers/demo.ts'
import { accountOf, clearFailures, pendingClient, pendingClients, recoveryCodesIn, statusCounts, unusedRecoveryCodes } from '../helpers/states.ts'

const RACERS = 50

/** The same browser (cookies and token) talking to another app on the same session store. */
function onApp (h: Harness, client: Client): Client {
  const copy = new Client(h.app)
  for (const [name, value] of client.cookies) copy.cookies.set(name, value)
  copy.csrfToken = client.csrfToken
  return copy
}

async function eventCount (h: Harness, userId: string, type: string): Promise<number> {
  return (await h.database.db.select().from(events).where(and(eq(events.userId, userId), eq(events.type, type)))).length
}

t.test('replay and races', async (t) => {
  const h = await createHarness(t)
  // The same app with a lockout threshold above the number of racers, on the same database: the
  // losers of a race count as failures, and a lockout would end the winner's session too
  // (sessions.test.ts), which would hide what these races test.
  const wide = await createHarness(t, { database: h.database, clock: h.clock, app: { twoFactor: { lockoutThreshold: 100 } } })
  const unlock = async (userId: string) => { await clearFailures(h, userId) }
  let aliceCodes: string[] = []
  let aliceKey = ''
  let succeededBefore = 0

  t.test('the code that confirmed enrolment does not sign in afterwards', async (t) => {
    const client = h.client()
    await passwordStep(client, 'bob', PASSWORDS.bob)
    const manualKey = manualKeyFrom((await client.get('/2fa/setup')).body)
    const code = codeFor(manualKey, h.clock.ms)
    t.equal((await client.post('/2fa/setup/confirm', { code })).statusCode, 200, 'enrolment confirmed')
    t.equal((await client.post('/2fa/setup/finish')).statusCode, 200)
    await client.post('/2fa/logout')

    // Same 30-second step: the confirming code is the most recently used one.
    const later = await pendingClient(h, 'bob', PASSWORDS.bob)
    const replay = await later.post('/2fa/challenge', { code })
    t.equal(replay.statusCode, 422, 'refused')
    t.equal((await later.get('/')).headers.location, '/2fa/challenge', 'still pending')
    h.clock.advance(30_000)
    const fresh = await later.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
    t.equal(fresh.headers.location, '/', 'the next step’s code works')
    h.clock.advance(30_000)
  })

  t.test('10 concurrent confirmations of one code enrol once, with one set of recovery codes', async (t) => {
    // One signed-in user (no 2FA yet) with the wizard open in ten browsers: each has a secret
    // of its own (a pending secret belongs to the session that opened it).
    const first = h.client()
    t.equal((await passwordStep(first, 'alice', PASSWORDS.alice)).headers.location, '/')
    const manualKey = manualKeyFrom((await first.get('/2fa/setup')).body)
    aliceKey = manualKey
    const others: Client[] = []
    for (let i = 1; i < 10; i++) {
      const tab = h.client()
      await passwordStep(tab, 'alice', PASSWORDS.alice)
      t.not(manualKeyFrom((await tab.get('/2fa/setup')).body), manualKey, 'another browser gets a secret of its own')
      others.push(tab)
    }
    // The first browser sends its code ten times at once; the others send the same code (not theirs).
    const code = codeFor(manualKey, h.clock.ms)
    const responses = await Promise.all([
      ...Array.from({ length: 10 }, async () => await first.post('/2fa/setup/confirm', { code })),
      ...others.map(async (tab) => await tab.post('/2fa/setup/confirm', { code }))
    ])
    t.equal(responses.filter((r) => r.statusCode === 200).length, 1, 'one confirmation')
    // The first browser's other nine submissions are refused as a used code. Enrolling ends the
    // account's other sessions, so each other browser's try is refused either as a wrong code
    // (it ran first) or for the session it no longer has (403: its CSRF token is for that session):
    // which one depends on how the requests interleave on the server's connections.
    const refusals = responses.filter((r) => r.statusCode !== 200)
    t.equal(refusals.length, 18, 'eighteen refusals')
    t.same(responses.slice(0, 10).filter((r) => r.statusCode !== 200).map((r) => r.statusCode), Array(9).fill(422), 'the code’s own browser: the used code refused')
    t.ok(responses.slice(10).every((r) => r.statusCode === 422 || r.statusCode === 403), 'the other browsers: refused as a wrong code or as a session that ended, no 5xx')
    t.equal(responses.findIndex((r) => r.statusCode === 200) < 10, true, 'the winner is the browser whose secret it is')
    const winner = responses.find((r) => r.statusCode === 200)!
    const shown = recoveryCodesIn(winner.body)
    t.equal(shown.length, 10)
    aliceCodes = shown
    t.equal(await unusedRecoveryCodes(h, 'alice'), 10, 'exactly one set stored')
    t.equal(await eventCount(h, 'alice', 'enrolment.completed'), 1, 'one enrolment.completed event')

    // The codes the winner was shown are the ones that work.
    h.clock.advance(30_000)
    const later = await pendingClient(h, 'alice', PASSWORDS.alice)
    t.equal((await later.post('/2fa/challenge', { recoveryCode: shown[0] })).statusCode, 200, 'a shown recovery code signs in')
    succeededBefore = await eventCount(h, 'alice', 'challenge.succeeded')
    h.clock.advance(30_000)
  })

  // One pool of alice's pending sessions serves every race: the losers of one race (one attempt
  // used each) race again in the next, topped up to 50 with fresh sign-ins.
  let pool: Client[] = []
  async function racers (): Promise<Client[]> {
    pool = [...pool, ...await pendingClients(wide, 'alice', PASSWORDS.alice, RACERS - pool.length)]
    return pool
  }
  /** Drops the sessions that won (they are signed in now) from the pool. */
  function keepLosers (responses: Array<{ statusCode: number }>, won: number): void {
    pool = pool.filter((_, i) => responses[i]!.statusCode !== won)
  }

  t.test(`one TOTP code from ${RACERS} pending sessions at once: exactly one signs in`, async (t) => {
    await unlock('alice')
    const clients = await racers()
    const code = codeFor(aliceKey, h.clock.ms)
    const responses = await Promise.all(clients.map((c) => c.post('/2fa/challenge', { code })))
    t.same(statusCounts(responses.map((r) => r.statusCode)), { 303: 1, 422: RACERS - 1 }, 'one success, every other submission refused, no 5xx')
    const reached = await Promise.all(clients.map(async (c) => (await c.get('/')).statusCode))
    t.same(statusCounts(reached), { 200: 1, 303: RACERS - 1 }, 'exactly one session reaches the dashboard')
    t.equal(await eventCount(h, 'alice', 'challenge.succeeded') - succeededBefore, 1, 'one challenge.succeeded event')
    keepLosers(responses, 303)
    h.clock.advance(30_000)
  })

  t.test(`one recovery code from ${RACERS} pending sessions at once: exactly one signs in`, async (t) => {
    await unlock('alice')
    const before = await unusedRecoveryCodes(h, 'alice')
    const clients = await racers()
    const responses = await Promise.all(clients.map((c) => c.post('/2fa/challenge', { recoveryCode: aliceCodes[3] })))
    t.same(statusCounts(responses.map((r) => r.statusCode)), { 200: 1, 422: RACERS - 1 }, 'one success, every other use refused, no 5xx')
    t.equal(await unusedRecoveryCodes(h, 'alice'), before - 1, 'exactly one code consumed')
    const reached = await Promise.all(clients.map(async (c) => (await c.get('/')).statusCode))
    t.same(statusCounts(reached), { 200: 1, 303: RACERS - 1 }, 'exactly one session signed in')
    keepLosers(responses, 200)
  })

  t.test(`${RACERS} concurrent wrong codes below the threshold are each counted`, async (t) => {
    // With the threshold above the burst the counter must land on exactly 50: no increment was
    // lost to a race.
    await unlock('alice')
    const clients = await racers()
    const responses = await Promise.all(clients.map((c) => c.post('/2fa/challenge', { code: '000000' })))
    t.same(statusCounts(responses.map((r) => r.statusCode)), { 422: RACERS }, 'all refused, none locked')
    t.equal((await accountOf(h, 'alice'))?.failedAttempts, RACERS, `the failure counter is exactly ${RACERS}`)
  })

  t.test(`${RACERS} concurrent wrong codes engage the lock exactly once`, async (t) => {
    await unlock('alice')
    const lockoutsBefore = await eventCount(h, 'alice', 'lockout.started')
    // The same sessions, sent to the app whose lockout threshold is 5 (they share the store).
    const clients = (await racers()).map((c) => onApp(h, c))
    const responses = await Promise.all(clients.map((c, i) => c.post('/2fa/challenge', { code: String(100000 + i) }, { json: true })))
    const counts = statusCounts(responses.map((r) => r.statusCode))
    // Failures 1-4 are counted and answered 422; the 5th starts the lock; the rest find it locked
    // and are not counted (a lost update would show up here as extra 422s or a second lock).
    t.same(counts, { 422: 4, 423: RACERS - 4 }, 'four plain failures, then locked')
    const account = await accountOf(h, 'alice')
    t.equal(account?.lockouts, 1, 'one lockout recorded')
    t.equal(account?.failedAttempts, 0, 'the counter restarted when the lock began')
    t.equal(account?.lockedUntil?.getTime(), h.clock.ms + 15 * 60_000, 'locked for the first 15 minutes')
    t.equal(await eventCount(h, 'alice', 'lockout.started') - lockoutsBefore, 1, 'one lockout.started event')
  })
})
