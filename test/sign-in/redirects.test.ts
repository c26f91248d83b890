// No input can break a redirect or end the process. The attacker review sent return addresses
// with characters a header can't carry ("/ā", U+2028, DEL, a lone surrogate): Node refused the
// `Location` with an exception thrown while the answer was on its way, which took the process
// down; and addresses a browser reads as another site ("//evil.example", "/\evil", a tab after
// the slash). Every redirect target the plugin sends (`Location`, `HX-Redirect`, JSON `next`)
// must be printable ASCII, one leading "/", with anything else percent-encoded or replaced by
// "/"; and a host route's own `reply.redirect` with such a character must not crash either.
import t, { type Test } from 'tap'
import Fastify, { type LightMyRequestResponse } from 'fastify'
import twoFactor from '../../plugin/index.ts'
import type { Client } from '../helpers/client.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, HOST_KEYS, HOST_SESSION_SECRET, login, type Host } from '../fixtures/host.ts'
import { enrolled, PASSWORD, redirectTargets, SAFE_PATH, signedInWithCode, whoIs } from './support.ts'

interface Case {
  name: string
  returnTo: string
  /** Where a completed sign-in goes. */
  expected: string
  /** Send the password step as htmx does. */
  htmx?: boolean
  /** The plugin's own forms refuse control characters outright (422) instead of redirecting. */
  refusedByPlugin?: boolean
}

const LONG = '/' + 'a'.repeat(2999)

const CASES: Case[] = [
  { name: '"/ā" (non-ASCII)', returnTo: '/ā', expected: '/%C4%81' },
  { name: '"/\\u2028" (a line separator), with HX-Request', returnTo: '/\u2028', expected: '/%E2%80%A8', htmx: true },
  { name: '"/\\u007f" (DEL)', returnTo: '/\u007f', expected: '/%7F', refusedByPlugin: true },
  { name: '"/\\ud800" (a lone surrogate, in a JSON body)', returnTo: '/\ud800', expected: '/' },
  { name: '"//evil.example"', returnTo: '//evil.example', expected: '/' },
  { name: '"/\\evil"', returnTo: '/\\evil', expected: '/' },
  { name: '"/\\t/evil.example" (a browser drops the tab)', returnTo: '/\t/evil.example', expected: '/%09/evil.example', refusedByPlugin: true },
  { name: 'a 3000-character path', returnTo: LONG, expected: '/', refusedByPlugin: true }
]

type Shape = 'page' | 'htmx' | 'json'
const SHAPES: Shape[] = ['page', 'htmx', 'json']
const shapeOptions = (shape: Shape) => shape === 'json' ? { json: true } : shape === 'htmx' ? { htmx: true } : {}

/** Every redirect target of the answer is a safe same-origin path; returns them. */
function checkTargets (t: Test, response: LightMyRequestResponse, what: string): string[] {
  t.ok(response.statusCode < 500, `${what}: no 5xx (${response.statusCode})`)
  const targets = redirectTargets(response)
  for (const target of targets) t.match(target, SAFE_PATH, `${what}: ${JSON.stringify(target).slice(0, 60)} is printable ASCII with one leading "/"`)
  return targets
}

/** Where the answer sends the client, in its shape. */
function whereTo (response: LightMyRequestResponse, shape: Shape): string | undefined {
  if (shape === 'page') return response.headers.location as string | undefined
  if (shape === 'htmx') return response.headers['hx-redirect'] as string | undefined
  return (JSON.parse(response.body) as { next?: string }).next
}

async function passwordWithReturnTo (client: Client, userId: string, returnTo: string, htmx: boolean): Promise<LightMyRequestResponse> {
  await client.get('/login', { json: true })
  return await client.post('/login', { username: userId, password: PASSWORD[userId], returnTo }, { json: true, htmx })
}

async function stillAnswers (t: Test, host: Host, what: string): Promise<void> {
  const fresh = host.client()
  const response = await fresh.get('/login', { json: true })
  t.equal(response.statusCode, 200, `${what}: the process still answers`)
}

t.test('a return address at the password step: the completed sign-in goes to a safe path', async (t) => {
  const host = await createHost(t)
  const { manualKey } = await enrolled(host, 'alice')
  for (const c of CASES) {
    await t.test(c.name, async (t) => {
      // bob has no second factor: the password step itself is the sign-in.
      const direct = await passwordWithReturnTo(host.client(), 'bob', c.returnTo, c.htmx === true)
      t.equal(direct.statusCode, 200, 'bob: signed in at the password')
      t.same(checkTargets(t, direct, 'bob’s password step'), [c.expected], `bob: next is ${c.expected}`)

      for (const shape of SHAPES) {
        const client = host.client()
        const pending = await passwordWithReturnTo(client, 'alice', c.returnTo, c.htmx === true)
        t.same(checkTargets(t, pending, `alice’s password step (${shape})`), ['/2fa/challenge'], 'alice: to the code prompt')
        const done = await client.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) }, shapeOptions(shape))
        host.clock.advance(30_000)
        checkTargets(t, done, `the code (${shape})`)
        t.equal(whereTo(done, shape), c.expected, `the code (${shape}): sent to ${c.expected}`)
        t.equal((await whoIs(client)).userId, 'alice', `the code (${shape}): signed in`)
      }
      await stillAnswers(t, host, c.name)
    })
  }
})

