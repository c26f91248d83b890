// Attack: finish one user's sign-in with another user's factor, with a stale half-signed-in
// session, or with a body shaped to confuse the parser (input checks, the pending state).
import t from 'tap'
import type { Client } from '../helpers/client.ts'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'
import { accountOf, pendingClient, unusedRecoveryCodes } from '../helpers/states.ts'

/** Replays a request with a saved cookie jar and CSRF token, as an attacker holding a copy would. */
function withSavedCookies (client: Client): { cookie: string, token: string } {
  return { cookie: [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; '), token: client.csrfToken ?? '' }
}

t.test('identity confusion', async (t) => {
  const h = await createHarness(t)
  const { manualKey: aliceKey } = await enrol(h, 'alice', PASSWORDS.alice)
  const { manualKey: bobKey, recoveryCodes: bobCodes } = await enrol(h, 'bob', PASSWORDS.bob)
  const unlock = async (userId: string) => { await h.app.twoFactor.unlock(userId, { actor: 'test' }) }

  t.test('a pending sign-in of A does not accept B’s code, and B’s code stays usable by B', async (t) => {
    const before = await accountOf(h, 'bob')
    const alice = await pendingClient(h, 'alice', PASSWORDS.alice)
    const bobCode = codeFor(bobKey, h.clock.ms)
    const tries = [
      { code: bobCode },
      { code: bobCode, userId: 'bob' },
      { code: bobCode, username: 'bob', user: 'bob' }
    ]
    for (const body of tries) {
      const response = await alice.post('/2fa/challenge', body, { json: true })
      t.equal(response.statusCode, 422, `refused: ${Object.keys(body).join(', ')}`)
    }
    t.equal((await alice.get('/', { json: true })).statusCode, 401, 'alice is still pending')
    t.equal((await accountOf(h, 'alice'))?.failedAttempts, 3, 'the failures count against alice')
    const after = await accountOf(h, 'bob')
    t.same({ lastUsedStep: after?.lastUsedStep, failedAttempts: after?.failedAttempts }, { lastUsedStep: before?.lastUsedStep, failedAttempts: before?.failedAttempts }, 'bob’s account is untouched')

    const bob = await pendingClient(h, 'bob', PASSWORDS.bob)
    t.equal((await bob.post('/2fa/challenge', { code: bobCode })).headers.location, '/', 'bob signs in with the same code')
    await unlock('alice')
  })

  t.test('a pending sign-in of A does not accept B’s recovery code, and does not use it up', async (t) => {
    const alice = await pendingClient(h, 'alice', PASSWORDS.alice)
    const response = await alice.post('/2fa/challenge', { recoveryCode: bobCodes[0]! }, { json: true })
    t.equal(response.statusCode, 422)
    t.equal(await unusedRecoveryCodes(h, 'bob'), 10, 'bob still has all ten')
    h.clock.advance(30_000)
    const bob = await pendingClient(h, 'bob', PASSWORDS.bob)
    t.equal((await bob.post('/2fa/challenge', { recoveryCode: bobCodes[0]! })).statusCode, 200, 'bob can use it')
    await unlock('alice')
  })

  t.test('a pending session kept after logout does not sign in', async (t) => {
    const alice = await pendingClient(h, 'alice', PASSWORDS.alice)
    const saved = withSavedCookies(alice)
    t.equal((await alice.post('/2fa/logout')).statusCode, 303, 'logged out')
    const replay = await h.app.inject({
      method: 'POST',
      url: '/2fa/challenge',
      headers: { cookie: saved.cookie, 'x-csrf-token': saved.token, accept: 'application/json' },
      payload: { code: codeFor(aliceKey, h.clock.ms) }
    })
    t.ok(replay.statusCode === 401 || replay.statusCode === 403, `refused (${replay.statusCode})`)
    const home = await h.app.inject({ method: 'GET', url: '/', headers: { cookie: saved.cookie } })
    t.equal(home.headers.location, '/login', 'the old cookie is anonymous')

    // The code was not spent by the refused attempt.
    const fresh = await pendingClient(h, 'alice', PASSWORDS.alice)
    t.equal((await fresh.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) })).headers.location, '/', 'the code still works for a real sign-in')
    h.clock.advance(30_000)
  })

  t.test('a pending session begun before a password change does not sign in', async (t) => {
    const stale = await pendingClient(h, 'alice', PASSWORDS.alice)
    // Alice, signed in elsewhere, changes her password.
    const owner = await pendingClient(h, 'alice', PASSWORDS.alice)
    t.equal((await owner.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) })).headers.location, '/')
    h.clock.advance(30_000)
    await owner.get('/', { json: true })
    const newPassword = 'alice-new-password-456'
    const change = await owner.post('/password', { currentPassword: PASSWORDS.alice, newPassword }, { json: true })
    t.equal(change.statusCode, 200, 'password changed')

    const late = await stale.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) }, { json: true })
    t.ok(late.statusCode === 401 || late.statusCode === 403, `the stale pending session is refused (${late.statusCode})`)
    t.equal((await stale.get('/')).headers.location, '/login', 'and it is anonymous now')
    t.equal((await owner.get('/')).statusCode, 200, 'the session that made the change stays signed in')
    t.equal((await passwordStep(h.client(), 'alice', PASSWORDS.alice)).statusCode, 401, 'the old password no longer works')
    t.equal((await passwordStep(h.client(), 'alice', newPassword)).headers.location, '/2fa/challenge', 'the new one does')
    // Put it back for the tests that follow.
    await owner.post('/password', { currentPassword: newPassword, newPassword: PASSWORDS.alice }, { json: true })
  })

  t.test('fields sent as arrays or objects are 4xx and never sign in, even around the right code', async (t) => {
    await unlock('alice')
    const right = () => codeFor(aliceKey, h.clock.ms)
    const forms: Array<[string, Record<string, unknown>]> = [
      ['code twice (array)', { code: [right(), right()] }],
      ['recoveryCode twice', { recoveryCode: ['AAAA-BBBB-CCCC-DDDD', 'AAAA-BBBB-CCCC-DDDD'] }]
    ]
    const jsons: Array<[string, unknown]> = [
      ['code as array', { code: [right()] }],
      ['code as object', { code: { value: right() } }],
      ['code as array-like object', { code: { 0: right(), length: 1 } }],
      ['code as number', { code: Number(right()) }],
      ['code as boolean', { code: true }],
      ['code as null', { code: null }],
      ['recoveryCode as array', { recoveryCode: ['AAAA-BBBB-CCCC-DDDD'] }],
      ['recoveryCode as object', { recoveryCode: { code: 'AAAA-BBBB-CCCC-DDDD' } }],
      ['body as array', [{ code: right() }]],
      ['body as string', right()],
      ['prototype pollution', JSON.parse(`{"__proto__": {"code": "${right()}"}}`)],
      ['constructor pollution', { constructor: { prototype: { code: right() } } }]
    ]
    let attempts = 0
    let client = await pendingClient(h, 'alice', PASSWORDS.alice)
    const fresh = async () => { if (++attempts % 4 === 0) client = await pendingClient(h, 'alice', PASSWORDS.alice) }
    for (const [name, body] of forms) {
      const response = await client.post('/2fa/challenge', body as Record<string, unknown>)
      t.ok(response.statusCode >= 400 && response.statusCode < 500, `form ${name}: ${response.statusCode}`)
      t.equal((await client.get('/')).headers.location, '/2fa/challenge', `form ${name}: not signed in`)
      await fresh()
      await unlock('alice')
    }
    for (const [name, body] of jsons) {
      const response = await h.app.inject({
        method: 'POST',
        url: '/2fa/challenge',
        headers: { cookie: withSavedCookies(client).cookie, 'x-csrf-token': client.csrfToken ?? '', accept: 'application/json', 'content-type': 'application/json' },
        payload: JSON.stringify(body)
      })
      t.ok(response.statusCode >= 400 && response.statusCode < 500, `JSON ${name}: ${response.statusCode}`)
      t.match(JSON.parse(response.body), { error: String }, `JSON ${name}: an error the client can read`)
      t.equal((await client.get('/')).headers.location, '/2fa/challenge', `JSON ${name}: not signed in`)
      await fresh()
      await unlock('alice')
    }
    // The right code, sent plainly, still works: none of the above spent its step.
    const ok = await client.post('/2fa/challenge', { code: right() })
    t.equal(ok.headers.location, '/', 'the plain right code signs in')
    h.clock.advance(30_000)
  })
})
