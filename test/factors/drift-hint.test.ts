// The clock-drift hint. A wrong code that an authenticator would have shown a few minutes ago is
// most likely a phone whose clock is behind, and saying so helps the user. The same hint for a
// code of a FUTURE step would tell whoever typed it that the code will be right in N minutes: at
// the sign-in prompt and at step-up a guessed or stolen future code would be confirmed and could
// be used when its step comes. So there the hint is given only for past steps (up to 10 minutes
// back), and a future code gets the plain "not valid" and, when its time comes, works as any code
// does. At the wizard's confirm step the secret is the user's own and new, nothing to protect yet:
// both directions get the hint.
import t from 'tap'
import { answerOf, type Client } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, login, type Host, type HostUser } from '../fixtures/host.ts'

const USERS: HostUser[] = [
  { id: 'admin', password: 'admin-password', role: 'admin' },
  { id: 'alice', password: 'alice-password' },
  { id: 'bob', password: 'bob-password' },
  { id: 'carol', password: 'carol-password' }
]
const passwordOf = (userId: string): string => USERS.find((u) => u.id === userId)!.password
const STEP_MS = 30_000
const HINT = /clock seems to be off/
const hint = (minutes: number) => `Your device clock seems to be off by about ${minutes} minute${minutes === 1 ? '' : 's'}.`

async function enrolled (host: Host, userId: string): Promise<{ client: Client, manualKey: string }> {
  const client = host.client()
  await login(client, userId, passwordOf(userId))
  const { manualKey } = answerOf(await client.get('/2fa/setup', { json: true })) as { manualKey: string }
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  if (confirm.statusCode !== 200) throw new Error(`confirm failed: ${confirm.statusCode} ${confirm.body}`)
  await client.post('/2fa/setup/finish', {}, { json: true })
  host.clock.advance(STEP_MS)
  return { client, manualKey }
}

function messageOf (response: { body: string }): string {
  return String(JSON.parse(response.body).message)
}

t.test('the clock-drift hint', async (t) => {
  // Start in the middle of a step, so that moving on by whole steps never crosses an edge early.
  const host = await createHost(t, { users: USERS })
  host.clock.advance(15_000)

  await t.test('at the sign-in prompt: past codes get the hint, a future code gets none and later signs in', async (t) => {
    const { manualKey } = await enrolled(host, 'alice')
    const client = host.client()
    t.match(answerOf(await login(client, 'alice', passwordOf('alice'))), { state: 'pending' })

    const fiveBehind = await client.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms, -10) }, { json: true })
    t.equal(fiveBehind.statusCode, 422)
    t.match(answerOf(fiveBehind), { error: 'invalid_code' })
    t.match(messageOf(fiveBehind), hint(5), 'a code of 5 minutes ago: the hint says 5 minutes')

    const tenBehind = await client.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms, -20) })
    t.equal(tenBehind.statusCode, 422)
    t.ok(tenBehind.body.includes(hint(10)), 'a code of 10 minutes ago: the hint on the page says 10 minutes')

    const tooFar = await client.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms, -22) }, { json: true })
    t.equal(tooFar.statusCode, 422)
    t.notMatch(messageOf(tooFar), HINT, 'eleven minutes ago is past the hint’s reach')

    const future = codeFor(manualKey, host.clock.ms, 8)
    const ahead = await client.post('/2fa/challenge', { code: future }, { json: true })
    t.equal(ahead.statusCode, 422)
    t.match(answerOf(ahead), { error: 'invalid_code' })
    t.notMatch(messageOf(ahead), HINT, 'a code of 4 minutes ahead: no hint')
    t.equal(messageOf(ahead), messageOf(tooFar), 'the same words as any wrong code')

    host.clock.advance(8 * STEP_MS)
    const later = await client.post('/2fa/challenge', { code: future }, { json: true })
    t.equal(later.statusCode, 200, 'once its step comes, the future code signs in')
    t.match(answerOf(later), { state: 'signed-in' })
    host.clock.advance(STEP_MS)
  })

  await t.test('at step-up: past codes get the hint, a future code gets none and later passes', async (t) => {
    const { client, manualKey } = await enrolled(host, 'bob')
    host.clock.advance(20 * 60_000)

    const behind = await client.post('/2fa/step-up', { code: codeFor(manualKey, host.clock.ms, -6), returnTo: '/export' }, { json: true })
    t.equal(behind.statusCode, 422)
    t.match(messageOf(behind), hint(3), 'a code of 3 minutes ago: the hint says 3 minutes')
    const behindPage = await client.post('/2fa/step-up', { code: codeFor(manualKey, host.clock.ms, -14), returnTo: '/export' })
    t.equal(behindPage.statusCode, 422)
    t.ok(behindPage.body.includes(hint(7)), 'on the page too')

    const future = codeFor(manualKey, host.clock.ms, 6)
    const ahead = await client.post('/2fa/step-up', { code: future, returnTo: '/export' }, { json: true })
    t.equal(ahead.statusCode, 422)
    t.notMatch(messageOf(ahead), HINT, 'a code of 3 minutes ahead: no hint')
    t.equal((await client.get('/export', { json: true })).statusCode, 401, 'and no fresh code')

    host.clock.advance(6 * STEP_MS)
    const later = await client.post('/2fa/step-up', { code: future, returnTo: '/export' }, { json: true })
    t.equal(later.statusCode, 200, 'once its step comes, the future code passes')
    t.equal((await client.get('/export', { json: true })).statusCode, 200)
    host.clock.advance(STEP_MS)
  })

  await t.test('at the wizard’s confirm step: both directions get the hint', async (t) => {
    const client = host.client()
    t.match(answerOf(await login(client, 'carol', passwordOf('carol'))), { state: 'signed-in' })
    const { manualKey } = answerOf(await client.get('/2fa/setup', { json: true })) as { manualKey: string }

    const behind = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms, -10) }, { json: true })
    t.equal(behind.statusCode, 422)
    t.match(answerOf(behind), { error: 'invalid_code' })
    t.match(messageOf(behind), hint(5), 'a code of 5 minutes ago: the hint')

    const ahead = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms, 10) }, { json: true })
    t.equal(ahead.statusCode, 422)
    t.match(messageOf(ahead), hint(5), 'a code of 5 minutes ahead: the hint too')

    const aheadPage = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms, 16) })
    t.equal(aheadPage.statusCode, 422)
    t.ok(aheadPage.body.includes(hint(8)), 'on the page as well')

    const right = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
    t.equal(right.statusCode, 200, 'the current code confirms')
  })
})
