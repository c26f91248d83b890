// The failed-code alert ("more than 3 failed codes in 5 minutes") can't be skipped by sending the
// codes at once. Each failure's event is stored before its count is taken, so of concurrent
// failures the last to count sees them all, and the once-per-window mark is taken in the database,
// so exactly one of them raises the alert, however slow the host's `onEvent` hook is (a slow hook
// used to let every request count before any had stored its event, and none saw enough). The
// burst also locks the account. Another burst in the same window raises nothing; one after the
// window raises it again.
import t from 'tap'
import { eq } from 'drizzle-orm'
import { accounts } from '../../plugin/db/schema.ts'
import type { TwoFactorAlert } from '../../plugin/index.ts'
import { answerOf, type Client } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, login, type Host } from '../fixtures/host.ts'

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

/** Browsers of the user at the code prompt. */
async function pendingBrowsers (host: Host, n: number, userId = 'bob'): Promise<Client[]> {
  const clients: Client[] = []
  for (let i = 0; i < n; i++) {
    const client = host.client()
    const answer = answerOf(await login(client, userId, `${userId}-password`))
    if (answer.state !== 'pending') throw new Error(`${userId} is not at the code prompt: ${String(answer.state)}`)
    clients.push(client)
  }
  return clients
}

/** A code that is wrong now (and not a drift match): the current code with its digits shifted. */
function wrongCode (manualKey: string, now: number): string {
  const right = codeFor(manualKey, now)
  return right.split('').map((d) => String((Number(d) + 5) % 10)).join('')
}

async function burst (host: Host, clients: Client[], manualKey: string): Promise<number[]> {
  const answers = await Promise.all(clients.map(async (client) => await client.post('/2fa/challenge', { code: wrongCode(manualKey, host.clock.ms) }, { json: true })))
  return answers.map((a) => a.statusCode).sort()
}

async function lockedUntil (host: Host, userId = 'bob'): Promise<Date | null> {
  return (await host.database.db.select().from(accounts).where(eq(accounts.userId, userId)))[0]?.lockedUntil ?? null
}

async function enrol (host: Host, userId: string): Promise<string> {
  const client = host.client()
  await login(client, userId, `${userId}-password`)
  const { manualKey } = answerOf(await client.get('/2fa/setup', { json: true })) as { manualKey: string }
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  if (confirm.statusCode !== 200) throw new Error(`confirm failed: ${confirm.statusCode}`)
  await client.post('/2fa/setup/finish', {}, { json: true })
  host.clock.advance(30_000)
  return manualKey
}

t.test('wrong codes sent at once, with a slow onEvent, raise exactly one alert per window and lock the account', async (t) => {
  const alerts: TwoFactorAlert[] = []
  const host = await createHost(t, {
    twoFactor: {
      alert: async (alert) => { alerts.push(alert) },
      onEvent: async () => { await sleep(50) }
    }
  })
  const manualKey = await enrol(host, 'bob')

  await t.test('the first burst: one alert, and the lock', async (t) => {
    const statuses = await burst(host, await pendingBrowsers(host, 5), manualKey)
    t.equal(statuses.length, 5)
    t.ok(statuses.every((s) => s === 422 || s === 423), `each refused: ${statuses.join(', ')}`)
    t.ok(statuses.includes(423), 'the last failure answers locked')
    t.equal(alerts.length, 1, 'exactly one alert')
    t.match(alerts[0], { userId: 'bob', windowMs: 5 * 60_000 })
    t.ok(alerts[0]!.failures > 3, `it counts more than the threshold (${alerts[0]!.failures})`)
    const until = await lockedUntil(host)
    t.ok(until !== null && until.getTime() > host.clock.ms, 'the account is locked')
    t.equal(host.events.filter((e) => e.type === 'challenge.failed' && e.userId === 'bob').length, 5, 'five failures recorded')
    t.equal(host.events.filter((e) => e.type === 'lockout.started' && e.userId === 'bob').length, 1, 'one lockout')
  })

  await t.test('another burst in the same window raises none', async (t) => {
    host.clock.advance(60_000)
    await host.app.twoFactor.unlock('bob', { actor: 'admin' })
    const failedBefore = host.events.filter((e) => e.type === 'challenge.failed' && e.userId === 'bob').length
    const statuses = await burst(host, await pendingBrowsers(host, 5), manualKey)
    t.ok(statuses.every((s) => s === 422 || s === 423), `each refused: ${statuses.join(', ')}`)
    t.equal(host.events.filter((e) => e.type === 'challenge.failed' && e.userId === 'bob').length, failedBefore + 5, 'five more failures counted')
    t.equal(alerts.length, 1, 'still the one alert')
    t.ok((await lockedUntil(host)) !== null, 'locked again')
  })

  await t.test('after the window a new burst raises one again', async (t) => {
    // Past the window of the alert (taken at the first burst) and of the second burst's failures.
    host.clock.advance(5 * 60_000 + 1000)
    await host.app.twoFactor.unlock('bob', { actor: 'admin' })
    const statuses = await burst(host, await pendingBrowsers(host, 5), manualKey)
    t.ok(statuses.every((s) => s === 422 || s === 423), `each refused: ${statuses.join(', ')}`)
    t.equal(alerts.length, 2, 'one more alert')
    t.match(alerts[1], { userId: 'bob' })
    t.ok(alerts[1]!.failures > 3 && alerts[1]!.failures <= 5, `it counts the failures in the new window only (${alerts[1]!.failures})`)
  })

  await t.test('five wrong codes at once from one browser: one alert, locked', async (t) => {
    const aliceKey = await enrol(host, 'alice')
    const [browser] = await pendingBrowsers(host, 1, 'alice')
    const statuses = await burst(host, [browser!, browser!, browser!, browser!, browser!], aliceKey)
    t.ok(statuses.every((s) => s === 422 || s === 423), `each refused: ${statuses.join(', ')}`)
    t.equal(alerts.filter((a) => a.userId === 'alice').length, 1, 'exactly one alert for alice')
    const until = await lockedUntil(host, 'alice')
    t.ok(until !== null && until.getTime() > host.clock.ms, 'locked')
  })
})
