// Every change to an account's second factor ends the account's other sessions, signed-in and
// half-signed-in alike: a session that was signed in under the old rules (without the factor, or
// with a factor that is gone) must not outlive the change, and a sign-in half-way through (at the
// code prompt or in the wizard) must not finish under them either. The session that made the
// change stays signed in; when an admin makes it, every session of the user ends (the admin's own
// session is not the user's). A host's password change ends the other sessions the same way,
// through `request.twoFactor.endOtherSessions()`.
import t from 'tap'
import { eq } from 'drizzle-orm'
import { sessions } from '../../plugin/db/schema.ts'
import { answerOf, type Client } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, PASSWORDS as DEMO_PASSWORDS, passwordStep } from '../helpers/demo.ts'
import { createHost, login, type Host, type HostUser } from '../fixtures/host.ts'

const USERS: HostUser[] = [
  { id: 'admin', password: 'admin-password', role: 'admin' },
  { id: 'alice', password: 'alice-password' },
  { id: 'bob', password: 'bob-password' },
  { id: 'carol', password: 'carol-password' },
  { id: 'dave', password: 'dave-password' }
]
const passwordOf = (userId: string): string => USERS.find((u) => u.id === userId)!.password

/** What a browser is, seen from the host's home page: signed in as whom, or sent to a prompt. */
async function stateOf (client: Client): Promise<string> {
  const home = await client.get('/', { json: true })
  const body = JSON.parse(home.body) as { userId?: string | null, state?: string, error?: string, next?: string }
  if (home.statusCode === 200) return body.state === 'signed-in' ? `signed-in:${body.userId}` : (body.state ?? 'unknown')
  return `${body.error ?? home.statusCode}:${body.next ?? ''}`
}

async function storedSessionsOf (host: Host, userId: string): Promise<number> {
  return (await host.database.db.select().from(sessions).where(eq(sessions.userId, userId))).length
}

/** Enrols the browser's account through the JSON wizard (from signed-in or from a forced setup). */
async function enrolJson (host: Host, client: Client): Promise<string> {
  const opened = await client.get('/2fa/setup', { json: true })
  const { manualKey } = answerOf(opened) as { manualKey: string }
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  if (confirm.statusCode !== 200) throw new Error(`confirm failed: ${confirm.statusCode} ${confirm.body}`)
  const finish = await client.post('/2fa/setup/finish', {}, { json: true })
  if (finish.statusCode !== 200) throw new Error(`finish failed: ${finish.statusCode} ${finish.body}`)
  host.clock.advance(30_000)
  return manualKey
}

/** A browser signed in with password and code. */
async function signedInWithCode (host: Host, userId: string, manualKey: string): Promise<Client> {
  const client = host.client()
  await login(client, userId, passwordOf(userId))
  const done = await client.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  if (done.statusCode !== 200) throw new Error(`sign-in failed: ${done.statusCode} ${done.body}`)
  host.clock.advance(30_000)
  return client
}

/** A browser past the password, at the code prompt (or in the forced wizard). */
async function halfSignedIn (host: Host, userId: string, expected: 'pending' | 'pending-setup'): Promise<Client> {
  const client = host.client()
  const answer = answerOf(await login(client, userId, passwordOf(userId)))
  if (answer.state !== expected) throw new Error(`${userId}: expected ${expected}, got ${String(answer.state)}`)
  return client
}

async function passwordOnly (host: Host, userId: string): Promise<Client> {
  const client = host.client()
  const answer = answerOf(await login(client, userId, passwordOf(userId)))
  if (answer.state !== 'signed-in') throw new Error(`${userId}: expected signed-in, got ${String(answer.state)}`)
  return client
}

