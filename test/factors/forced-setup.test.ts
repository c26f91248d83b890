// Required but not enrolled: the wizard opens at sign-in; "Skip for now" only
// where policy allows, logged, and the wizard returns at the next sign-in. The host's
// password-lockout counter is cleared only when sign-in completes.
import t from 'tap'
import { eq } from 'drizzle-orm'
import { demoUsers } from '../../demo-app/schema.ts'
import { codeFor, createHarness, manualKeyFrom, PASSWORDS, passwordStep } from '../helpers/demo.ts'

t.test('an admin is sent to the wizard and may skip while policy allows', async (t) => {
  const h = await createHarness(t)
  const client = h.client()
  const login = await passwordStep(client, 'admin', PASSWORDS.admin)
  t.equal(login.headers.location, '/2fa/setup')
  t.ok(h.events.some((e) => e.type === 'wizard.shown' && e.userId === 'admin'), 'wizard.shown audited')
  t.equal((await client.get('/')).headers.location, '/2fa/setup', 'gated until set up or skipped')
  const setup = await client.get('/2fa/setup')
  t.match(setup.body, /Skip for now/)
  t.match(setup.body, /Your account needs two-factor authentication/)
  const skip = await client.post('/2fa/setup/skip')
  t.equal(skip.statusCode, 303)
  t.equal(skip.headers.location, '/')
  t.equal((await client.get('/')).statusCode, 200, 'signed in without 2FA this time')
  t.ok(h.events.some((e) => e.type === 'wizard.skipped' && e.userId === 'admin'), 'the skip is audited')

  await client.post('/logout')
  const again = h.client()
  t.equal((await passwordStep(again, 'admin', PASSWORDS.admin)).headers.location, '/2fa/setup', 'the wizard returns at the next sign-in')
})

t.test('no skip when policy forbids it; enrolling completes the sign-in', async (t) => {
  const h = await createHarness(t, { app: { twoFactor: { allowSkip: false } } })
  const client = h.client()
  await client.get('/login')
  await client.post('/login', { username: 'admin', password: PASSWORDS.admin, returnTo: '/admin' })
  const setup = await client.get('/2fa/setup')
  t.notMatch(setup.body, /Skip for now/, 'no skip offered')
  const skip = await client.post('/2fa/setup/skip', {}, { json: true })
  t.equal(skip.statusCode, 409)
  t.equal(JSON.parse(skip.body).error, 'not_allowed_by_policy')
  t.equal((await client.get('/')).headers.location, '/2fa/setup', 'still pending setup')

  const manualKey = manualKeyFrom((await client.get('/2fa/setup')).body)
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, h.clock.ms) }, { htmx: true })
  t.equal(confirm.statusCode, 200)
  t.match(confirm.body, /^\s*<section id="tf-setup"/, 'htmx gets the partial…')
  t.notMatch(confirm.body, /<html/, '…not a page')
  t.match(confirm.body, /recovery-codes\.txt/)
  t.equal(confirm.headers['cache-control'], 'no-store')
  const finish = await client.post('/2fa/setup/finish', {}, { htmx: true })
  t.equal(finish.headers['hx-redirect'], '/admin', 'back to returnTo')
  t.equal((await client.get('/admin')).statusCode, 200)
  t.ok(h.events.some((e) => e.type === 'enrolment.completed' && e.userId === 'admin'))

  h.clock.advance(30_000)
  const next = h.client()
  t.equal((await passwordStep(next, 'admin', PASSWORDS.admin)).headers.location, '/2fa/challenge', 'from now on the code is asked')
})

t.test('the host password-lockout counter is cleared only once sign-in completes', async (t) => {
  const h = await createHarness(t)
  const failedLogins = async () => (await h.database.db.select().from(demoUsers).where(eq(demoUsers.id, 'admin')))[0]!.failedLogins
  const client = h.client()
  await client.get('/login')
  for (let i = 0; i < 3; i++) await client.post('/login', { username: 'admin', password: 'wrong' })
  t.equal(await failedLogins(), 3)
  await client.post('/login', { username: 'admin', password: PASSWORDS.admin })
  t.equal(await failedLogins(), 3, 'not cleared after the password alone')
  await client.get('/2fa/setup')
  await client.post('/2fa/setup/skip')
  t.equal(await failedLogins(), 0, 'cleared once signed in')
})

t.test('starting the wizard again keeps an unexpired pending secret and replaces an expired one', async (t) => {
  const h = await createHarness(t)
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice)
  const first = manualKeyFrom((await client.get('/2fa/setup')).body)
  h.clock.advance(10 * 60_000)
  t.equal(manualKeyFrom((await client.get('/2fa/setup')).body), first, 'resumed within 15 minutes')
  h.clock.advance(6 * 60_000)
  const late = await client.post('/2fa/setup/confirm', { code: codeFor(first, h.clock.ms) })
  t.equal(late.statusCode, 422, 'an expired pending secret is not confirmed')
  const second = manualKeyFrom(late.body)
  t.not(second, first, 'a fresh secret is shown')
  t.equal((await client.post('/2fa/setup/confirm', { code: codeFor(second, h.clock.ms) })).statusCode, 200)
})
