// Mistakes a host makes while setting the plugin up, said plainly instead of costing an
// afternoon: secure cookies over plain HTTP warn once naming `session.secure`; a
// missing `templatesDir` stops startup naming the path; the plugin's own unknown paths answer
// its 404 as a page or JSON, while the host's 404s stay the host's; the pages ask for no favicon.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createHost, HOST_SESSION_SECRET, login } from '../fixtures/host.ts'

/** The log lines (pino JSON) at warn level that speak of `session.secure`. */
function secureWarnings (logs: string[]): Array<{ level: number, msg: string }> {
  return logs
    .map((line) => JSON.parse(line) as { level: number, msg: string })
    .filter((entry) => entry.level === 40 && entry.msg.includes('session.secure'))
}

t.test('session.secure over plain HTTP', async (t) => {
  t.test('secure: true, reached over http: one warning naming the option, on the first request that would set the cookie', async (t) => {
    const host = await createHost(t, { twoFactor: { session: { secret: HOST_SESSION_SECRET, secure: true } } })
    const client = host.client()
    // A request that touches no session sets no cookie: nothing to warn about yet.
    t.equal((await client.get('/not-a-route', { json: true })).statusCode, 404)
    t.equal(secureWarnings(host.logs).length, 0, 'no warning before a cookie would be set')

    const first = await client.get('/login', { json: true })
    t.equal(first.statusCode, 200)
    t.notOk(first.headers['set-cookie'], 'the Secure cookie is not set over plain HTTP')
    const warnings = secureWarnings(host.logs)
    t.equal(warnings.length, 1, 'one warning')
    t.match(warnings[0]?.msg, /plain HTTP/)
    t.match(warnings[0]?.msg, /`session\.secure`/, 'names the option')
    t.match(warnings[0]?.msg, /HTTPS/, 'says what to do')

    // More requests, another browser, a sign-in attempt: still the one warning.
    await client.get('/login', { json: true })
    await login(host.client(), 'alice', 'alice-password')
    await host.client().get('/2fa/settings')
    t.equal(secureWarnings(host.logs).length, 1, 'said once, not per request')
  })

  t.test('the default (outside NODE_ENV=development) is secure, and warns the same', async (t) => {
    const before = process.env.NODE_ENV
    process.env.NODE_ENV = 'production'
    t.teardown(() => { if (before === undefined) delete process.env.NODE_ENV; else process.env.NODE_ENV = before })
    const host = await createHost(t, { twoFactor: { session: { secret: HOST_SESSION_SECRET } } })
    await host.client().get('/login', { json: true })
    t.equal(secureWarnings(host.logs).length, 1)
  })

  t.test('secure: false over http: no warning, and the cookie sticks', async (t) => {
    const host = await createHost(t, { twoFactor: { session: { secret: HOST_SESSION_SECRET, secure: false } } })
    const client = host.client()
    const answer = await login(client, 'alice', 'alice-password')
    t.equal(answer.statusCode, 200)
    t.equal((await client.get('/', { json: true })).json().userId, 'alice', 'signed in')
    t.equal(secureWarnings(host.logs).length, 0)
  })
})

t.test('templatesDir that is not a folder stops startup, naming the path', async (t) => {
  const missing = join(tmpdir(), `tf-no-such-templates-${process.pid}`)
  const error = await createHost(t, { twoFactor: { templatesDir: missing } }).then(() => undefined, (error: unknown) => error)
  t.type(error, Error, 'startup fails')
  t.match((error as Error).message, /"templatesDir"/, 'names the option')
  t.ok((error as Error).message.includes(missing), 'names the path')

  const file = join(mkdtempSync(join(tmpdir(), 'tf-templates-')), 'layout.eta')
  writeFileSync(file, '<%~ it.body %>')
  await t.rejects(createHost(t, { twoFactor: { templatesDir: file } }), /"templatesDir".*layout\.eta/, 'a file is not a folder')
})

async function notFoundUnder (t: Test, prefix: string | undefined) {
  const host = await createHost(t, prefix === undefined ? {} : { twoFactor: { prefix } })
  const base = prefix ?? '/2fa'
  const client = host.client()

  for (const path of [`${base}/no-such-page`, `${base}/admin/users/x/no-such-action`]) {
    const page = await client.get(path, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } })
    t.equal(page.statusCode, 404, `${path}: 404`)
    t.match(page.headers['content-type'], /^text\/html/, `${path}: a page for a browser`)
    t.match(page.body, /^<!doctype html>/, 'the plugin’s layout')
    t.equal(page.headers['cache-control'], 'no-store')

    const json = await client.get(path, { json: true })
    t.equal(json.statusCode, 404)
    t.match(json.headers['content-type'], /^application\/json/, `${path}: JSON for a JSON client`)
    t.match(json.json(), { error: 'not_found', message: String })

    const post = await client.post(path, {}, { json: true })
    t.equal(post.statusCode, 404, 'a POST to an unknown path: 404 too')
    t.match(post.json(), { error: 'not_found' })
  }

  // Outside the prefix the host's 404 is the host's (here Fastify's own), even for a browser.
  for (const path of ['/no-such-page', `${base}x/no-such-page`, prefix === undefined ? '/mfa/x' : '/2fa/x']) {
    const hosts = await client.get(path, { headers: { accept: 'text/html' } })
    t.equal(hosts.statusCode, 404, `${path}: 404`)
    t.match(hosts.headers['content-type'], /^application\/json/, `${path}: Fastify's default, not the plugin's page`)
    t.match(hosts.json(), { error: 'Not Found', statusCode: 404 })
  }
}

t.test('unknown paths under the plugin’s prefix: its 404, as a page or JSON; the host keeps its own', async (t) => {
  t.test('default prefix /2fa', async (t) => { await notFoundUnder(t, undefined) })
  t.test('prefix /mfa', async (t) => { await notFoundUnder(t, '/mfa') })
})

t.test('the plugin’s pages ask for no favicon', async (t) => {
  const host = await createHost(t)
  const client = host.client()
  const icon = '<link rel="icon" href="data:,">'
  // admin must set up 2FA: the wizard, a full page of the plugin; and the 404 page (anonymous:
  // a half-signed-in session would be sent back to the wizard).
  await login(client, 'admin', 'admin-password')
  const pages = [await client.get('/2fa/setup'), await host.client().get('/2fa/no-such-page')]
  for (const page of pages) {
    t.match(page.headers['content-type'], /^text\/html/)
    const head = page.body.slice(0, page.body.indexOf('</head>'))
    t.ok(head.includes(icon), 'an empty data: icon in <head>, so the browser requests no /favicon.ico')
    t.equal(head.match(/rel="(shortcut )?icon"/g)?.length, 1, 'one icon link')
    t.notMatch(page.body, /favicon/, 'nothing points at a favicon')
  }
})