t.test('changes to the second factor end the other sessions', async (t) => {
  const host = await createHost(t, { users: USERS })

  // The admin is required by default: two browsers in the forced wizard, one that skipped it.
  let adminKey = ''
  let admin: Client
  await t.test('the first enrolment ends the other sessions: signed-in and in the wizard', async (t) => {
    admin = await halfSignedIn(host, 'admin', 'pending-setup')
    const otherWizard = await halfSignedIn(host, 'admin', 'pending-setup')
    const skipped = await halfSignedIn(host, 'admin', 'pending-setup')
    t.equal((await skipped.post('/2fa/setup/skip', {}, { json: true })).statusCode, 200)
    t.equal(await stateOf(skipped), 'signed-in:admin', 'one browser skipped and is signed in')
    t.match(await stateOf(otherWizard), /^second_factor_required:\/2fa\/setup$/, 'one is in the wizard')

    adminKey = await enrolJson(host, admin)
    t.equal(await stateOf(admin), 'signed-in:admin', 'the enrolling browser is signed in')
    t.equal(await stateOf(skipped), 'anonymous', 'the browser signed in without the factor is not any more')
    t.equal(await stateOf(otherWizard), 'anonymous', 'the other wizard is gone')
    t.equal(await storedSessionsOf(host, 'admin'), 1, 'one stored session left')
    t.ok(host.events.some((e) => e.type === 'sessions.ended' && e.userId === 'admin' && e.details.reason === 'enrolled'), 'sessions.ended, reason enrolled')

    // A user nobody requires: a password-only browser ends when another one turns 2FA on.
    const first = await passwordOnly(host, 'dave')
    const second = await passwordOnly(host, 'dave')
    await enrolJson(host, first)
    t.equal(await stateOf(first), 'signed-in:dave')
    t.equal(await stateOf(second), 'anonymous', 'the password-only browser of dave ends')
  })

  await t.test('turning off ends the other sessions; the one that turned it off stays', async (t) => {
    const signedIn = await passwordOnly(host, 'alice')
    const key = await enrolJson(host, signedIn)
    const other = await signedInWithCode(host, 'alice', key)
    const atPrompt = await halfSignedIn(host, 'alice', 'pending')
    t.equal(await stateOf(other), 'signed-in:alice')
    t.match(await stateOf(atPrompt), /^second_factor_required:\/2fa\/challenge$/)

    const refused = await signedIn.post('/2fa/disable', { password: 'not-it' }, { json: true })
    t.equal(refused.statusCode, 422, 'a wrong password changes nothing…')
    t.equal(await stateOf(other), 'signed-in:alice', '…and ends nothing')

    const off = await signedIn.post('/2fa/disable', { password: passwordOf('alice') }, { json: true })
    t.equal(off.statusCode, 200)
    t.equal(await stateOf(signedIn), 'signed-in:alice', 'the session that turned it off stays signed in')
    t.equal(await stateOf(other), 'anonymous', 'the other signed-in browser ends')
    t.equal(await stateOf(atPrompt), 'anonymous', 'the browser at the code prompt ends')
    t.equal(await storedSessionsOf(host, 'alice'), 1)
    t.ok(host.events.some((e) => e.type === 'sessions.ended' && e.userId === 'alice' && e.details.reason === 'disabled'))
  })

  await t.test('an admin reset ends all of the user’s sessions; the admin stays signed in', async (t) => {
    const first = await passwordOnly(host, 'bob')
    const key = await enrolJson(host, first)
    const second = await signedInWithCode(host, 'bob', key)
    const atPrompt = await halfSignedIn(host, 'bob', 'pending')

    const reset = await admin.post('/2fa/admin/users/bob/reset', { reason: 'lost phone' }, { json: true })
    t.equal(reset.statusCode, 200)
    t.match(answerOf(reset), { id: 'bob', status: 'not-required' })
    t.equal(await stateOf(first), 'anonymous', 'the browser that enrolled ends too')
    t.equal(await stateOf(second), 'anonymous', 'the other signed-in browser ends')
    t.equal(await stateOf(atPrompt), 'anonymous', 'the browser at the code prompt ends')
    t.equal(await storedSessionsOf(host, 'bob'), 0, 'no stored session of bob is left')
    t.equal(await stateOf(admin), 'signed-in:admin', 'the admin stays signed in')
    t.ok(host.events.some((e) => e.type === 'sessions.ended' && e.userId === 'bob' && e.details.reason === 'reset'))
  })

  await t.test('lifting a requirement ends all of the user’s sessions; the admin stays signed in', async (t) => {
    const on = await admin.post('/2fa/admin/users/carol/required', { required: true }, { json: true })
    t.equal(on.statusCode, 200)
    const wizard = await halfSignedIn(host, 'carol', 'pending-setup')
    const key = await enrolJson(host, wizard)
    const second = await signedInWithCode(host, 'carol', key)
    const atPrompt = await halfSignedIn(host, 'carol', 'pending')
    const inWizardBefore = await storedSessionsOf(host, 'carol')
    t.equal(inWizardBefore, 3)

    const off = await admin.post('/2fa/admin/users/carol/required', { required: false }, { json: true })
    t.equal(off.statusCode, 200)
    t.match(answerOf(off), { id: 'carol', required: false, status: 'not-required' })
    t.equal(await stateOf(wizard), 'anonymous')
    t.equal(await stateOf(second), 'anonymous')
    t.equal(await stateOf(atPrompt), 'anonymous')
    t.equal(await storedSessionsOf(host, 'carol'), 0)
    t.equal(await stateOf(admin), 'signed-in:admin', 'the admin stays signed in')
    t.ok(host.events.some((e) => e.type === 'sessions.ended' && e.userId === 'carol' && e.details.reason === 'requirement_lifted'))
    t.ok(adminKey)
  })
})

