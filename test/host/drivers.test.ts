// The `database` option takes a drizzle database on postgres.js, node-postgres or PGlite, and
// says what it got otherwise (another drizzle driver, a raw client, anything else) naming the
// option, before anything runs. The suite itself runs on each: PGlite by default, postgres.js
// with DATABASE_URL, node-postgres with DATABASE_URL and DATABASE_DRIVER=pg.
import t from 'tap'
import Fastify from 'fastify'
import { PGlite } from '@electric-sql/pglite'
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzleProxy } from 'drizzle-orm/pg-proxy'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import pg from 'pg'
import postgres from 'postgres'
import twoFactor, { Keyring, type TwoFactorDatabase } from '../../plugin/index.ts'
import { driverOf } from '../../plugin/db/database.ts'
import { HOST_SESSION_SECRET } from '../fixtures/host.ts'

t.test('each supported driver is recognised', async (t) => {
  // Neither client connects until a query is sent.
  const sql = postgres('postgres://nobody@127.0.0.1:1/none')
  const pool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none' })
  const lite = new PGlite()
  t.teardown(async () => { await sql.end({ timeout: 1 }); await pool.end(); await lite.close() })
  t.same(driverOf(drizzlePostgres(sql)), { driver: 'postgres.js' })
  t.same(driverOf(drizzleNodePg(pool)), { driver: 'node-postgres' })
  t.same(driverOf(drizzlePglite(lite)), { driver: 'PGlite' })
})

t.test('anything else stops startup, saying what it is', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['another drizzle driver', drizzleProxy(async () => ({ rows: [] })), /it is PgRemoteDatabase/],
    ['the raw postgres.js client', postgres('postgres://nobody@127.0.0.1:1/none'), /it is (a function|function)/],
    ['an object with the right method names', { select () {}, transaction () {} }, /not a drizzle database/],
    ['nothing', undefined, /it is undefined/]
  ]
  for (const [what, database, got] of cases) {
    const app = Fastify()
    t.teardown(() => app.close())
    const error = await app.register(twoFactor, {
      database: database as TwoFactorDatabase,
      keys: Keyring.generateSpec('k1'),
      session: { secret: HOST_SESSION_SECRET, secure: false },
      accounts: { findUser: () => undefined, userId: (user: { id: string }) => user.id, label: (user: { id: string }) => user.id }
    }).ready().then(() => null, (thrown: Error) => thrown)
    t.ok(error !== null, `${what}: refused`)
    t.match(error?.message, /database/, 'names the option')
    t.match(error?.message, /postgres\.js.*node-postgres.*PGlite/, 'lists what it takes')
    t.match(error?.message, got, 'and says what it got')
    if (typeof (database as { end?: unknown })?.end === 'function') await (database as postgres.Sql).end({ timeout: 1 })
  }
})