/**
 * Where the step-up answer sends the client, or `refused`. A form can't carry a lone surrogate
 * (the browser, like URLSearchParams, sends U+FFFD in its place); JSON can, and it is refused.
 */
function stepUpExpected (c: Case, shape: Shape): string {
  if (c.refusedByPlugin === true) return 'refused'
  if (c.returnTo === '/\ud800') return shape === 'json' ? 'refused' : '/%EF%BF%BD'
  return c.expected
}

t.test('a return address at step-up, in the query and in the body: the prompt and its answer stay on this site', async (t) => {
  const host = await createHost(t)
  const { manualKey } = await enrolled(host, 'alice')
  const client = await signedInWithCode(host, 'alice', manualKey)
  for (const c of CASES) {
    await t.test(c.name, async (t) => {
      // A lone surrogate can't be percent-encoded as UTF-8: sent as the bytes of one (read as U+FFFD).
      const query = c.returnTo === '/\ud800' ? '%2F%ED%A0%80' : encodeURIComponent(c.returnTo)
      for (const shape of SHAPES) {
        const prompt = await client.get(`/2fa/step-up?returnTo=${query}`, shapeOptions(shape))
        checkTargets(t, prompt, `GET /2fa/step-up (${shape})`)
        t.equal(prompt.statusCode, c.refusedByPlugin === true ? 422 : 200, `GET /2fa/step-up (${shape}): ${c.refusedByPlugin === true ? 'refused as input' : 'the prompt'}`)
        if (shape === 'json' && prompt.statusCode === 200) {
          t.match((JSON.parse(prompt.body) as { returnTo: string }).returnTo, SAFE_PATH, 'GET /2fa/step-up (JSON): returnTo is a safe path')
        }
        if (shape === 'page' && prompt.statusCode === 200) {
          const hidden = /name="returnTo" value="([^"]*)"/.exec(prompt.body)
          t.ok(hidden !== null, 'the prompt carries the return address')
          if (hidden !== null) t.match(hidden[1]!.replaceAll('&amp;', '&'), SAFE_PATH, 'as a safe path')
        }

        const answer = await client.post('/2fa/step-up', { code: codeFor(manualKey, host.clock.ms), returnTo: c.returnTo }, shapeOptions(shape))
        host.clock.advance(30_000)
        const targets = checkTargets(t, answer, `POST /2fa/step-up (${shape})`)
        const expected = stepUpExpected(c, shape)
        if (expected === 'refused') {
          t.equal(answer.statusCode, 422, `POST /2fa/step-up (${shape}): refused as input`)
          t.same(targets, [], 'and sent nowhere')
        } else {
          t.equal(whereTo(answer, shape), expected, `POST /2fa/step-up (${shape}): sent to ${expected}`)
        }
        t.equal((await whoIs(client)).userId, 'alice', `POST /2fa/step-up (${shape}): still signed in`)
      }
      await stillAnswers(t, host, c.name)
    })
  }
})

t.test('a host route whose own redirect holds characters a header can’t carry answers, percent-encoded', async (t) => {
  const database = await createTestDatabase(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(twoFactor, {
    database: database.db,
    keys: HOST_KEYS,
    session: { secret: HOST_SESSION_SECRET, secure: false },
    rateLimit: false,
    accounts: { findUser: () => null, userId: (u: { id: string }) => u.id, label: (u: { id: string }) => u.id }
  })
  app.get('/go', { config: { twoFactor: false } }, async (_request, reply) => reply.redirect('/ā'))
  app.get('/gated', async (_request, reply) => reply.redirect('/ā?q=é', 303))
  app.get('/separator', { config: { twoFactor: false } }, async (_request, reply) => reply.redirect('/\u2028'))
  app.get('/surrogate', { config: { twoFactor: false } }, async (_request, reply) => reply.redirect('/\ud800'))
  app.get('/htmx', { config: { twoFactor: false } }, async (_request, reply) => reply.header('HX-Redirect', '/ā').header('HX-Location', '/ü').send(''))
  app.get('/ok', { config: { twoFactor: false } }, async () => ({ ok: true }))
  await app.ready()

  const expected: Array<[string, string, number]> = [['/go', '/%C4%81', 302], ['/gated', '/%C4%81?q=%C3%A9', 303], ['/separator', '/%E2%80%A8', 302], ['/surrogate', '/', 302]]
  for (const [url, location, status] of expected) {
    const response = await app.inject({ method: 'GET', url })
    t.equal(response.statusCode, status, `${url}: answered, not crashed`)
    t.equal(response.headers.location, location, `${url}: Location ${location}`)
  }
  const htmx = await app.inject({ method: 'GET', url: '/htmx' })
  t.equal(htmx.statusCode, 200)
  t.equal(htmx.headers['hx-redirect'], '/%C4%81', 'HX-Redirect percent-encoded')
  t.equal(htmx.headers['hx-location'], '/%C3%BC', 'HX-Location percent-encoded')
  t.equal((await app.inject({ method: 'GET', url: '/ok' })).statusCode, 200, 'the process still answers')
})
