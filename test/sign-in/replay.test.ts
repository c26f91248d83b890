// Single use: a TOTP code's step and a recovery code each sign in once, even
// when many pending sessions submit the same one at the same moment.
import t from 'tap'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'
import type { Client } from '../helpers/client.ts'

t.test('single-use codes', async (t) => {
  // The losers of each race count as failures, and a lockout ends the user's other sessions
  // (the winner's too): keep the lockout out of reach so the races show only single use.
  const h = await createHarness(t, { app: { twoFactor: { lockoutThreshold: 100 } } })
  const { manualKey, recoveryCodes } = await enrol(h, 'alice', PASSWORDS.alice)

  async function pendingClients (n: number): Promise<Client[]> {
    const clients: Client[] = []
    for (let i = 0; i < n; i++) {
      const client = h.client()
      const login = await passwordStep(client, 'alice', PASSWORDS.alice)
      t.equal(login.headers.location, '/2fa/challenge')
      await client.get('/2fa/challenge')
      clients.push(client)
    }
    return clients
  }

  async function unlockAlice (): Promise<void> {
    // Each losing submission counts as a failure; start every round with a clean counter.
    await h.app.twoFactor.unlock('alice', { actor: 'test' })
  }

  t.test('a code used once is refused in a later sign-in', async (t) => {
    await unlockAlice()
    const code = codeFor(manualKey, h.clock.ms)
    const [first] = await pendingClients(1)
    t.equal((await first!.post('/2fa/challenge', { code })).headers.location, '/')
    const [second] = await pendingClients(1)
    const replay = await second!.post('/2fa/challenge', { code })
    t.equal(replay.statusCode, 422, 'the same code is refused')
    t.equal((await second!.get('/')).headers.location, '/2fa/challenge', 'still pending')
    h.clock.advance(30_000)
  })

  t.test('an older step than one already used is refused too', async (t) => {
    await unlockAlice()
    const [a, b] = await pendingClients(2)
    t.equal((await a!.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })).statusCode, 303)
    const previous = await b!.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms, -1) })
    t.equal(previous.statusCode, 422, 'T-1 is inside the window but older than the used step')
    h.clock.advance(30_000)
  })

  t.test('20 concurrent submissions of one valid code: exactly one signs in', async (t) => {
    await unlockAlice()
    const clients = await pendingClients(20)
    const code = codeFor(manualKey, h.clock.ms)
    const responses = await Promise.all(clients.map((c) => c.post('/2fa/challenge', { code })))
    const winners = responses.filter((r) => r.statusCode === 303 && r.headers.location === '/')
    t.equal(winners.length, 1, 'one success')
    t.ok(responses.every((r) => r.statusCode === 303 || r.statusCode === 422 || r.statusCode === 423), 'the rest are refused, never 5xx')
    const signedIn = await Promise.all(clients.map(async (c) => (await c.get('/')).statusCode === 200))
    t.equal(signedIn.filter(Boolean).length, 1, 'exactly one session reaches the dashboard')
    h.clock.advance(30_000)
  })

  t.test('20 concurrent uses of one recovery code: exactly one signs in', async (t) => {
    await unlockAlice()
    const clients = await pendingClients(20)
    const recoveryCode = recoveryCodes[0]!
    const responses = await Promise.all(clients.map((c) => c.post('/2fa/challenge', { recoveryCode })))
    const winners = responses.filter((r) => r.statusCode === 200)
    t.equal(winners.length, 1, 'one success')
    t.match(winners[0]!.body, /9<\/strong>|9 recovery codes left/, 'nine codes left')
    t.ok(responses.every((r) => r.statusCode === 200 || r.statusCode === 422 || r.statusCode === 423), 'never 5xx')
    await unlockAlice()
    const [later] = await pendingClients(1)
    t.equal((await later!.post('/2fa/challenge', { recoveryCode })).statusCode, 422, 'the used code stays used')
    const status = await h.app.twoFactor.status('alice')
    t.equal(status.recoveryCodesLeft, 9)
  })

  t.test('recovery codes are case-insensitive and ignore spaces and dashes', async (t) => {
    await unlockAlice()
    const [client] = await pendingClients(1)
    const sloppy = ` ${recoveryCodes[1]!.toLowerCase().replace(/-/g, ' ')} `
    t.equal((await client!.post('/2fa/challenge', { recoveryCode: sloppy })).statusCode, 200)
  })
})
