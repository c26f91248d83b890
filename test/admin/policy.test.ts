// The policy form and what it does to sign-in: "require for everyone" is refused
// while the acting admin has no 2FA; once on, users get the wizard with "Skip for now" and the
// days left during grace, and no skip after it; exempt roles, required roles and allowSkip.
import t from 'tap'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep, type Harness } from '../helpers/demo.ts'
import type { Client } from '../helpers/client.ts'

const DAY = 24 * 60 * 60 * 1000
const USERS = [
  { username: 'admin', password: PASSWORDS.admin, role: 'admin' },
  { username: 'alice', password: PASSWORDS.alice },
  { username: 'bob', password: PASSWORDS.bob },
  { username: 'carol', password: 'carol-password-123', role: 'finance' },
  { username: 'dave', password: 'dave-password-123', role: 'contractor' }
]
const PASSWORD: Record<string, string> = Object.fromEntries(USERS.map((u) => [u.username, u.password]))

/** Signs in with the password and opens the wizard; returns the wizard page. */
async function wizardFor (h: Harness, username: string): Promise<{ client: Client, body: string, location: string | undefined }> {
  const client = h.client()
  const login = await passwordStep(client, username, PASSWORD[username]!)
  const location = login.headers.location as string | undefined
  const body = location === '/2fa/setup' ? (await client.get('/2fa/setup')).body : ''
  return { client, body, location }
}

async function statusOf (admin: Client, username: string) {
  const list = JSON.parse((await admin.get(`/2fa/admin/users?q=${username}`, { json: true })).body)
  return list.users.find((u: { id: string }) => u.id === username)
}

