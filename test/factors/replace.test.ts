// Replacing an authenticator ("move to a new phone"). A signed-in, enrolled user opens the wizard
// again and confirms a new secret; because that strips the old factor, the confirm request itself
// must prove it is the owner: the account password, or, on a host without passwords, a code of the
// current authenticator (or an unused recovery code). Without that proof a stolen session could
// swap in the thief's phone. A missing or wrong proof is refused, counted against the lockout like
// a wrong code, and changes nothing; the right one swaps the secret and the recovery codes, records
// the replacement, and ends every other session of the account (they were signed in with the old
// factor), while the session that made the change stays signed in.
import t from 'tap'
import { eq } from 'drizzle-orm'
import { accounts, events as eventsTable } from '../../plugin/db/schema.ts'
import { answerOf, type Client } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, login, type Host } from '../fixtures/host.ts'

const PASSWORDS: Record<string, string> = { admin: 'admin-password', alice: 'alice-password', bob: 'bob-password' }

async function accountOf (host: Host, userId: string) {
  return (await host.database.db.select().from(accounts).where(eq(accounts.userId, userId)))[0]
}

async function storedEvents (host: Host, userId: string, type: string) {
  return (await host.database.db.select().from(eventsTable).where(eq(eventsTable.userId, userId))).filter((e) => e.type === type)
}

/** Opens the wizard as JSON; returns the answer (manualKey, replacing, reauthentication …). */
async function openWizard (client: Client) {
  const opened = await client.get('/2fa/setup', { json: true })
  if (opened.statusCode !== 200) throw new Error(`the wizard did not open: ${opened.statusCode} ${opened.body.slice(0, 200)}`)
  return answerOf(opened) as { manualKey: string, replacing: boolean, reauthentication: string | null }
}

/** Signs the user in (password, no 2FA yet) and enrols through the JSON wizard. */
async function enrolled (host: Host, userId: string): Promise<{ client: Client, manualKey: string, recoveryCodes: string[] }> {
  const client = host.client()
  const signedIn = await login(client, userId, PASSWORDS[userId] ?? '')
  if (answerOf(signedIn).state !== 'signed-in') throw new Error(`${userId} is not signed in: ${signedIn.body}`)
  const { manualKey } = await openWizard(client)
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  if (confirm.statusCode !== 200) throw new Error(`confirm failed: ${confirm.statusCode} ${confirm.body}`)
  const { recoveryCodes } = answerOf(confirm) as { recoveryCodes: string[] }
  await client.post('/2fa/setup/finish', {}, { json: true })
  host.clock.advance(30_000)
  return { client, manualKey, recoveryCodes }
}

/** A new browser through the password and a code (or a recovery code); the challenge's answer. */
async function signIn (host: Host, userId: string, proof: { code: string } | { recoveryCode: string }) {
  const client = host.client()
  const pending = await login(client, userId, PASSWORDS[userId] ?? '')
  if (answerOf(pending).state !== 'pending') throw new Error(`${userId} is not at the code prompt: ${pending.body}`)
  const answer = await client.post('/2fa/challenge', proof, { json: true })
  return { client, answer }
}

async function isSignedIn (client: Client, userId: string): Promise<boolean> {
  const home = await client.get('/', { json: true })
  return home.statusCode === 200 && JSON.parse(home.body).userId === userId && JSON.parse(home.body).state === 'signed-in'
}

