// A recovery code that signs in is taken, clears the failure counter and stores its two audit
// events in one statement: all of that happens, or (when an event cannot be stored) none of it.
import t from 'tap'
import { desc, eq, sql } from 'drizzle-orm'
import { accounts, events, recoveryCodes } from '../../plugin/db/schema.ts'
import { answerOf } from '../helpers/client.ts'
import { createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'

t.test('a used recovery code', async (t) => {
  const h = await createHarness(t)
  const { db } = h.database
  const { recoveryCodes: codes } = await enrol(h, 'alice', PASSWORDS.alice)

  const unused = async () => (await db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, 'alice'))).filter((row) => row.usedAt === null).length
  const failures = async () => (await db.select().from(accounts).where(eq(accounts.userId, 'alice')))[0]!.failedAttempts
  const latestEvents = async (n: number) => (await db.select().from(events).where(eq(events.userId, 'alice')).orderBy(desc(events.id)).limit(n)).reverse()
  const pendingWithOneFailure = async (t: { equal (found: unknown, wanted: unknown, message: string): unknown }) => {
    const client = h.client()
    await passwordStep(client, 'alice', PASSWORDS.alice)
    await client.get('/2fa/challenge')
    t.equal((await client.post('/2fa/challenge', { code: '000000' })).statusCode, 422, 'a wrong code first')
    return client
  }

  t.test('is taken, with the failure counter cleared and its two events', async (t) => {
    const client = await pendingWithOneFailure(t)
    t.equal(await failures(), 1, 'the wrong code counted')
    const published = h.events.length
    const answer = await client.post('/2fa/challenge', { recoveryCode: codes[0] }, { json: true })
    t.equal(answer.statusCode, 200)
    t.match(answerOf(answer), { state: 'signed-in', recoveryCodesLeft: 9 })
    t.equal(await failures(), 0, 'the counter is cleared')
    t.equal(await unused(), 9, 'the code is used')

    const [used, succeeded] = await latestEvents(2)
    t.match(used, { type: 'recovery.used', userId: 'alice', actor: 'alice', details: { remaining: 9 } }, 'recovery.used says how many are left')
    t.match(succeeded, { type: 'challenge.succeeded', userId: 'alice', actor: 'alice', details: { method: 'recovery' } })
    t.equal(succeeded!.id, used!.id + 1, 'in that order, one after the other')
    t.equal(succeeded!.at.getTime(), used!.at.getTime(), 'at the same moment')
    t.equal(used!.ip, succeeded!.ip)
    t.equal(used!.userAgent, succeeded!.userAgent)
    const types = h.events.slice(published).map((event) => event.type)
    t.ok(types.join(' ').includes('recovery.used challenge.succeeded'), `published in order once committed: ${types.join(', ')}`)
  })

  t.test('is left unused, with the counter as it was, when an event cannot be stored', async (t) => {
    await db.execute(sql.raw(`create or replace function two_factor.test_fail_event() returns trigger language plpgsql as $$
      begin if new.type = 'challenge.succeeded' then raise exception 'injected failure'; end if; return new; end $$`))
    await db.execute(sql.raw('create trigger test_fail_event before insert on two_factor.events for each row execute function two_factor.test_fail_event()'))
    t.teardown(async () => { await db.execute(sql.raw('drop trigger if exists test_fail_event on two_factor.events')) })

    const client = await pendingWithOneFailure(t)
    const before = { failures: await failures(), unused: await unused(), last: (await latestEvents(1))[0]!.id }
    const answer = await client.post('/2fa/challenge', { recoveryCode: codes[1] }, { json: true })
    t.ok(answer.statusCode >= 500, `the check fails: ${answer.statusCode}`)
    t.equal(await unused(), before.unused, 'the code is still unused')
    t.equal(await failures(), before.failures, 'the counter is as it was')
    t.equal((await latestEvents(1))[0]!.id, before.last, 'no recovery.used without its success')
  })
})
