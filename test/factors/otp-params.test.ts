// Rule: algorithm, digits and period are stored with each enrolment (changing the options affects new enrolments only), and a right code whose step was already used is refused as "This code was just used; wait for the next one.", counted as a failure.
//
// Tested at the HTTP level: two hosts on one database (one clock), the second with other code
// options, as a host that changes its options over time would be.
import t from 'tap'
import { eq } from 'drizzle-orm'
import { base32Decode } from '../../plugin/core/base32.ts'
import { hotp, timeStep, type TotpAlgorithm } from '../../plugin/core/totp.ts'
import { accounts } from '../../plugin/db/schema.ts'
import { answerOf, type Client } from '../helpers/client.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { manualKeyFrom } from '../helpers/demo.ts'
import { createHost, login, type Host, type HostUser } from '../fixtures/host.ts'

const USERS: HostUser[] = ['alice', 'bob', 'carol', 'dave', 'erin'].map((id) => ({ id, password: `${id}-password` }))
const passwordOf = (id: string): string => `${id}-password`
const REPLAYED = 'This code was just used; wait for the next one.'

interface Params { secret: Buffer, algorithm: TotpAlgorithm, digits: number, period: number }

/** What an authenticator reads from the otpauth URI. */
function paramsFromUri (uri: string): Params {
  const url = new URL(uri)
  const q = url.searchParams
  return { secret: base32Decode(q.get('secret')!), algorithm: (q.get('algorithm') ?? 'SHA1') as TotpAlgorithm, digits: Number(q.get('digits') ?? 6), period: Number(q.get('period') ?? 30) }
}

function code (p: Params, atMs: number, digits = p.digits): string {
  return hotp(p.secret, timeStep(atMs, p.period), p.algorithm, digits)
}

async function whoIs (client: Client): Promise<string | null> {
  const home = await client.get('/', { json: true })
  return home.statusCode === 200 ? (JSON.parse(home.body) as { userId: string | null }).userId : null
}

async function atPrompt (h: Host, id: string): Promise<Client> {
  const client = h.client()
  const state = answerOf(await login(client, id, passwordOf(id))).state
  if (state !== 'pending') throw new Error(`${id}: ${String(state)}`)
  return client
}

/** Enrols the (signed-in, not required) user through the JSON wizard; returns what the setup showed. */
async function openWizard (h: Host, id: string): Promise<{ client: Client, setup: Record<string, unknown> }> {
  const client = h.client()
  if (answerOf(await login(client, id, passwordOf(id))).state !== 'signed-in') throw new Error(id)
  const setup = answerOf(await client.get('/2fa/setup', { json: true }))
  return { client, setup }
}

const database = await createTestDatabase(t)
const a = await createHost(t, { database, users: USERS })
const b = await createHost(t, { database, users: USERS, clock: a.clock, twoFactor: { digits: 8 } })

