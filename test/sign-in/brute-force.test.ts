// Attack: someone who has the password guesses the second factor. The
// per-account counter in the database is the wall: 5 failures lock, locks double up to 24
// hours, nothing the attacker controls (session, IP, a fresh password sign-in, the kind of
// code) resets it, and while locked the answer says nothing about the code. The per-IP rate
// limit is a second, coarser layer.
import t from 'tap'
import { eq } from 'drizzle-orm'
import { demoUsers } from '../../demo-app/schema.ts'
import { type Client, answerOf } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep, type Harness } from '../helpers/demo.ts'
import { accountOf, clearFailures, postFrom, statusCounts } from '../helpers/states.ts'

const MINUTE = 60_000
const WRONG_RECOVERY = 'AAAA-BBBB-CCCC-DDDD'

/** Password step from a given IP; then the code prompt, for its CSRF token. */
async function pendingFrom (h: Harness, ip: string, username: 'alice' | 'bob' | 'admin'): Promise<Client> {
  const client = h.client()
  await client.get('/login')
  const login = await postFrom(h, client, ip, '/login', { username, password: PASSWORDS[username] })
  if (login.headers.location !== '/2fa/challenge') throw new Error(`not pending: ${login.statusCode}`)
  await client.get('/2fa/challenge')
  return client
}

/** Same answer, byte for byte, once the per-response CSRF token is set aside. */
function comparable (body: string): string {
  return body.replace(/("csrfToken":\s*"|content="|value="|"x-csrf-token": ")[\w-]{20,}/g, '$1<token>')
}

