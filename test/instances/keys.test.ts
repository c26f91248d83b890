// Attack (or accident) on the keys: rotate to a new key while users keep signing in,
// then re-seal; start an instance with a key that did not seal the secrets. Several apps share
// one database here, as instances of one deployment would, each started with its own ring.
import t from 'tap'
import { eq, sql } from 'drizzle-orm'
import { Keyring, KeyringError } from '../../plugin/index.ts'
import { rowsOf } from '../../plugin/db/database.ts'
import { rotateKeys } from '../../plugin/db/rotate-keys.ts'
import { accounts, recoveryCodes } from '../../plugin/db/schema.ts'
import { codeFor, createHarness, enrol, PASSWORDS, TEST_KEYS, type Harness } from '../helpers/demo.ts'
import { clearFailures, pendingClient, recoveryCodesIn } from '../helpers/states.ts'

const K2 = Keyring.generateSpec('k2')

async function sealedKeyIds (h: Harness): Promise<Record<string, string | undefined>> {
  const rows = await h.database.db.select({ userId: accounts.userId, secret: accounts.secret }).from(accounts)
  return Object.fromEntries(rows.filter((r) => r.secret !== null).map((r) => [r.userId, r.secret!.split('.')[1]]))
}

t.test('keys', async (t) => {
  const h = await createHarness(t)
  const { manualKey: aliceKey, recoveryCodes: aliceCodes } = await enrol(h, 'alice', PASSWORDS.alice)
  const { manualKey: adminKey } = await enrol(h, 'admin', PASSWORDS.admin)
  t.same(await sealedKeyIds(h), { alice: 'k1', admin: 'k1' }, 'sealed under k1')
  const rotated = await createHarness(t, { database: h.database, clock: h.clock, app: { keys: `${K2},${TEST_KEYS}` } })

  t.test('with a new current key first, secrets and recovery codes made under the old key still work', async (t) => {
    const viaCode = await pendingClient(rotated, 'alice', PASSWORDS.alice)
    t.equal((await viaCode.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) })).headers.location, '/', 'a code for a k1 secret')
    h.clock.advance(30_000)
    const viaRecovery = await pendingClient(rotated, 'alice', PASSWORDS.alice)
    t.equal((await viaRecovery.post('/2fa/challenge', { recoveryCode: aliceCodes[0]! })).statusCode, 200, 'a k1 recovery code')

    // New secrets and codes use the new key.
    const { recoveryCodes: bobCodes } = await enrol(rotated, 'bob', PASSWORDS.bob)
    t.equal((await sealedKeyIds(h)).bob, 'k2', 'a new enrolment is sealed under k2')
    const bobDigestKeys = await h.database.db.select({ keyId: recoveryCodes.keyId }).from(recoveryCodes).where(eq(recoveryCodes.userId, 'bob'))
    t.same([...new Set(bobDigestKeys.map((r) => r.keyId))], ['k2'], 'its recovery codes are digested with k2’s pepper')
    t.equal(bobCodes.length, 10)
  })

  t.test('rotate-keys re-seals every secret while users keep signing in', async (t) => {
    // A sign-in on the rotated app runs at the same time as the re-seal, batch by batch.
    const signingIn = await pendingClient(rotated, 'admin', PASSWORDS.admin)
    const ring = Keyring.parse(`${K2},${TEST_KEYS}`)
    const [report, signedIn] = await Promise.all([
      rotateKeys(h.database.db, ring, { batchSize: 1 }),
      signingIn.post('/2fa/challenge', { code: codeFor(adminKey, h.clock.ms) })
    ])
    t.equal(signedIn.headers.location, '/', 'the sign-in during the rotation succeeded')
    t.same({ secrets: report.secrets, failures: report.failures, remaining: report.remaining }, { secrets: 2, failures: [], remaining: 0 }, 'alice and admin re-sealed, nothing left')
    t.same(report.recoveryCodesByOldKey, { k1: 9 + 10 }, 'the report counts the recovery codes that still need k1')
    t.same(await sealedKeyIds(h), { alice: 'k2', admin: 'k2', bob: 'k2' }, 'every secret is under k2')
    h.clock.advance(30_000)

    // An instance with only the new key now serves the re-sealed secrets.
    const newOnly = await createHarness(t, { database: h.database, clock: h.clock, app: { keys: K2 } })
    const client = await pendingClient(newOnly, 'alice', PASSWORDS.alice)
    t.equal((await client.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) })).headers.location, '/', 'alice signs in on a k2-only instance')
    t.ok(newOnly.logs.some((line) => line.includes('unused recovery codes were made under a key')), 'it warned that k1 recovery codes no longer work')
    h.clock.advance(30_000)
    // Regenerating gives codes that work on the new key alone.
    await client.get('/2fa/settings')
    const fresh = recoveryCodesIn((await client.post('/2fa/recovery-codes', { password: PASSWORDS.alice })).body)
    t.equal(fresh.length, 10)
    const again = await pendingClient(newOnly, 'alice', PASSWORDS.alice)
    t.equal((await again.post('/2fa/challenge', { recoveryCode: fresh[0]! })).statusCode, 200, 'a new recovery code works under k2 alone')
    h.clock.advance(30_000)
  })

  t.test('an instance started with a key that did not seal the secrets stops with a clear error', async (t) => {
    const other = Keyring.generateSpec('k2') // the right id, the wrong bytes
    await t.rejects(createHarness(t, { database: h.database, clock: h.clock, app: { keys: other } }), KeyringError)
    await t.rejects(createHarness(t, { database: h.database, clock: h.clock, app: { keys: other } }), /TWO_FACTOR_KEYS: the key with id "k2" does not open/)

    const missing = Keyring.generateSpec('k9') // a new key without the one in use
    await t.rejects(createHarness(t, { database: h.database, clock: h.clock, app: { keys: missing } }), /TWO_FACTOR_KEYS does not hold key "k2"/)
    for (const spec of [other, missing]) {
      const key = spec.split(':')[1]!
      const message = await createHarness(t, { database: h.database, clock: h.clock, app: { keys: spec } }).then(() => '', (error: Error) => error.message)
      t.ok(message.length > 0 && !message.includes(key), 'the message quotes no key material')
    }
  })

  t.test('a secret that no longer opens (damaged row) fails closed: 503, a clear log line, nobody signed in', async (t) => {
    await clearFailures(h, 'alice')
    const [row] = await h.database.db.select({ secret: accounts.secret }).from(accounts).where(eq(accounts.userId, 'alice'))
    const parts = row!.secret!.split('.')
    parts[3] = Buffer.from(Buffer.from(parts[3]!, 'base64url').map((b) => b ^ 1)).toString('base64url')
    await h.database.db.update(accounts).set({ secret: parts.join('.') }).where(eq(accounts.userId, 'alice'))

    const app = await createHarness(t, { database: h.database, clock: h.clock, app: { keys: K2 } })
    const client = await pendingClient(app, 'alice', PASSWORDS.alice)
    for (const json of [true, false]) {
      const response = await client.post('/2fa/challenge', { code: codeFor(aliceKey, h.clock.ms) }, { json })
      t.equal(response.statusCode, 503, `503, not 500 (${json ? 'JSON' : 'page'})`)
      if (json) t.same(JSON.parse(response.body), { error: 'unavailable', message: 'Sign-in is unavailable right now. Try again shortly.' })
    }
    t.equal((await client.get('/')).headers.location, '/2fa/challenge', 'nobody signed in')
    const logged = app.logs.filter((line) => line.includes('could not be decrypted'))
    t.equal(logged.length, 2, 'each failure logged, saying what is wrong')
    t.match(JSON.parse(logged[0]!), { level: 50, errorName: 'KeyringError', reason: 'authentication' })
    const failures = rowsOf<{ n: string | number }>(await h.database.db.execute(sql`select failed_attempts as n from two_factor.accounts where user_id = 'alice'`))
    t.equal(Number(failures[0]!.n), 0, 'a server-side failure is not counted against the user')
  })
})