t.test('digits are the enrolment’s: an old 6-digit authenticator keeps working where new enrolments get 8', async (t) => {
  // alice enrols on A (the default: 6 digits).
  const { client: aliceFirst, setup: aliceSetup } = await openWizard(a, 'alice')
  t.equal(aliceSetup.digits, 6)
  const alice = paramsFromUri(String(aliceSetup.otpauthUri))
  t.equal(alice.digits, 6)
  t.equal((await aliceFirst.post('/2fa/setup/confirm', { code: code(alice, a.clock.ms) }, { json: true })).statusCode, 200)
  await aliceFirst.post('/2fa/setup/finish', {}, { json: true })
  a.clock.advance(30_000)

  // On B (digits: 8), alice's authenticator still shows 6 digits, and they sign her in.
  const onB = await atPrompt(b, 'alice')
  t.match(answerOf(await onB.get('/2fa/challenge', { json: true })), { state: 'pending', digits: 6 }, 'B’s prompt asks alice for 6 digits')
  t.match((await onB.get('/2fa/challenge')).body, /maxlength="8"/, '(the page’s field fits 6 digits and two spaces)')
  const eight = await onB.post('/2fa/challenge', { code: code(alice, a.clock.ms, 8) }, { json: true })
  t.equal(eight.statusCode, 422, 'an 8-digit code for her 6-digit authenticator: refused')
  t.equal(JSON.parse(eight.body).error, 'invalid_input')
  const six = await onB.post('/2fa/challenge', { code: code(alice, a.clock.ms) }, { json: true })
  t.equal(six.statusCode, 200, 'her 6-digit code signs her in on B')
  t.equal(await whoIs(onB), 'alice')
  a.clock.advance(30_000)

  // bob enrols on B: 8 digits, in the URI, the JSON and the page.
  const { client: bobClient, setup: bobSetup } = await openWizard(b, 'bob')
  t.equal(bobSetup.digits, 8, 'a new enrolment on B: 8 digits')
  const bob = paramsFromUri(String(bobSetup.otpauthUri))
  t.match(String(bobSetup.otpauthUri), /[?&]digits=8(&|$)/, 'the otpauth URI says digits=8')
  t.equal(bob.algorithm, 'SHA1')
  t.equal(bob.period, 30)
  const page = await bobClient.get('/2fa/setup')
  t.same(base32Decode(manualKeyFrom(page.body)), bob.secret, 'the manual key is the URI’s secret')
  const sixForBob = await bobClient.post('/2fa/setup/confirm', { code: code(bob, a.clock.ms, 6) }, { json: true })
  t.equal(sixForBob.statusCode, 422, 'confirming with 6 digits: refused')
  t.equal(await (await a.database.db.select().from(accounts).where(eq(accounts.userId, 'bob')))[0]?.secret ?? null, null, 'nothing enrolled')
  const fromManualKey: Params = { ...bob, secret: base32Decode(manualKeyFrom(page.body)) }
  const confirmed = await bobClient.post('/2fa/setup/confirm', { code: code(fromManualKey, a.clock.ms) }, { json: true })
  t.equal(confirmed.statusCode, 200, 'confirming with the 8-digit code of the manual key')
  await bobClient.post('/2fa/setup/finish', {}, { json: true })
  a.clock.advance(30_000)
  const stored = (await a.database.db.select().from(accounts).where(eq(accounts.userId, 'bob')))[0]!
  t.match(stored, { algorithm: 'SHA1', digits: 8, period: 30 }, 'stored with the enrolment')

  for (const [name, h] of [['B', b], ['A (whose option is 6)', a]] as const) {
    const wrongLength = await atPrompt(h, 'bob')
    t.match(answerOf(await wrongLength.get('/2fa/challenge', { json: true })), { digits: 8 }, `${name}: the prompt asks bob for 8 digits`)
    const refused = await wrongLength.post('/2fa/challenge', { code: code(bob, a.clock.ms, 6) }, { json: true })
    t.equal(refused.statusCode, 422, `${name}: 6 digits for bob: refused`)
    t.equal(await whoIs(wrongLength), null)
    const right = await wrongLength.post('/2fa/challenge', { code: code(bob, a.clock.ms) }, { json: true })
    t.equal(right.statusCode, 200, `${name}: bob’s 8-digit code signs him in`)
    a.clock.advance(30_000)
    const form = await atPrompt(h, 'bob')
    t.equal((await form.post('/2fa/challenge', { code: `${code(bob, a.clock.ms).slice(0, 4)} ${code(bob, a.clock.ms).slice(4)}` })).statusCode, 303, `${name}: the page form takes "1234 5678"`)
    a.clock.advance(30_000)
  }
})

t.test('algorithm and period are the enrolment’s too', async (t) => {
  const c = await createHost(t, { database, users: USERS, clock: a.clock, twoFactor: { algorithm: 'SHA256', period: 60 } })
  const { client, setup } = await openWizard(c, 'carol')
  const carol = paramsFromUri(String(setup.otpauthUri))
  t.match(carol, { algorithm: 'SHA256', period: 60, digits: 6 }, 'the URI: SHA256, 60 s')
  t.equal((await client.post('/2fa/setup/confirm', { code: code(carol, a.clock.ms) }, { json: true })).statusCode, 200)
  await client.post('/2fa/setup/finish', {}, { json: true })
  a.clock.advance(60_000)

  const onA = await atPrompt(a, 'carol')
  const sha1 = await onA.post('/2fa/challenge', { code: hotp(carol.secret, timeStep(a.clock.ms, 30), 'SHA1', 6) }, { json: true })
  t.equal(sha1.statusCode, 422, 'on A (SHA1, 30 s): a SHA1/30 s code of her secret is refused')
  const right = await onA.post('/2fa/challenge', { code: code(carol, a.clock.ms) }, { json: true })
  t.equal(right.statusCode, 200, 'her SHA256/60 s code signs her in on A')
  a.clock.advance(60_000)
})