t.test('brute force', async (t) => {
  const h = await createHarness(t)
  const { manualKey: aliceKey, recoveryCodes: aliceCodes } = await enrol(h, 'alice', PASSWORDS.alice)
  const { manualKey: bobKey, recoveryCodes: bobCodes } = await enrol(h, 'bob', PASSWORDS.bob)
  const unlock = async (userId: string) => { await h.app.twoFactor.unlock(userId, { actor: 'test' }) }

  t.test('lock lengths double from 15 minutes to a 24-hour ceiling, and the right code waits out every one', async (t) => {
    const expectedMinutes = [15, 30, 60, 120, 240, 480, 960, 1440, 1440]
    for (const [round, minutes] of expectedMinutes.entries()) {
      const client = await pendingFrom(h, '10.0.0.1', 'alice')
      for (let i = 1; i <= 4; i++) t.equal((await client.post('/2fa/challenge', { code: '000000' })).statusCode, 422)
      const fifth = await client.post('/2fa/challenge', { code: '000000' }, { json: true })
      t.equal(fifth.statusCode, 423, `round ${round + 1}: the fifth failure locks`)
      t.equal(JSON.parse(fifth.body).retryAfter, minutes * 60, `round ${round + 1}: locked for ${minutes} minutes`)
      t.equal((await accountOf(h, 'alice'))?.lockedUntil?.getTime(), h.clock.ms + minutes * MINUTE, 'lockedUntil in the database')

      // One second before the end the right code is still refused...
      h.clock.advance(minutes * MINUTE - 1000)
      const early = await pendingFrom(h, '10.0.0.1', 'alice')
      const refused = await early.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) }, { json: true })
      t.equal(refused.statusCode, 423, 'the right code one second before the lock ends: refused')
      t.equal(JSON.parse(refused.body).retryAfter, 1)
      h.clock.advance(1000)
    }
    // ...and once a lock has passed, a success clears the counter and the doubling.
    const client = await pendingFrom(h, '10.0.0.1', 'alice')
    t.equal((await client.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) })).headers.location, '/', 'signed in after the lock')
    h.clock.advance(30_000)
    const account = await accountOf(h, 'alice')
    t.same({ failedAttempts: account?.failedAttempts, lockouts: account?.lockouts, lockedUntil: account?.lockedUntil }, { failedAttempts: 0, lockouts: 0, lockedUntil: null })
    const again = await pendingFrom(h, '10.0.0.1', 'alice')
    let last
    for (let i = 0; i < 5; i++) last = await again.post('/2fa/challenge', { code: '000000' }, { json: true })
    t.equal(JSON.parse(last!.body).retryAfter, 15 * 60, 'the next lock is 15 minutes again')
    await unlock('alice')
  })

  t.test('one counter for codes and recovery codes, across sessions, IPs and password sign-ins', async (t) => {
    await unlock('bob')
    // Five failures, each from a fresh password sign-in, a new session and a different IP,
    // alternating between a code, a recovery code and malformed input.
    const attempts: Array<Record<string, string>> = [
      { code: '000000' }, { recoveryCode: WRONG_RECOVERY }, { code: '12345' }, { recoveryCode: 'not a code' }, { code: '999999' }
    ]
    const statuses: number[] = []
    for (const [i, body] of attempts.entries()) {
      const client = await pendingFrom(h, `192.0.2.${i + 1}`, 'bob')
      statuses.push((await postFrom(h, client, `192.0.2.${i + 1}`, '/2fa/challenge', body, { json: true })).statusCode)
    }
    t.same(statuses, [422, 422, 422, 422, 423], 'the fifth failure locks, whatever mixture came before')
    t.equal((await accountOf(h, 'bob'))?.lockouts, 1)

    // Nothing the attacker controls opens it: not a new IP, a new session, or the recovery path.
    const fresh = await pendingFrom(h, '198.51.100.7', 'bob')
    const withCode = await postFrom(h, fresh, '198.51.100.7', '/2fa/challenge', { code: codeFor(bobKey, h.clock.ms) }, { json: true })
    t.equal(withCode.statusCode, 423, 'the right code from a new IP and session: locked')
    const other = await pendingFrom(h, '198.51.100.8', 'bob')
    const withRecovery = await postFrom(h, other, '198.51.100.8', '/2fa/challenge', { recoveryCode: bobCodes[0]! }, { json: true })
    t.equal(withRecovery.statusCode, 423, 'a valid recovery code: locked too')
    t.equal((await h.app.twoFactor.status('bob')).recoveryCodesLeft, 10, 'and it was not used up')
    t.equal((await other.get('/')).headers.location, '/2fa/challenge', 'still pending')
    await unlock('bob')
  })

  t.test('while locked, right and wrong codes get the same status, headers and body', async (t) => {
    await unlock('alice')
    const locker = await pendingFrom(h, '10.0.0.2', 'alice')
    for (let i = 0; i < 5; i++) await locker.post('/2fa/challenge', { code: '000000' })
    t.ok((await h.app.twoFactor.status('alice')).lockedUntil, 'alice is locked')

    const inputs = {
      'right code': () => ({ code: codeFor(aliceKey, h.clock.ms) }),
      'wrong code': () => ({ code: '000000' }),
      'malformed code': () => ({ code: '12ab' }),
      'right recovery code': () => ({ recoveryCode: aliceCodes[0]! }),
      'wrong recovery code': () => ({ recoveryCode: WRONG_RECOVERY })
    }
    for (const shape of [{ name: 'JSON', json: true }, { name: 'page' }, { name: 'htmx', htmx: true }] as const) {
      const answers: Array<{ name: string, status: number, retryAfter: unknown, type: unknown, body: string }> = []
      for (const [name, input] of Object.entries(inputs)) {
        const client = await pendingFrom(h, '10.0.0.3', 'alice')
        const body = input()
        const method = 'recoveryCode' in body ? '?method=recovery' : ''
        if (method !== '') await client.get(`/2fa/challenge${method}`)
        const response = await client.post('/2fa/challenge', body, shape)
        answers.push({ name, status: response.statusCode, retryAfter: response.headers['retry-after'], type: response.headers['content-type'], body: comparable(response.body) })
      }
      const [first, ...rest] = answers
      t.equal(first!.status, 423, `${shape.name}: 423`)
      // Codes and recovery codes are told apart only by which form the user used, never by the code.
      for (const other of rest) {
        const sameForm = ('recoveryCode' in inputs[other.name as keyof typeof inputs]()) === ('recoveryCode' in inputs[first!.name as keyof typeof inputs]())
        t.equal(other.status, first!.status, `${shape.name}: ${other.name} has the status of ${first!.name}`)
        t.equal(other.retryAfter, first!.retryAfter, `${shape.name}: ${other.name}: same Retry-After`)
        t.equal(other.type, first!.type, `${shape.name}: ${other.name}: same content type`)
        if (sameForm || shape.name === 'JSON') t.equal(other.body, first!.body, `${shape.name}: ${other.name}: same body as ${first!.name}`)
      }
      const recovery = answers.filter((a) => a.name.includes('recovery'))
      t.equal(recovery[0]!.body, recovery[1]!.body, `${shape.name}: right and wrong recovery codes: same body`)
    }
    t.equal((await h.app.twoFactor.status('alice')).recoveryCodesLeft, 10, 'the right recovery code was not used up')
  })

  t.test('while locked, right and wrong codes take the same time', async (t) => {
    // A second app on the same database whose pending state allows many attempts, so one
    // session can send them all; alice is still locked from the test before.
    const patient = await createHarness(t, { database: h.database, clock: h.clock, app: { twoFactor: { pendingAttempts: 100 } } })
    const client = patient.client()
    await passwordStep(client, 'alice', PASSWORDS.alice)
    await client.get('/2fa/challenge')
    const timings: Record<'right' | 'wrong', number[]> = { right: [], wrong: [] }
    const statuses: number[] = []
    for (let i = 0; i < 80; i++) {
      const kind = i % 2 === 0 ? 'right' : 'wrong'
      const code = kind === 'right' ? codeFor(aliceKey, h.clock.ms) : '000000'
      const started = process.hrtime.bigint()
      const response = await client.post('/2fa/challenge', { code }, { json: true })
      timings[kind].push(Number(process.hrtime.bigint() - started) / 1e6)
      statuses.push(response.statusCode)
    }
    t.same(statusCounts(statuses), { 423: 80 }, 'every answer is 423')
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const right = median(timings.right.slice(10))
    const wrong = median(timings.wrong.slice(10))
    t.comment(`median while locked: right ${right.toFixed(2)} ms, wrong ${wrong.toFixed(2)} ms`)
    t.ok(right < wrong * 2 + 2 && wrong < right * 2 + 2, 'same timing class (medians within 2x)')
    await unlock('alice')
  })

  t.test('unknown, used and malformed recovery codes get the same answer in the same time', async (t) => {
    // A second app with room for many attempts, so one session can send them all.
    const patient = await createHarness(t, { database: h.database, clock: h.clock, app: { twoFactor: { pendingAttempts: 100, lockoutThreshold: 100 } } })
    await clearFailures(h, 'bob')
    const used = bobCodes[9]!
    const spender = await pendingFrom(h, '10.0.0.9', 'bob')
    t.equal((await spender.post('/2fa/challenge', { recoveryCode: used })).statusCode, 200, 'one code used')
    const client = patient.client()
    await passwordStep(client, 'bob', PASSWORDS.bob)
    await client.get('/2fa/challenge?method=recovery')
    const kinds = {
      unknown: () => 'ABCD-EFGH-JKMN-PQRS',
      used: () => used,
      malformed: () => 'not-a-code!',
      empty: () => ''
    }
    const answers = new Map<string, string>()
    const timings = new Map<string, number[]>()
    for (let round = 0; round < 15; round++) {
      for (const [kind, input] of Object.entries(kinds)) {
        const started = process.hrtime.bigint()
        const response = await client.post('/2fa/challenge', { recoveryCode: input() }, { json: true })
        const ms = Number(process.hrtime.bigint() - started) / 1e6
        if (round > 2) timings.set(kind, [...timings.get(kind) ?? [], ms])
        const { attemptsLeft: _attemptsLeft, csrfToken: _csrfToken, ...rest } = JSON.parse(response.body) as Record<string, unknown>
        answers.set(kind, `${response.statusCode} ${JSON.stringify(rest)}`)
      }
    }
    t.equal(new Set(answers.values()).size, 1, `one answer for all: ${[...answers.values()][0]}`)
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const medians = Object.fromEntries([...timings].map(([kind, xs]) => [kind, median(xs)]))
    t.comment(`medians (ms): ${JSON.stringify(Object.fromEntries(Object.entries(medians).map(([k, v]) => [k, Number(v.toFixed(2))])))}`)
    const values = Object.values(medians)
    t.ok(Math.max(...values) < Math.min(...values) * 2 + 2, 'same timing class (medians within 2x)')
    await clearFailures(h, 'bob')
  })

  t.test('the host’s password lockout is cleared only after the second factor', async (t) => {
    await unlock('alice')
    const client = h.client()
    await client.get('/login')
    for (let i = 0; i < 3; i++) await client.post('/login', { username: 'alice', password: 'wrong' })
    const failedLogins = async () => (await h.database.db.select().from(demoUsers).where(eq(demoUsers.id, 'alice')))[0]!.failedLogins
    t.equal(await failedLogins(), 3)
    t.equal((await passwordStep(client, 'alice', PASSWORDS.alice)).headers.location, '/2fa/challenge')
    t.equal(await failedLogins(), 3, 'the right password alone leaves the host counter as it was')
    await client.get('/2fa/challenge')
    await client.post('/2fa/challenge', { code: '000000' })
    t.equal(await failedLogins(), 3, 'a failed code leaves it too')
    await client.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) })
    t.equal(await failedLogins(), 0, 'cleared once sign-in completes')
    h.clock.advance(30_000)
  })

  t.test('the per-IP rate limit is a second layer', async (t) => {
    const limited = await createHarness(t, { database: h.database, clock: h.clock, app: { rateLimitPerMinute: 5, twoFactor: { lockoutThreshold: 100 } } })
    await unlock('alice')
    const before = (await accountOf(h, 'alice'))?.failedAttempts ?? 0
    const client = limited.client()
    await client.get('/login')
    const login = await postFrom(limited, client, '203.0.113.1', '/login', { username: 'alice', password: PASSWORDS.alice })
    t.equal(login.headers.location, '/2fa/challenge')
    await client.get('/2fa/challenge')

    const statuses: number[] = []
    let last
    for (let i = 0; i < 8; i++) {
      // A spoofed X-Forwarded-For changes nothing: the app does not trust proxies.
      last = await postFrom(limited, client, '203.0.113.1', '/2fa/challenge', { code: '000000' }, { json: true, headers: { 'x-forwarded-for': `198.18.0.${i}` } })
      statuses.push(last.statusCode)
    }
    t.same(statuses.slice(0, 4), [422, 422, 422, 422], 'the first requests reach the service')
    t.same(statuses.slice(5), [429, 429, 429], 'then the IP is limited')
    t.same(answerOf(last!), { error: 'rate_limited', message: 'Too many requests. Wait a moment and try again.' })
    t.ok(last!.headers['retry-after'], 'Retry-After is set')
    const counted = ((await accountOf(h, 'alice'))?.failedAttempts ?? 0) - before
    t.equal(counted, statuses.filter((s) => s === 422).length, 'limited requests never reach the failure counter')

    // Another IP is not affected; the host's sign-in route has the same limit.
    const elsewhere = await postFrom(limited, client, '203.0.113.2', '/2fa/challenge', { code: '000000' }, { json: true })
    t.not(elsewhere.statusCode, 429, 'another IP is not limited')
    const logins = []
    for (let i = 0; i < 7; i++) logins.push((await postFrom(limited, limited.client(), '203.0.113.9', '/login', { username: 'alice', password: 'wrong' }, { json: true })).statusCode)
    t.equal(statusCounts(logins)[429], 2, 'POST /login is limited per IP too')
    await unlock('alice')
  })
})
