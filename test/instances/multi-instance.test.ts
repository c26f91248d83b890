// Several app instances behind a load balancer: two processes on their own ports,
// sharing one real Postgres (accounts, recovery codes, sessions in the plugin's store) and
// one Redis (@fastify/rate-limit's store). A browser may reach either on any request. The
// single-use, lockout, session and rate-limit rules must hold across them.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { createDemoUser, ensureDemoSchema } from '../../demo-app/app.ts'
import { createTestDatabase, usingPostgres } from '../helpers/db.ts'
import { codeFor, PASSWORDS, SESSION_SECRET, TEST_KEYS } from '../helpers/demo.ts'
import { statusCounts } from '../helpers/states.ts'
import { REDIS_URL, redisReachable } from '../helpers/redis.ts'

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url))
const RATE_LIMIT = 30

const missing = !usingPostgres()
  ? 'needs the real Postgres server shared by two processes (set DATABASE_URL)'
  : !await redisReachable() ? `needs Redis at ${REDIS_URL} for the shared rate limit (set REDIS_URL)` : false

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string, json: any }

/**
 * A browser over real HTTP: keeps its cookies and CSRF token whichever instance answered, and
 * sends from its own loopback address (127.0.0.x), since the rate limit counts per IP.
 */
class Browser {
  readonly cookies = new Map<string, string>()
  csrfToken = ''
  constructor (private readonly ip: string) {}

  async send (port: number, method: 'GET' | 'POST', path: string, body?: Record<string, unknown>): Promise<Answer> {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    if (payload !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'x-csrf-token': this.csrfToken })
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, localAddress: this.ip }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { text += chunk })
        res.on('end', () => {
          let json: unknown = null
          try { json = JSON.parse(text) } catch {}
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json })
        })
      })
      req.on('error', reject)
      req.end(payload)
    })
    for (const cookie of [answer.headers['set-cookie'] ?? []].flat()) {
      const [pair] = cookie.split(';')
      const [name, ...value] = pair!.split('=')
      if (value.join('=') === '' || /Expires=Thu, 01 Jan 1970/i.test(cookie)) this.cookies.delete(name!)
      else this.cookies.set(name!, value.join('='))
    }
    if (typeof answer.json?.csrfToken === 'string') this.csrfToken = answer.json.csrfToken
    return answer
  }

  get (port: number, path: string) { return this.send(port, 'GET', path) }
  post (port: number, path: string, body: Record<string, unknown> = {}) { return this.send(port, 'POST', path, body) }

  /** The password step on one instance (and the page before it, for the CSRF token). */
  async signIn (port: number, username: string, password: string): Promise<Answer> {
    await this.get(port, '/login')
    const answer = await this.post(port, '/login', { username, password })
    if (answer.json?.state === 'pending') await this.get(port, '/2fa/challenge')
    return answer
  }
}

function startInstance (t: { teardown (fn: () => unknown): void }, env: Record<string, string>): Promise<{ port: number, process: ChildProcess }> {
  const child = spawn(process.execPath, ['--import=tsx', SERVER], {
    env: { ...process.env, ...env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  }))
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`instance did not start: ${output.slice(-500)}`)), 30_000)
    const read = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /^listening (\d+)$/m.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ port: Number(match[1]), process: child })
      }
    }
    child.stdout!.on('data', read)
    child.stderr!.on('data', read)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`instance exited (${code}): ${output.slice(-500)}`)) })
  })
}