t.test('replacing with a password: nothing changes without it, everything changes with it', async (t) => {
  const host = await createHost(t)
  const { client, manualKey: oldKey, recoveryCodes: oldCodes } = await enrolled(host, 'alice')

  await t.test('the wizard, opened again by an enrolled user, says it replaces and asks for the password', async (t) => {
    const opened = await openWizard(client)
    t.equal(opened.replacing, true)
    t.equal(opened.reauthentication, 'password')
    t.not(opened.manualKey, oldKey, 'a new secret')
  })

  await t.test('a right code of the new key without the right password is 422 wrong_password, counted, and changes nothing', async (t) => {
    const { manualKey: newKey } = await openWizard(client)
    const before = await accountOf(host, 'alice')
    const failedEventsBefore = (await storedEvents(host, 'alice', 'challenge.failed')).length
    let expectedFailures = before!.failedAttempts
    for (const password of [undefined, '', 'wrong-password', ['alice-password'], 'ALICE-PASSWORD']) {
      const body: Record<string, unknown> = { code: codeFor(newKey, host.clock.ms) }
      if (password !== undefined) body.password = password
      const refused = await client.post('/2fa/setup/confirm', body, { json: true })
      t.equal(refused.statusCode, 422, `password ${JSON.stringify(password)}: 422`)
      t.equal(JSON.parse(refused.body).error, 'wrong_password', 'error wrong_password')
      expectedFailures++
      t.equal((await accountOf(host, 'alice'))!.failedAttempts, expectedFailures, 'the failure is counted on the account')
      // Four refusals: a fifth would lock, which the next test shows on another account.
      if (expectedFailures === 4) break
    }
    const failedEvents = await storedEvents(host, 'alice', 'challenge.failed')
    t.equal(failedEvents.length, failedEventsBefore + 4, 'a challenge.failed event for each')
    t.match(failedEvents.at(-1)!.details, { reason: 'wrong_password' })

    const after = await accountOf(host, 'alice')
    t.equal(after!.secret, before!.secret, 'the secret is the old one')
    t.equal(after!.enrolmentId, before!.enrolmentId)
    t.same(await storedEvents(host, 'alice', 'authenticator.replaced'), [], 'nothing replaced')
    t.ok(await isSignedIn(client, 'alice'), 'the session is still signed in')

    const withOldKey = await signIn(host, 'alice', { code: codeFor(oldKey, host.clock.ms) })
    t.equal(withOldKey.answer.statusCode, 200, 'the old key still signs in')
    t.match(answerOf(withOldKey.answer), { state: 'signed-in' })
    const withOldCode = await signIn(host, 'alice', { recoveryCode: oldCodes[0]! })
    t.equal(withOldCode.answer.statusCode, 200, 'an old recovery code still works')
    t.match(answerOf(withOldCode.answer), { state: 'signed-in', recoveryCodesLeft: 9 })
    host.clock.advance(30_000)
  })

  await t.test('with the right password: new codes, the old factor gone, the other sessions ended', async (t) => {
    // Another browser signed in with the old factor, and one half-way through signing in.
    const other = await signIn(host, 'alice', { code: codeFor(oldKey, host.clock.ms) })
    t.ok(await isSignedIn(other.client, 'alice'), 'a second browser is signed in')
    host.clock.advance(30_000)
    const half = host.client()
    await login(half, 'alice', PASSWORDS.alice!)
    const eventsBefore = host.events.length

    const { manualKey: newKey } = await openWizard(client)
    const done = await client.post('/2fa/setup/confirm', { code: codeFor(newKey, host.clock.ms), password: PASSWORDS.alice }, { json: true })
    t.equal(done.statusCode, 200)
    const { recoveryCodes } = answerOf(done) as { recoveryCodes: string[] }
    t.equal(recoveryCodes.length, 10, 'ten new recovery codes')
    t.same(recoveryCodes.filter((code) => oldCodes.includes(code)), [], 'none of them old')
    t.equal((await client.post('/2fa/setup/finish', {}, { json: true })).statusCode, 200)

    const types = host.events.slice(eventsBefore).map((e) => e.type)
    t.ok(types.includes('enrolment.completed'), 'enrolment.completed')
    t.ok(types.includes('authenticator.replaced'), 'authenticator.replaced')
    t.equal((await storedEvents(host, 'alice', 'authenticator.replaced')).length, 1, 'stored once')
    t.match(host.events.slice(eventsBefore).find((e) => e.type === 'sessions.ended'), { userId: 'alice', details: { reason: 'replaced' } }, 'the sessions were ended for the replacement')

    t.ok(await isSignedIn(client, 'alice'), 'the session that replaced stays signed in')
    t.notOk(await isSignedIn(other.client, 'alice'), 'the other signed-in browser is not any more')
    const halfHome = await half.get('/', { json: true })
    t.equal(halfHome.statusCode, 200, 'the half-signed-in browser is not at a prompt any more…')
    t.match(JSON.parse(halfHome.body), { userId: null, state: 'anonymous' }, '…it is nobody')

    host.clock.advance(30_000)
    const oldKeyNow = await signIn(host, 'alice', { code: codeFor(oldKey, host.clock.ms) })
    t.equal(oldKeyNow.answer.statusCode, 422, 'the old key no longer signs in')
    const oldCodeNow = await signIn(host, 'alice', { recoveryCode: oldCodes[1]! })
    t.equal(oldCodeNow.answer.statusCode, 422, 'an old recovery code no longer works')
    const newKeyNow = await signIn(host, 'alice', { code: codeFor(newKey, host.clock.ms) })
    t.equal(newKeyNow.answer.statusCode, 200, 'the new key signs in')
    const newCodeNow = await signIn(host, 'alice', { recoveryCode: recoveryCodes[0]! })
    t.equal(newCodeNow.answer.statusCode, 200, 'a new recovery code works')
  })

  let bobSecret: string | null = null
  let bobNewKey = ''
  let bobClient: Client
  await t.test('five wrong passwords at the replacing confirm lock the account (423)', async (t) => {
    const { client } = await enrolled(host, 'bob')
    bobClient = client
    bobNewKey = (await openWizard(client)).manualKey
    bobSecret = (await accountOf(host, 'bob'))!.secret
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      const refused = await client.post('/2fa/setup/confirm', { code: codeFor(bobNewKey, host.clock.ms), password: `guess-${i}` }, { json: true })
      statuses.push(refused.statusCode)
    }
    t.same(statuses, [422, 422, 422, 422, 423], 'four refusals, then the lock')
    const account = await accountOf(host, 'bob')
    t.ok(account!.lockedUntil !== null && account!.lockedUntil.getTime() > host.clock.ms, 'the account is locked')
    t.ok(host.events.some((e) => e.type === 'lockout.started' && e.userId === 'bob'), 'lockout.started')
    const more = await client.post('/2fa/setup/confirm', { code: codeFor(bobNewKey, host.clock.ms), password: 'guess-5' }, { json: true })
    t.equal(more.statusCode, 423, 'a sixth wrong password: 423')
  })

  await t.test('while locked, the right password does not replace the authenticator either', async (t) => {
    const rightPassword = await bobClient.post('/2fa/setup/confirm', { code: codeFor(bobNewKey, host.clock.ms), password: PASSWORDS.bob }, { json: true })
    t.equal(rightPassword.statusCode, 423, 'the same 423 as a wrong password (the lock reveals nothing)')
    t.match(JSON.parse(rightPassword.body), { error: 'locked', retryAfter: Number })
    t.equal((await accountOf(host, 'bob'))!.secret, bobSecret, 'the secret is still the old one')
    t.notOk(host.events.some((e) => e.type === 'authenticator.replaced' && e.userId === 'bob'), 'nothing replaced')
  })
})