t.test('the demo app’s password change ends the other sessions, signed-in and at the code prompt', async (t) => {
  const h = await createHarness(t)
  const { client: first, manualKey } = await enrol(h, 'alice', DEMO_PASSWORDS.alice)
  const second = h.client()
  await passwordStep(second, 'alice', DEMO_PASSWORDS.alice)
  await second.get('/2fa/challenge')
  t.equal((await second.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })).headers.location, '/', 'a second browser signed in')
  h.clock.advance(30_000)
  const atPrompt = h.client()
  await passwordStep(atPrompt, 'alice', DEMO_PASSWORDS.alice)
  await atPrompt.get('/2fa/challenge')

  await first.get('/', { json: true })
  const refused = await first.post('/password', { currentPassword: 'wrong-password-1', newPassword: 'a-brand-new-password' }, { json: true })
  t.equal(refused.statusCode, 422, 'a wrong current password changes nothing')
  t.equal((await second.get('/', { json: true })).statusCode, 200, 'and ends nothing')

  const changed = await first.post('/password', { currentPassword: DEMO_PASSWORDS.alice, newPassword: 'a-brand-new-password' }, { json: true })
  t.equal(changed.statusCode, 200)
  t.match(JSON.parse(changed.body), { changed: true, otherSessionsEnded: 2 })
  const home = await first.get('/', { json: true })
  t.equal(home.statusCode, 200, 'the session that changed it stays signed in')
  t.match(JSON.parse(home.body), { user: { id: 'alice' } })
  const secondHome = await second.get('/', { json: true })
  t.equal(secondHome.statusCode, 303, 'the other signed-in browser is sent to the login')
  t.equal(secondHome.headers.location, '/login')
  // The code prompt is gone: a right code no longer finishes that sign-in.
  h.clock.advance(30_000)
  const prompt = await atPrompt.get('/2fa/challenge', { json: true })
  t.equal(prompt.statusCode, 401, 'the code prompt has lapsed')
  t.match(JSON.parse(prompt.body), { error: 'second_factor_required', next: '/login' })
  const late = await atPrompt.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) }, { json: true })
  t.equal(late.statusCode, 401, 'the sign-in begun with the old password can’t finish')
  t.match(JSON.parse(late.body), { error: 'second_factor_required' })
  t.equal((await atPrompt.get('/', { json: true })).statusCode, 303, 'nor is that browser signed in')
  t.ok(h.events.some((e) => e.type === 'sessions.ended' && e.userId === 'alice' && e.details.reason === 'host' && e.details.count === 2))
})