t.test('a right code whose step was just used: "This code was just used; wait for the next one.", counted as a failure', async (t) => {
  const { client, setup } = await openWizard(a, 'dave')
  const dave = paramsFromUri(String(setup.otpauthUri))
  const confirmedWith = code(dave, a.clock.ms)
  t.equal((await client.post('/2fa/setup/confirm', { code: confirmedWith }, { json: true })).statusCode, 200)
  await client.post('/2fa/setup/finish', {}, { json: true })
  const failuresOf = async () => (await a.database.db.select().from(accounts).where(eq(accounts.userId, 'dave')))[0]!.failedAttempts

  // The code that confirmed the enrolment is used too.
  const json = await atPrompt(a, 'dave')
  const wrong = await json.post('/2fa/challenge', { code: '000000' === confirmedWith ? '111111' : '000000' }, { json: true })
  t.equal(wrong.statusCode, 422)
  const leftAfterWrong = (JSON.parse(wrong.body) as { attemptsLeft: number }).attemptsLeft
  t.equal(leftAfterWrong, 4, 'a wrong code: 4 attempts left')
  const failuresBefore = await failuresOf()
  const replayed = await json.post('/2fa/challenge', { code: confirmedWith }, { json: true })
  t.equal(replayed.statusCode, 422, 'the code that confirmed the enrolment, again: refused')
  t.match(JSON.parse(replayed.body), { error: 'invalid_code', message: REPLAYED, attemptsLeft: 3 }, 'with the message, and one attempt fewer left')
  t.equal(await failuresOf(), failuresBefore + 1, 'counted against the account')
  t.equal(await whoIs(json), null, 'not signed in')
  t.ok(a.events.some((e) => e.type === 'challenge.failed' && e.userId === 'dave' && e.details.reason === 'replayed'), 'audited as a replay')

  a.clock.advance(30_000)
  const now = code(dave, a.clock.ms)
  const first = await atPrompt(a, 'dave')
  t.equal((await first.post('/2fa/challenge', { code: now }, { json: true })).statusCode, 200, 'a fresh code signs in once')

  const form = await atPrompt(a, 'dave')
  await form.get('/2fa/challenge')
  const page = await form.post('/2fa/challenge', { code: now })
  t.equal(page.statusCode, 422, 'the same code in another browser (page): refused')
  t.match(page.body, REPLAYED, 'the page says it was just used')
  t.match(String(page.headers['content-type']), /text\/html/)
  const htmx = await form.post('/2fa/challenge', { code: now }, { htmx: true })
  t.equal(htmx.statusCode, 422, 'htmx: refused')
  t.match(htmx.body, REPLAYED, 'the fragment says it too')
  const left = answerOf(await form.get('/2fa/challenge', { json: true })) as { attemptsLeft: number }
  t.equal(left.attemptsLeft, 3, 'each replay cost an attempt')
  const previous = await form.post('/2fa/challenge', { code: code(dave, a.clock.ms - 30_000) }, { json: true })
  t.match(JSON.parse(previous.body), { message: REPLAYED }, 'the step before a used one (still in the window) is "just used" too')
  t.equal(await whoIs(form), null)

  a.clock.advance(30_000)
  t.equal((await form.post('/2fa/challenge', { code: code(dave, a.clock.ms) }, { json: true })).statusCode, 200, 'the next code signs in')
})

t.test('step-up: a just-used code gets the same message', async (t) => {
  const { client, setup } = await openWizard(a, 'erin')
  const erin = paramsFromUri(String(setup.otpauthUri))
  t.equal((await client.post('/2fa/setup/confirm', { code: code(erin, a.clock.ms) }, { json: true })).statusCode, 200)
  await client.post('/2fa/setup/finish', {}, { json: true })
  a.clock.advance(30_000)
  const signedIn = await atPrompt(a, 'erin')
  const used = code(erin, a.clock.ms)
  t.equal((await signedIn.post('/2fa/challenge', { code: used }, { json: true })).statusCode, 200)
  a.clock.advance(11 * 60_000)
  t.equal((await signedIn.get('/export', { json: true })).statusCode, 401, 'eleven minutes on, /export asks for a code')
  const stepUp = await signedIn.post('/2fa/step-up', { code: hotp(erin.secret, timeStep(a.clock.ms, 30) - 22, 'SHA1', 6), returnTo: '/export' }, { json: true })
  t.equal(stepUp.statusCode, 422, '(an old code: refused)')
  const other = await atPrompt(a, 'erin')
  const fresh = code(erin, a.clock.ms)
  t.equal((await other.post('/2fa/challenge', { code: fresh }, { json: true })).statusCode, 200)
  const replayed = await signedIn.post('/2fa/step-up', { code: fresh, returnTo: '/export' }, { json: true })
  t.equal(replayed.statusCode, 422, 'the code another browser just used: refused at step-up')
  t.match(JSON.parse(replayed.body), { message: REPLAYED })
  t.equal((await signedIn.get('/export', { json: true })).statusCode, 401, 'still no step-up')
})