t.test('a host without passwords: replacing asks for a code of the current authenticator', async (t) => {
  const host = await createHost(t, { withoutPasswords: true })
  const { client, manualKey: oldKey, recoveryCodes: oldCodes } = await enrolled(host, 'alice')

  const opened = await openWizard(client)
  t.equal(opened.replacing, true)
  t.equal(opened.reauthentication, 'currentCode')

  await t.test('a wrong current code (or none, or a code of the new key) is 422 and counted', async (t) => {
    const { manualKey: newKey } = await openWizard(client)
    const before = await accountOf(host, 'alice')
    const failedBefore = host.events.filter((e) => e.type === 'challenge.failed' && e.userId === 'alice').length
    const wrongs: Array<Record<string, unknown>> = [
      {},
      { currentCode: '000000' },
      { currentCode: codeFor(newKey, host.clock.ms) },
      { currentCode: 'AAAA-BBBB-CCCC-DDDD' }
    ]
    let n = 0
    for (const wrong of wrongs) {
      const refused = await client.post('/2fa/setup/confirm', { code: codeFor(newKey, host.clock.ms), ...wrong }, { json: true })
      n++
      t.equal(refused.statusCode, 422, `${JSON.stringify(wrong)}: 422`)
      t.equal(JSON.parse(refused.body).error, 'wrong_password')
      t.equal((await accountOf(host, 'alice'))!.failedAttempts, before!.failedAttempts + n, 'counted')
    }
    t.equal(host.events.filter((e) => e.type === 'challenge.failed' && e.userId === 'alice').length, failedBefore + n, 'a challenge.failed event each')
    t.equal((await accountOf(host, 'alice'))!.secret, before!.secret, 'nothing changed')
    // Clear the count with a successful sign-in using the old key (it still works).
    const still = await signIn(host, 'alice', { code: codeFor(oldKey, host.clock.ms) })
    t.equal(still.answer.statusCode, 200, 'the old key still signs in')
    host.clock.advance(30_000)
  })

  let currentKey = oldKey
  let currentCodes: string[] = []
  await t.test('a code of the current authenticator replaces it', async (t) => {
    const other = await signIn(host, 'alice', { code: codeFor(currentKey, host.clock.ms) })
    host.clock.advance(30_000)
    const { manualKey: newKey } = await openWizard(client)
    const done = await client.post('/2fa/setup/confirm', { code: codeFor(newKey, host.clock.ms), currentCode: codeFor(currentKey, host.clock.ms) }, { json: true })
    t.equal(done.statusCode, 200)
    currentCodes = answerOf(done).recoveryCodes as string[]
    t.equal(currentCodes.length, 10, 'ten new recovery codes')
    await client.post('/2fa/setup/finish', {}, { json: true })
    t.ok(host.events.some((e) => e.type === 'authenticator.replaced' && e.userId === 'alice'), 'authenticator.replaced')
    t.ok(await isSignedIn(client, 'alice'), 'the replacing session stays')
    t.notOk(await isSignedIn(other.client, 'alice'), 'the other one ends')
    currentKey = newKey
    host.clock.advance(30_000)
  })

  await t.test('so does an unused recovery code of the current set', async (t) => {
    const { manualKey: newKey } = await openWizard(client)
    const stale = await client.post('/2fa/setup/confirm', { code: codeFor(newKey, host.clock.ms), currentCode: oldCodes[0]! }, { json: true })
    t.equal(stale.statusCode, 422, 'a code of the replaced set is refused')
    const done = await client.post('/2fa/setup/confirm', { code: codeFor(newKey, host.clock.ms), currentCode: currentCodes[0]! }, { json: true })
    t.equal(done.statusCode, 200, 'an unused recovery code proves it')
    await client.post('/2fa/setup/finish', {}, { json: true })
    host.clock.advance(30_000)
    const withNewer = await signIn(host, 'alice', { code: codeFor(newKey, host.clock.ms) })
    t.equal(withNewer.answer.statusCode, 200, 'the newest key signs in')
    const withPrevious = await signIn(host, 'alice', { code: codeFor(currentKey, host.clock.ms) })
    t.equal(withPrevious.answer.statusCode, 422, 'the one it replaced does not')
  })
})
