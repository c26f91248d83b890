// An admin who signed in on a trusted browser (password, no code) has proven no factor in that
// session: the admin panel asks for a code (step-up) and then opens. It is not refused as if the
// admin had never set up 2FA, and it never opens on the trusted browser alone.
import t from 'tap'
import { answerOf } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, login } from '../fixtures/host.ts'
import { enrolled } from '../sign-in/support.ts'

t.test('a trusted browser gets the admin the step-up prompt, then the panel', async (t) => {
  const host = await createHost(t)
  const { client: admin, manualKey } = await enrolled(host, 'admin')
  await admin.post('/logout', {}, { json: true })

  t.equal(answerOf(await login(admin, 'admin', 'admin-password')).state, 'pending')
  const trusted = await admin.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms), trustDevice: 'true' }, { json: true })
  t.equal(trusted.statusCode, 200, 'signed in, and this browser trusted')
  host.clock.advance(60 * 60_000)
  await admin.post('/logout', {}, { json: true })
  t.equal(answerOf(await login(admin, 'admin', 'admin-password')).state, 'signed-in', 'the trusted browser skips the code')

  const json = await admin.get('/2fa/admin/users', { json: true })
  t.equal(json.statusCode, 401, 'the panel wants a code first')
  t.match(answerOf(json), { error: 'step_up_required', next: '/2fa/step-up' })
  const page = await admin.get('/2fa/admin/users')
  const prompt = page.statusCode === 303 ? await admin.get(String(page.headers.location)) : page
  t.match(prompt.body, /name="code"/, 'a browser gets the code prompt')
  t.notOk(host.events.some((e) => e.type === 'admin.denied'), 'it is a prompt, not a refusal')

  const fresh = await admin.post('/2fa/step-up', { code: codeFor(manualKey, host.clock.ms), returnTo: '/2fa/admin/users' }, { json: true })
  t.equal(fresh.statusCode, 200)
  t.equal((await admin.get('/2fa/admin/users', { json: true })).statusCode, 200, 'the panel opens once the code is proven')
})
