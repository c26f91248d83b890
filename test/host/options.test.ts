// Bad plugin options fail `app.ready()` with a message naming the option (options are
// checked once at register time), and so do missing or malformed keys.
import t from 'tap'
import Fastify from 'fastify'
import twoFactor, { Keyring, type TwoFactorOptions } from '../../plugin/index.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { SESSION_SECRET } from '../helpers/demo.ts'

t.test('bad options fail app.ready() naming the option', async (t) => {
  const { db } = await createTestDatabase(t)
  const good: TwoFactorOptions = {
    database: db,
    keys: Keyring.generateSpec('k1'),
    session: { secret: SESSION_SECRET },
    accounts: { findUser: () => null, userId: (u: { id: string }) => u.id, label: () => 'x', verifyPassword: () => false }
  }
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['no database', { database: undefined }, /"database"/],
    ['database not drizzle', { database: {} }, /"database"/],
    ['no accounts', { accounts: undefined }, /"accounts"/],
    ['accounts.label missing', { accounts: { ...good.accounts, label: undefined } }, /"accounts\.label"/],
    ['accounts.usersQuery a query, not a function of the search', { accounts: { ...good.accounts, usersQuery: 'select id from users' } }, /"accounts\.usersQuery" must be a function/],
    ['short session secret', { session: { secret: 'short' } }, /"session\.secret"/],
    ['digits out of range', { digits: 9 }, /"digits"/],
    ['window negative', { window: -1 }, /"window"/],
    ['window not a number', { window: '1' }, /"window"/],
    ['algorithm unknown', { algorithm: 'MD5' }, /"algorithm"/],
    ['prefix not a path', { prefix: '2fa' }, /"prefix"/],
    ['issuer with colon', { issuer: 'Acme:Corp' }, /"issuer"/],
    ['onEvent not a function', { onEvent: 'x' }, /"onEvent"/],
    ['rateLimit.max zero', { rateLimit: { max: 0 } }, /"rateLimit\.max"/],
    ['helmet neither a boolean nor app', { helmet: 'everywhere' }, /"helmet"/],
    ['missing keys', { keys: '' }, /TWO_FACTOR_KEYS/],
    ['short key', { keys: 'k1:' + Buffer.alloc(16).toString('base64') }, /TWO_FACTOR_KEYS/],
    ['malformed key', { keys: 'not-a-key' }, /TWO_FACTOR_KEYS/]
  ]
  for (const [name, patch, message] of cases) {
    const app = Fastify()
    await app.register(twoFactor, { ...good, migrate: false, ...patch } as TwoFactorOptions).ready().then(
      () => t.fail(`${name}: ready() should fail`),
      (error: Error) => t.match(error.message, message, name)
    )
    await app.close().catch(() => {})
  }

  const ok = Fastify()
  await ok.register(twoFactor, good)
  await ok.ready()
  t.pass('good options start')
  await ok.close()
})

t.test('key errors do not echo key material', async (t) => {
  const key = Buffer.alloc(16, 7).toString('base64')
  try {
    Keyring.parse(`k1:${key}`)
    t.fail('a short key must be refused')
  } catch (error) {
    t.notMatch((error as Error).message, key)
  }
})
