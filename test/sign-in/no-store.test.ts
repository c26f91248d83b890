// No answer that depends on the session may be cached. The attacker review found plugin answers
// without `Cache-Control: no-store` (refusals, redirects, some admin fragments): a shared cache or
// the browser's back button could then show one user's secret, recovery codes or admin data, or
// another session's CSRF token, to the next person. Every page, htmx fragment and JSON answer of
// the plugin, and every error and redirect it answers with, says `no-store`; only its static
// assets (versioned URLs, the same for everyone) are cacheable.
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { Client } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, DEFAULT_USERS, login } from '../fixtures/host.ts'
import { enrolled, PASSWORD } from './support.ts'

type Shape = 'page' | 'htmx' | 'json'
const SHAPES: Shape[] = ['page', 'htmx', 'json']
const shapeOptions = (shape: Shape) => shape === 'json' ? { json: true } : shape === 'htmx' ? { htmx: true } : {}

function noStore (t: Test, response: LightMyRequestResponse, what: string): void {
  t.match(String(response.headers['cache-control'] ?? '(none)'), /\bno-store\b/, `${what} (${response.statusCode}): Cache-Control no-store`)
}

async function everyShape (t: Test, client: Client, url: string, who: string, status?: number): Promise<void> {
  for (const shape of SHAPES) {
    const response = await client.get(url, shapeOptions(shape))
    if (status !== undefined) t.equal(response.statusCode, status, `${who}: GET ${url} (${shape}) answers ${status}`)
    noStore(t, response, `${who}: GET ${url} (${shape})`)
  }
}