t.test('policy', async (t) => {
  const h = await createHarness(t, { users: USERS })

  let admin: Client
  let adminKey = ''
  await t.test('"require for everyone" is refused while the acting admin has no 2FA', async (t) => {
    const skipped = await wizardFor(h, 'admin')
    t.equal(skipped.location, '/2fa/setup')
    t.match(skipped.body, /Skip for now/, 'admins may skip for now (allowSkip)')
    await skipped.client.post('/2fa/setup/skip')
    // A required admin who skipped is signed in without a second factor: not into the panel.
    const panel = await skipped.client.get('/2fa/admin/policy', { json: true })
    t.equal(panel.statusCode, 403)
    t.match(JSON.parse(panel.body), { error: 'second_factor_required', next: '/2fa/setup' })

    // An admin whose own account is not required may use the panel after the password alone.
    await h.app.twoFactor.setRequired('admin', false, { actor: 'test' })
    admin = h.client()
    t.equal((await passwordStep(admin, 'admin', PASSWORDS.admin)).headers.location, '/', 'password only')

    const form = await admin.get('/2fa/admin/policy')
    t.equal(form.statusCode, 200)
    t.match(form.body, /You haven’t set up two-factor yourself yet/, 'the form says so before anyone tries')
    t.match(form.body, /hx-post="\/2fa\/admin\/policy" hx-target="#tf-admin-policy" hx-swap="outerHTML"/, 'saved inline')

    const refused = await admin.post('/2fa/admin/policy', { requireAll: 'true', graceDays: '7', allowSkip: 'true' }, { htmx: true })
    t.equal(refused.statusCode, 409)
    t.match(refused.body, /^\s*<section id="tf-admin-policy"/, 'htmx gets the form back…')
    t.match(refused.body, /role="alert" aria-live="assertive" tabindex="-1">Set up two-factor authentication for your own account first/, '…saying why')
    t.match(refused.body, /name="requireAll" value="true" checked/, 'with what was submitted')
    const json = await admin.post('/2fa/admin/policy', { requireAll: true }, { json: true })
    t.equal(json.statusCode, 409)
    t.equal(JSON.parse(json.body).error, 'not_allowed_by_policy')
    t.equal(JSON.parse((await admin.get('/2fa/admin/policy', { json: true })).body).requireAll, false, 'nothing saved')
    t.notOk(h.events.some((e) => e.type === 'policy.changed'), 'no policy.changed event')

    const other = await admin.post('/2fa/admin/policy', { graceDays: '10', allowSkip: 'true' }, { htmx: true })
    t.equal(other.statusCode, 200, 'other settings may still be changed')
    t.match(other.body, /Policy saved\./)
  })

  await t.test('bad input is a 422 naming the field', async (t) => {
    for (const [body, message] of [
      [{ graceDays: '-1' }, /grace period is a whole number of days/],
      [{ graceDays: '1000' }, /grace period/],
      [{ graceDays: 'soon' }, /grace period/],
      [{ requiredRoles: 'ok, <script>' }, /Role names are/],
      [{ requireAll: 'perhaps' }, /requireAll must be true or false/]
    ] as const) {
      const answer = await admin.post('/2fa/admin/policy', body, { htmx: true })
      t.equal(answer.statusCode, 422, JSON.stringify(body))
      t.match(answer.body, message)
    }
    const json = await admin.post('/2fa/admin/policy', { requiredRoles: ['finance', 3] }, { json: true })
    t.equal(json.statusCode, 422, 'a JSON list holds role names only')
    t.equal(JSON.parse(json.body).error, 'invalid_input')
  })

  await t.test('an enrolled admin switches it on; the grace period starts now', async (t) => {
    const enrolled = await enrol(h, 'admin', PASSWORDS.admin)
    admin = enrolled.client
    adminKey = enrolled.manualKey
    await admin.get('/2fa/admin/policy')
    const saved = await admin.post('/2fa/admin/policy', {
      requireAll: 'true', graceDays: '7', exemptRoles: 'contractor', requiredRoles: 'finance', allowSkip: 'true'
    }, { htmx: true })
    t.equal(saved.statusCode, 200)
    t.match(saved.body, /Required for everyone since/)
    const policy = JSON.parse((await admin.get('/2fa/admin/policy', { json: true })).body)
    t.match(policy, { requireAll: true, graceDays: 7, exemptRoles: ['contractor'], requiredRoles: ['finance'], allowSkip: true })
    t.equal(policy.requireAllSince, new Date(h.clock.ms).toISOString())
    const event = h.events.filter((e) => e.type === 'policy.changed').at(-1)
    t.match(event, { actor: 'admin', details: { before: { requireAll: false }, after: { requireAll: true } } }, 'audited with before and after')

    const forged = await admin.post('/2fa/admin/policy', { requireAllSince: '2000-01-01T00:00:00.000Z' }, { json: true })
    t.equal(forged.statusCode, 200)
    t.equal(JSON.parse(forged.body).requireAllSince, policy.requireAllSince, 'a client can’t move the start of grace')
  })

  await t.test('during grace: the wizard offers "Skip for now" with the days left', async (t) => {
    h.clock.advance(3 * DAY)
    const alice = await wizardFor(h, 'alice')
    t.equal(alice.location, '/2fa/setup', 'everyone must enrol now')
    t.match(alice.body, /Skip for now/)
    t.match(alice.body, /4 days left/)
    t.match(await statusOf(admin, 'alice'), { status: 'awaiting', requiredBy: 'required: everyone, 4 days left' })
    const skip = await alice.client.post('/2fa/setup/skip')
    t.equal(skip.headers.location, '/', 'skipping signs her in this time')
    t.match(h.events.filter((e) => e.type === 'wizard.skipped').at(-1), { userId: 'alice', details: { graceDaysLeft: 4 } })

    const dave = await wizardFor(h, 'dave')
    t.equal(dave.location, '/', 'an exempt role is not asked')
    t.match(await statusOf(admin, 'dave'), { status: 'not-required', requiredBy: null })

    const carol = await wizardFor(h, 'carol')
    t.match(carol.body, /4 days left/, 'a required role may skip while allowSkip and grace both allow it')
    t.match(await statusOf(admin, 'carol'), { requiredBy: 'required: role finance; required: everyone, 4 days left' })
  })

  await t.test('after grace: no skip, and skipping anyway is refused', async (t) => {
    h.clock.advance(4 * DAY)
    const alice = await wizardFor(h, 'alice')
    t.equal(alice.location, '/2fa/setup')
    t.notMatch(alice.body, /Skip for now/, 'no skip offered')
    const skip = await alice.client.post('/2fa/setup/skip', {}, { json: true })
    t.equal(skip.statusCode, 409)
    t.equal(JSON.parse(skip.body).error, 'not_allowed_by_policy')
    t.match(await statusOf(admin, 'alice'), { requiredBy: 'required: everyone' })

    const awaiting = JSON.parse((await admin.get('/2fa/admin/users?status=awaiting', { json: true })).body)
    t.same(awaiting.users.map((u: { id: string }) => u.id).sort(), ['alice', 'bob', 'carol'], 'the awaiting filter follows the policy (roles included)')
    t.equal(awaiting.total, 3)
  })

  await t.test('a plain form post: unticked boxes mean off; back to the form', async (t) => {
    // Days have passed since the admin's last code: admin mode asks for a fresh one first.
    const stale = await admin.post('/2fa/admin/policy', { graceDays: '7' }, { json: true })
    t.equal(stale.statusCode, 401)
    t.match(JSON.parse(stale.body), { error: 'step_up_required', next: '/2fa/step-up' })
    await admin.get('/2fa/step-up?returnTo=/2fa/admin/policy')
    const fresh = await admin.post('/2fa/step-up', { code: codeFor(adminKey, h.clock.ms), returnTo: '/2fa/admin/policy' })
    t.equal(fresh.headers.location, '/2fa/admin/policy', 'a code at the step-up prompt, and back')
    await admin.get('/2fa/admin/policy')
    const saved = await admin.post('/2fa/admin/policy', { graceDays: '7', requiredRoles: 'finance', exemptRoles: '' })
    t.equal(saved.statusCode, 303)
    t.equal(saved.headers.location, '/2fa/admin/policy')
    const policy = JSON.parse((await admin.get('/2fa/admin/policy', { json: true })).body)
    t.match(policy, { requireAll: false, requireAllSince: null, allowSkip: false, requiredRoles: ['finance'], exemptRoles: [] })

    const carol = await wizardFor(h, 'carol')
    t.equal(carol.location, '/2fa/setup', 'the finance role still requires carol')
    t.notMatch(carol.body, /Skip for now/, 'without allowSkip a role requirement can’t be skipped')
    const alice = await wizardFor(h, 'alice')
    t.equal(alice.location, '/', 'with "everyone" off, alice is signed in at once')
  })
})
