// A real authenticator: codes from `oathtool --totp -b <manual key>` (OATH Toolkit, RFC 6238)
// are accepted to confirm enrolment and to sign in. oathtool is told the test clock's time, so
// nothing waits for real time.
import { execFileSync } from 'node:child_process'
import t from 'tap'
import { createHarness, manualKeyFrom, passwordStep, PASSWORDS } from '../helpers/demo.ts'

function oathtool (manualKey: string, atMs: number): string {
  const key = manualKey.replace(/ /g, '')
  return execFileSync('oathtool', ['--totp', '-b', key, '--now', `@${Math.floor(atMs / 1000)}`], { encoding: 'utf8' }).trim()
}

t.test('oathtool codes confirm enrolment and sign in', async (t) => {
  const h = await createHarness(t)
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice)
  const manualKey = manualKeyFrom((await client.get('/2fa/setup')).body)

  const confirmCode = oathtool(manualKey, h.clock.ms)
  t.match(confirmCode, /^\d{6}$/, 'oathtool reads the key as shown (base32, spaces removed)')
  const confirm = await client.post('/2fa/setup/confirm', { code: confirmCode })
  t.equal(confirm.statusCode, 200, 'its code confirms enrolment')
  t.match(confirm.body, /Save your recovery codes/)
  await client.post('/2fa/setup/finish')

  for (const minutes of [1, 7, 60 * 24]) {
    h.clock.advance(minutes * 60_000)
    const signIn = h.client()
    await passwordStep(signIn, 'alice', PASSWORDS.alice)
    await signIn.get('/2fa/challenge')
    const answer = await signIn.post('/2fa/challenge', { code: oathtool(manualKey, h.clock.ms) })
    t.equal(answer.statusCode, 303, `${minutes} min later: its code signs in`)
    t.equal(answer.headers.location, '/')
  }

  const stale = h.client()
  await passwordStep(stale, 'alice', PASSWORDS.alice)
  await stale.get('/2fa/challenge')
  const old = await stale.post('/2fa/challenge', { code: oathtool(manualKey, h.clock.ms - 5 * 60_000) })
  t.equal(old.statusCode, 422, 'a code from 5 minutes ago is refused')
})