t.test('every plugin answer that depends on the session says no-store; the assets are cacheable', async (t) => {
  const host = await createHost(t, { users: [...DEFAULT_USERS, { id: 'carol', password: 'carol-password' }, { id: 'dave', password: 'dave-password' }] })
  const { client: admin, manualKey: adminKey } = await enrolled(host, 'admin')
  const { manualKey: aliceKey } = await enrolled(host, 'alice')
  await host.app.twoFactor.setRequired('bob', true, { actor: 'cli' })

  const pending = host.client()
  await login(pending, 'alice', PASSWORD.alice!)
  const forced = host.client()
  await login(forced, 'bob', PASSWORD.bob!)
  const carol = host.client()
  await login(carol, 'carol', 'carol-password')
  const anonymous = host.client()
  await anonymous.get('/login', { json: true })

  await t.test('the pages, as page, htmx fragment and JSON', async (t) => {
    await everyShape(t, pending, '/2fa/challenge', 'at the code prompt', 200)
    await everyShape(t, pending, '/2fa/challenge?method=recovery', 'at the code prompt', 200)
    await everyShape(t, forced, '/2fa/setup', 'in the forced wizard', 200)
    await everyShape(t, forced, '/2fa/setup/confirm', 'in the forced wizard', 200)
    await everyShape(t, carol, '/2fa/setup', 'signed in, turning 2FA on', 200)
    await everyShape(t, carol, '/2fa/settings', 'signed in without 2FA', 200)
    await everyShape(t, admin, '/2fa/settings', 'signed in with 2FA', 200)
    await everyShape(t, admin, '/2fa/step-up?returnTo=%2Fexport', 'signed in with 2FA', 200)
    await everyShape(t, admin, '/2fa/step-up?method=recovery', 'signed in with 2FA', 200)
    for (const url of ['/2fa/admin/users', '/2fa/admin/users?q=ali&status=enrolled', '/2fa/admin/users/alice', '/2fa/admin/policy', '/2fa/admin/events']) {
      await everyShape(t, admin, url, 'the admin', 200)
    }
  })

  await t.test('the answers of the steps', async (t) => {
    const dave = host.client()
    await login(dave, 'dave', 'dave-password')
    const secret = (JSON.parse((await dave.get('/2fa/setup', { json: true })).body) as { manualKey: string }).manualKey
    const codes = await dave.post('/2fa/setup/confirm', { code: codeFor(secret, host.clock.ms) })
    t.equal(codes.statusCode, 200, 'dave’s recovery codes')
    noStore(t, codes, 'the recovery codes')
    noStore(t, await dave.post('/2fa/setup/finish', {}, { htmx: true }), 'finish (htmx)')
    noStore(t, await dave.post('/2fa/recovery-codes', { password: 'dave-password' }, { json: true }), 'new recovery codes (JSON)')
    const signedIn = await pending.post('/2fa/challenge', { code: codeFor(aliceKey, host.clock.ms) })
    t.equal(signedIn.statusCode, 303, 'alice signs in')
    noStore(t, signedIn, 'the code’s redirect')
    host.clock.advance(30_000)
    const stepUp = await admin.post('/2fa/step-up', { code: codeFor(adminKey, host.clock.ms), returnTo: '/export' }, { json: true })
    t.equal(stepUp.statusCode, 200)
    noStore(t, stepUp, 'step-up (JSON)')
    noStore(t, await admin.get('/2fa/admin'), 'the admin panel’s redirect to its users list')
    noStore(t, await admin.post('/2fa/admin/users/bob/unlock', {}, { htmx: true }), 'an admin row action (htmx)')
    noStore(t, await admin.post('/2fa/admin/users/bob/unlock', {}, { json: true }), 'an admin row action (JSON)')
  })

  await t.test('the error answers and redirects', async (t) => {
    await everyShape(t, anonymous, '/2fa/challenge', 'anonymous', 401)
    await everyShape(t, anonymous, '/2fa/setup', 'anonymous', 401)
    await everyShape(t, anonymous, '/2fa/step-up', 'anonymous', 401)
    await everyShape(t, anonymous, '/2fa/settings', 'anonymous')
    await everyShape(t, anonymous, '/2fa/admin/users', 'anonymous', 403)
    await everyShape(t, carol, '/2fa/admin/users', 'not an admin', 403)
    await everyShape(t, carol, '/2fa/step-up', 'signed in without 2FA', 403)
    await everyShape(t, admin, '/2fa/admin/users/nobody-at-all', 'the admin, an unknown user', 404)
    await everyShape(t, admin, '/2fa/no-such-page', 'the admin, no such page', 404)
    await everyShape(t, admin, '/2fa/challenge', 'signed in, at the code prompt’s address')
    await everyShape(t, forced, '/2fa/challenge', 'in the forced wizard, at the code prompt’s address')
    await everyShape(t, forced, '/2fa/settings', 'in the forced wizard, at a page past it')
    await everyShape(t, forced, '/', 'in the forced wizard, at a host page (the gate)')
    await everyShape(t, anonymous, '/export', 'anonymous, at a step-up page (the gate)')

    const prompt = host.client()
    await login(prompt, 'alice', PASSWORD.alice!)
    await everyShape(t, prompt, '/2fa/setup', 'at the code prompt, the wizard’s address')
    await everyShape(t, prompt, '/', 'at the code prompt, a host page (the gate)')
    for (const shape of SHAPES) {
      const wrong = await prompt.post('/2fa/challenge', { code: '000000' }, shapeOptions(shape))
      t.equal(wrong.statusCode, 422)
      noStore(t, wrong, `a wrong code (${shape})`)
    }
    const noCsrf = await prompt.post('/2fa/challenge', { code: '000000' }, { json: true, noCsrf: true })
    t.equal(noCsrf.statusCode, 403)
    noStore(t, noCsrf, 'a POST without its CSRF token')
    const badJson = await host.app.inject({
      method: 'POST', url: '/2fa/challenge', payload: '{"code": ',
      headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': prompt.csrfToken!, cookie: [...prompt.cookies].map(([k, v]) => `${k}=${v}`).join('; ') }
    })
    t.equal(badJson.statusCode, 400)
    noStore(t, badJson, 'an unreadable body')
    for (const shape of SHAPES) {
      const skip = await forced.post('/2fa/setup/skip', {}, shapeOptions(shape))
      noStore(t, skip, `skip from the wizard (${shape})`)
      if (skip.statusCode < 400) break // signed in now
    }

    host.clock.advance(20 * 60_000)
    for (const shape of SHAPES) {
      const stale = await admin.post('/2fa/admin/users/bob/unlock', {}, shapeOptions(shape))
      t.ok([200, 401].includes(stale.statusCode), `an admin change without a fresh code (${shape}): the step-up (${stale.statusCode})`)
      noStore(t, stale, `an admin change without a fresh code (${shape})`)
      const wrong = await admin.post('/2fa/step-up', { code: '000000' }, shapeOptions(shape))
      t.equal(wrong.statusCode, 422)
      noStore(t, wrong, `a wrong step-up code (${shape})`)
      noStore(t, await admin.get('/export', shapeOptions(shape)), `a host page needing a fresh code (${shape})`)
    }
  })

  await t.test('the rate limit’s refusal', async (t) => {
    const limited = await createHost(t, { twoFactor: { rateLimit: { max: 1, timeWindowMs: 60_000 } } })
    const client = limited.client()
    await client.get('/login', { json: true })
    await client.post('/2fa/challenge', { code: '000000' }, { json: true })
    const refused = await client.post('/2fa/challenge', { code: '000000' }, { json: true })
    t.equal(refused.statusCode, 429)
    noStore(t, refused, 'a POST over the rate limit')
  })

  await t.test('the assets are cacheable, with or without a session', async (t) => {
    const page = (await admin.get('/2fa/settings')).body
    const urls = [...page.matchAll(/(?:src|href)="(\/2fa\/assets\/[^"]+)"/g)].map((m) => m[1]!.replaceAll('&amp;', '&'))
    t.ok(urls.length >= 3, `the page links its assets (${urls.join(', ')})`)
    for (const url of urls) {
      for (const client of [admin, host.client()]) {
        const asset = await client.get(url)
        t.equal(asset.statusCode, 200, `${url}: 200`)
        const cache = String(asset.headers['cache-control'] ?? '')
        t.notMatch(cache, /no-store/, `${url}: not no-store`)
        t.match(cache, /max-age=\d+/, `${url}: cacheable (${cache})`)
        t.notOk(asset.headers['set-cookie'] !== undefined && client === admin && /tf\.sid/.test(String(asset.headers['set-cookie'])), `${url}: sets no session cookie`)
      }
    }
  })
})
