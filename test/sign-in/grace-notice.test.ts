// While "required for everyone" is in its grace period, a user who chose "Skip for now" is told
// on every page of the host how long is left: `request.twoFactor.notice` gives the days and the
// way to set up, and `request.twoFactor.banner(reply)` the same as the plugin's partial. It says
// nothing to anyone else: a user who isn't asked, an exempt one, one who has set up since, or
// anyone once the grace is over.
import t from 'tap'
import { answerOf } from '../helpers/client.ts'
import { codeFor, TestClock } from '../helpers/demo.ts'
import { createHost, login, type Host } from '../fixtures/host.ts'
import { manualKeyOf, PASSWORD } from './support.ts'

const DAY = 24 * 60 * 60_000
const START = Date.UTC(2026, 10, 22, 12, 0, 0)
// Accounts a year old: the grace runs from when the policy was switched on.
const USERS = ['admin', 'alice', 'bob'].map((id) => ({ id, password: PASSWORD[id]!, role: id === 'admin' ? 'admin' : 'user', createdAt: new Date(START - 365 * DAY) }))
const options = () => ({ clock: new TestClock(START), users: USERS })

async function everyoneWithGrace (host: Host, graceDays: number): Promise<void> {
  const policy = await host.app.twoFactor.policy()
  await host.app.twoFactor.setPolicy({ ...policy, requireAll: true, graceDays }, { actor: 'cli' })
}

async function skipped (host: Host, userId: string) {
  const client = host.client()
  t.equal(answerOf(await login(client, userId, PASSWORD[userId]!)).state, 'pending-setup', `${userId} is asked to set up`)
  const skip = await client.post('/2fa/setup/skip', {}, { json: true })
  t.equal(answerOf(skip).state, 'signed-in', `${userId} skipped for now`)
  return client
}

t.test('a user who skipped during the grace period is told the days left and where to set up', async (t) => {
  const host = await createHost(t, options())
  await everyoneWithGrace(host, 7)
  const alice = await skipped(host, 'alice')

  t.same(answerOf(await alice.get('/', { json: true })).notice, { kind: 'grace', daysLeft: 7, setupPath: '/2fa/setup' })
  const banner = await alice.get('/banner')
  t.match(banner.body, /role="status"/, 'the banner is announced politely to screen readers')
  t.match(banner.body, /in 7 days/)
  t.match(banner.body, /href="\/2fa\/setup"/)

  // Days later, in a new session (the first one has long lapsed): one day left.
  host.clock.advance(6 * DAY + 60_000)
  const later = await skipped(host, 'alice')
  t.equal((answerOf(await later.get('/', { json: true })).notice as { daysLeft: number }).daysLeft, 1, 'the last day counts as one')
  t.match((await later.get('/banner')).body, /in 1 day\./, 'one day, in the singular')
  t.match((await later.get('/banner', { headers: { 'accept-language': 'de' } })).body, /in 1 Tag verlangt/, 'in the language of the request')

  // Within the same session, the grace ends: the notice goes with it.
  host.clock.advance(DAY)
  t.equal(answerOf(await later.get('/', { json: true })).notice, null, 'no notice once the grace is over')
  t.equal((await later.get('/banner')).body, '', 'and no banner')
})

t.test('nobody else gets the notice', async (t) => {
  const host = await createHost(t, options())
  const notAsked = host.client()
  t.equal(answerOf(await login(notAsked, 'bob', PASSWORD.bob!)).state, 'signed-in')
  t.equal(answerOf(await notAsked.get('/', { json: true })).notice, null, 'a user nothing requires')
  t.equal((await notAsked.get('/banner')).body, '')

  await everyoneWithGrace(host, 7)
  const alice = await skipped(host, 'alice')
  t.equal((answerOf(await alice.get('/', { json: true })).notice as { kind: string }).kind, 'grace')
  // Alice sets up 2FA from the banner's link, in this session.
  const manualKey = await manualKeyOf(alice)
  t.equal((await alice.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })).statusCode, 200)
  t.equal((await alice.post('/2fa/setup/finish', {}, { json: true })).statusCode, 200)
  t.equal(answerOf(await alice.get('/', { json: true })).notice, null, 'set up: nothing to say')
  t.equal((await alice.get('/banner')).body, '')

  const anonymous = host.client()
  t.equal(answerOf(await anonymous.get('/', { json: true })).notice, null, 'nobody signed in: no notice')
  t.equal((await anonymous.get('/banner')).body, '')
})
