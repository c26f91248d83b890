// A code prompt allows five tries, however they arrive. The attacker review sent wrong codes in
// parallel on one pending session: each request read the count before any had written it, so
// all of them saw "attempts left: 4" and a guesser got many more than five tries per password;
// and a request finishing late wrote back the session it had read, bringing back a prompt that
// had just been used up. Here five parallel wrong codes are five counted attempts (each answer
// says a different number left), and afterwards the prompt is gone for good.
import t from 'tap'
import { answerOf } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, login } from '../fixtures/host.ts'
import { enrolled, PASSWORD, sameCookies, whoIs } from './support.ts'

t.test('five parallel wrong codes on one pending session use up its five attempts, and the prompt is gone', async (t) => {
  // The account lockout is set out of the way: what is under test is the prompt's own count.
  const host = await createHost(t, { twoFactor: { requireSignIn: true, lockoutThreshold: 20 } })
  const { manualKey } = await enrolled(host, 'alice')
  const client = host.client()
  t.match(answerOf(await login(client, 'alice', PASSWORD.alice!)), { state: 'pending' })
  const before = sameCookies(host, client)

  const answers = await Promise.all(Array.from({ length: 5 }, async () => await client.post('/2fa/challenge', { code: '000000' }, { json: true })))
  t.same(answers.map((a) => a.statusCode), [422, 422, 422, 422, 422], 'five refusals')
  const left = answers.map((a) => (JSON.parse(a.body) as { attemptsLeft?: number }).attemptsLeft)
  t.same([...left].sort((a, b) => (a ?? -1) - (b ?? -1)), [0, 1, 2, 3, 4], `attemptsLeft 4, 3, 2, 1, 0, each once (got ${JSON.stringify(left)})`)
  const last = answers.find((a) => JSON.parse(a.body).attemptsLeft === 0)
  t.match(last === undefined ? {} : answerOf(last), { error: 'invalid_code', next: '/login' }, 'the last one sends the client back to sign in')

  const after = await client.post('/2fa/challenge', { code: '000000' }, { json: true })
  t.equal(after.statusCode, 401, 'the next POST /2fa/challenge: 401, no prompt any more')
  t.match(answerOf(after), { error: 'second_factor_required', next: '/login' })
  const home = await client.get('/')
  t.equal(home.statusCode, 303, 'GET /: sent away…')
  t.equal(home.headers.location, '/login?returnTo=%2F', '…to the login page')
  t.equal((await client.get('/2fa/challenge', { json: true })).statusCode, 401, 'GET /2fa/challenge: no prompt')

  const right = await client.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  t.equal(right.statusCode, 401, 'the right code after that does not sign in')
  t.equal((await whoIs(client)).userId, null)
  const replayed = await before.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  t.equal(replayed.statusCode, 401, 'nor with the cookie as it was before the attempts')
  t.equal((await whoIs(before)).userId, null)

  const fresh = host.client()
  await login(fresh, 'alice', PASSWORD.alice!)
  t.equal((await fresh.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) }, { json: true })).statusCode, 200, 'a new password step gets a new prompt, and the code works there')
})

t.test('with the default lockout too, parallel wrong codes never sign in and leave no prompt behind', async (t) => {
  const host = await createHost(t)
  const { manualKey } = await enrolled(host, 'alice')
  const client = host.client()
  await login(client, 'alice', PASSWORD.alice!)
  const answers = await Promise.all(Array.from({ length: 8 }, async () => await client.post('/2fa/challenge', { code: '000000' }, { json: true })))
  for (const answer of answers) t.ok([401, 422, 423].includes(answer.statusCode), `refused (${answer.statusCode} ${JSON.parse(answer.body).error as string})`)
  const left = answers.map((a) => (JSON.parse(a.body) as { attemptsLeft?: number }).attemptsLeft).filter((n) => n !== undefined)
  t.equal(new Set(left).size, left.length, `no two answers say the same number of attempts left (${JSON.stringify(left)})`)
  t.ok(answers.filter((a) => a.statusCode === 422).length <= 5, 'at most five codes were looked at')
  const right = await client.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  t.not(right.statusCode, 200, 'the right code afterwards does not sign in')
  t.equal((await whoIs(client)).userId, null)
})
