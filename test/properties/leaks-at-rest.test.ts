// Nothing secret at rest or in logs: a dump of every row of the
// `two_factor` schema and the captured log of a whole flow hold neither the base32 secret nor
// any recovery code (in any spelling), nor passwords or session ids.
import t from 'tap'
import { sql } from 'drizzle-orm'
import { rowsOf } from '../../plugin/db/database.ts'
import { codeFor, createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'

t.test('database dump and logs hold no secret, code, password or session id', async (t) => {
  const h = await createHarness(t)
  const { manualKey, recoveryCodes, client: enrolled } = await enrol(h, 'alice', PASSWORDS.alice)
  const secret = manualKey.replace(/ /g, '')

  // A whole flow: challenge with a code, with a recovery code, regenerate, wrong attempts.
  const a = h.client()
  await passwordStep(a, 'alice', PASSWORDS.alice)
  await a.get('/2fa/challenge')
  await a.post('/2fa/challenge', { code: '111111' })
  await a.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
  h.clock.advance(30_000)
  const b = h.client()
  await passwordStep(b, 'alice', PASSWORDS.alice)
  await b.get('/2fa/challenge')
  await b.post('/2fa/challenge', { recoveryCode: recoveryCodes[0] })
  await b.get('/2fa/settings')
  const regenerated = await b.post('/2fa/recovery-codes', { password: PASSWORDS.alice })
  const newCodes = [...regenerated.body.matchAll(/<li><code>([0-9A-Z-]{19})<\/code><\/li>/g)].map((m) => m[1]!)
  t.equal(newCodes.length, 10)

  const tables = rowsOf<{ table_name: string }>(await h.database.db.execute(sql`
    select table_name from information_schema.tables where table_schema = 'two_factor' order by table_name`))
  t.ok(tables.length >= 5, 'every table of the schema is dumped')
  let dump = ''
  for (const { table_name: table } of tables) {
    const rows = rowsOf(await h.database.db.execute(sql.raw(`select * from two_factor."${table}"`)))
    dump += JSON.stringify(rows)
  }
  t.ok(dump.length > 1000, 'the dump has content')

  const sessionIds = [enrolled, a, b].map((c) => decodeURIComponent(c.sessionCookie() ?? '').split('.')[0]!).filter((s) => s.length > 10)
  const forbidden: Array<[string, string]> = [
    ['base32 secret', secret],
    ['grouped manual key', manualKey],
    ['lower-case secret', secret.toLowerCase()],
    ['password', PASSWORDS.alice],
    ...[...recoveryCodes, ...newCodes].flatMap((code): Array<[string, string]> => [
      ['recovery code', code],
      ['recovery code without dashes', code.replace(/-/g, '')]
    ]),
    ...sessionIds.map((id): [string, string] => ['session id', id])
  ]
  const logs = h.logs.join('\n')
  t.ok(logs.includes('incoming request'), 'logs were captured')
  const events = JSON.stringify(h.events)
  for (const [what, value] of forbidden) {
    t.notOk(dump.toUpperCase().includes(value.toUpperCase()), `no ${what} in the database dump`)
    t.notOk(logs.includes(value), `no ${what} in the logs`)
    t.notOk(events.includes(value), `no ${what} in the audit events`)
  }
})