t.test('two instances on one Postgres and one Redis', { skip: missing }, async (t) => {
  const database = await createTestDatabase(t)
  await ensureDemoSchema(database.db)
  const users = ['alice', 'bob', 'carol', 'dave', 'erin'] as const
  for (const username of users) await createDemoUser(database.db, { username, password: `${username}-password-123` })
  const password = (username: typeof users[number]) => username === 'alice' || username === 'bob' ? PASSWORDS[username] : `${username}-password-123`

  const env = {
    DATABASE_URL: database.url!,
    REDIS_URL,
    REDIS_PREFIX: `tf-test-${randomBytes(6).toString('hex')}:`,
    TWO_FACTOR_KEYS: TEST_KEYS,
    SESSION_SECRET,
    RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT)
  }
  t.teardown(async () => {
    // The counters would expire within the minute anyway; leave the shared Redis as found.
    const redis = new Redis(REDIS_URL)
    const keys = await redis.keys(`${env.REDIS_PREFIX}*`)
    if (keys.length > 0) await redis.del(...keys)
    redis.disconnect()
  })
  // Started together: the migrations' advisory lock lets exactly one apply them.
  const [a, b] = await Promise.all([startInstance(t, env), startInstance(t, env)])
  t.not(a.port, b.port, `instances on ports ${a.port} and ${b.port}`)

  /** Enrols a user through instance A; the confirming code uses step T, so T+1 is still fresh. */
  const keys = new Map<string, string>()
  let ip = 10
  for (const username of users) {
    const browser = new Browser(`127.0.0.${ip++}`)
    t.equal((await browser.signIn(a.port, username, password(username))).json?.state, 'signed-in', `${username} has no 2FA yet`)
    const setup = await browser.get(a.port, '/2fa/setup')
    const manualKey = String(setup.json.manualKey)
    const confirmed = await browser.post(b.port, '/2fa/setup/confirm', { code: codeFor(manualKey, Date.now()) })
    t.equal(confirmed.status, 200, `${username}: the enrolment started on A is confirmed on B`)
    t.equal(confirmed.json?.recoveryCodes?.length, 10)
    await browser.post(a.port, '/2fa/setup/finish')
    keys.set(username, manualKey)
  }
  const next = (username: string) => codeFor(keys.get(username)!, Date.now(), 1)

  t.test('a code used on one instance is refused on the other', async (t) => {
    const onA = new Browser('127.0.0.30')
    t.equal((await onA.signIn(a.port, 'carol', password('carol'))).json?.state, 'pending')
    const code = next('carol')
    const used = await onA.post(a.port, '/2fa/challenge', { code })
    t.equal(used.json?.state, 'signed-in', 'signed in on A')
    const onB = new Browser('127.0.0.31')
    await onB.signIn(b.port, 'carol', password('carol'))
    const replay = await onB.post(b.port, '/2fa/challenge', { code })
    t.equal(replay.status, 422, 'the same code on B: refused')
    t.equal((await onB.get(b.port, '/')).status, 401, 'B’s session is still pending')
  })

  t.test('one code raced from 10 sessions on each instance: exactly one signs in', async (t) => {
    const racers = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const browser = new Browser(`127.0.0.${i < 10 ? 40 : 41}`)
      await browser.signIn(i < 10 ? a.port : b.port, 'dave', password('dave'))
      return { browser, port: i < 10 ? a.port : b.port }
    }))
    const code = next('dave')
    const answers = await Promise.all(racers.map(({ browser, port }) => browser.post(port, '/2fa/challenge', { code })))
    const counts = statusCounts(answers.map((x) => x.status))
    t.equal(counts[200], 1, 'one success across both instances')
    t.equal((counts[422] ?? 0) + (counts[423] ?? 0), 19, 'every other submission refused, no 5xx')
  })

  t.test('the failure counter and the lockout are shared', async (t) => {
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      const port = i % 2 === 0 ? a.port : b.port
      const browser = new Browser('127.0.0.50')
      await browser.signIn(port, 'bob', PASSWORDS.bob)
      statuses.push((await browser.post(port, '/2fa/challenge', { code: '000000' })).status)
    }
    t.same(statuses, [422, 422, 422, 422, 423], 'failures on A and B add up to one lockout')
    for (const port of [a.port, b.port]) {
      const browser = new Browser('127.0.0.51')
      await browser.signIn(port, 'bob', PASSWORDS.bob)
      const right = await browser.post(port, '/2fa/challenge', { code: next('bob') })
      t.equal(right.status, 423, `the right code on ${port === a.port ? 'A' : 'B'}: locked`)
    }
  })

  t.test('a session started on one instance continues on the other', async (t) => {
    const browser = new Browser('127.0.0.60')
    t.equal((await browser.signIn(a.port, 'alice', PASSWORDS.alice)).json?.state, 'pending', 'password on A')
    const prompt = await browser.get(b.port, '/2fa/challenge')
    t.equal(prompt.json?.state, 'pending', 'B knows the pending sign-in')
    const done = await browser.post(b.port, '/2fa/challenge', { code: next('alice') })
    t.equal(done.json?.state, 'signed-in', 'code on B')
    const home = await browser.get(a.port, '/')
    t.equal(home.status, 200, 'signed in on A too')
    t.equal(home.json?.user?.username, 'alice')
    await browser.post(a.port, '/logout')
    t.equal((await browser.get(b.port, '/')).status, 303, 'logged out on A: gone on B')
  })

  t.test(`the per-IP rate limit counts across both instances (${RATE_LIMIT} a minute)`, async (t) => {
    const browser = new Browser('127.0.0.70')
    await browser.signIn(a.port, 'erin', password('erin'))
    const statuses: number[] = []
    for (let i = 0; i < RATE_LIMIT + 6; i++) {
      const port = i % 2 === 0 ? a.port : b.port
      statuses.push((await browser.post(port, '/2fa/challenge', { code: '000000' })).status)
    }
    const counts = statusCounts(statuses)
    t.equal(counts[429], 6, `requests beyond ${RATE_LIMIT} in total are refused, whichever instance gets them`)
    t.ok(statuses.slice(0, RATE_LIMIT).every((s) => s !== 429), 'none before')
  })
})
