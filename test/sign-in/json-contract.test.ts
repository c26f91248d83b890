// The JSON contract, as a plain fetch client sees it. The attacker review found JSON clients
// stranded: answers that regenerated the session handed out no token (or the old session's),
// so the next POST failed the CSRF check unless the client fetched a page first; and answers
// that moved the sign-in said where to go in different fields (`redirect` here, `next` there).
// This client sends `Accept: application/json` and the `x-csrf-token` of the answer before,
// never an extra GET for a token, and checks every answer: a string `csrfToken` always; `next`
// (a path on this site) and no `redirect` on every answer that moves the sign-in.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { codeFor } from '../helpers/demo.ts'
import { createHost, type Host } from '../fixtures/host.ts'
import { enrolled, PASSWORD, SAFE_PATH } from './support.ts'

interface Answer {
  status: number
  body: Record<string, unknown>
}

/** A fetch-like JSON client: a cookie jar, and the token of the last answer. Nothing else. */
class FetchClient {
  private readonly cookies = new Map<string, string>()
  private token: string | undefined
  constructor (private readonly t: Test, private readonly app: FastifyInstance) {}

  async get (url: string): Promise<Answer> {
    return await this.send('GET', url)
  }

  async post (url: string, body: Record<string, unknown> = {}): Promise<Answer> {
    return await this.send('POST', url, body)
  }

  /** A look at where the session stands that is not part of the flow (its token is not kept). */
  async peek (): Promise<{ userId: string | null, state: string }> {
    const response = await this.app.inject({ method: 'GET', url: '/', headers: this.headers() })
    const body = JSON.parse(response.body) as { userId?: string | null, state?: string, error?: string }
    return { userId: body.userId ?? null, state: body.state ?? body.error ?? '?' }
  }

  private headers (): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    return headers
  }

  private async send (method: 'GET' | 'POST', url: string, body?: Record<string, unknown>): Promise<Answer> {
    const headers = this.headers()
    if (method === 'POST') {
      headers['content-type'] = 'application/json'
      if (this.token !== undefined) headers['x-csrf-token'] = this.token
    }
    const response = await this.app.inject({ method, url, headers, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) })
    for (const cookie of response.cookies as Array<{ name: string, value: string, maxAge?: number }>) {
      if (cookie.value === '' || cookie.maxAge === 0) this.cookies.delete(cookie.name)
      else this.cookies.set(cookie.name, cookie.value)
    }
    const what = `${method} ${url} (${response.statusCode})`
    this.t.match(String(response.headers['content-type']), /^application\/json/, `${what}: a JSON answer`)
    const parsed = JSON.parse(response.body) as Record<string, unknown>
    this.t.type(parsed.csrfToken, 'string', `${what}: has a csrfToken`)
    this.t.notOk('redirect' in parsed, `${what}: no "redirect" field`)
    if (typeof parsed.csrfToken === 'string') this.token = parsed.csrfToken
    return { status: response.statusCode, body: parsed }
  }
}

/** An answer that moves the sign-in: 200, the state it left, and `next` on this site. */
function moved (t: Test, answer: Answer, state: string, next: string, what: string): boolean {
  const shape = { status: answer.status, state: answer.body.state, next: answer.body.next }
  const ok = t.same(shape, { status: 200, state, next }, `${what}: 200, state ${state}, next ${next}`)
  return t.match(answer.body.next, SAFE_PATH, `${what}: next is a path on this site`) && ok
}

/** The next POST with the token just handed out passes the CSRF check (a wrong step-up code: refused for itself). */
async function tokenWorks (t: Test, client: FetchClient, after: string): Promise<void> {
  const probe = await client.post('/2fa/step-up', { code: '000000' })
  t.not(probe.body.error, 'csrf', `the token handed out by ${after} works for the next POST (${probe.status} ${String(probe.body.error)})`)
}

async function start (t: Test, host: Host, userId: string): Promise<{ client: FetchClient, login: Answer }> {
  const client = new FetchClient(t, host.app)
  const page = await client.get('/login')
  t.equal(page.status, 200, 'the login page (the only GET before the first POST)')
  const login = await client.post('/login', { username: userId, password: PASSWORD[userId] })
  return { client, login }
}

t.test('password → code → signed in → sign out, each POST with the token of the answer before', async (t) => {
  const host = await createHost(t)
  const { manualKey } = await enrolled(host, 'alice')
  const { client, login } = await start(t, host, 'alice')
  moved(t, login, 'pending', '/2fa/challenge', 'the password (a new session)')

  const wrong = await client.post('/2fa/challenge', { code: '000000' })
  t.equal(wrong.status, 422, 'a wrong code: 422')
  t.equal(wrong.body.error, 'invalid_code')
  const right = await client.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) })
  moved(t, right, 'signed-in', '/', 'the code (a new session), with the token of the refusal')
  t.equal((await client.peek()).userId, 'alice', 'signed in')
  await tokenWorks(t, client, 'the code')

  const logout = await client.post('/2fa/logout')
  // What follows needs the sign-out's token: without it, only more failures of the same cause.
  if (!moved(t, logout, 'anonymous', '/login', 'sign out')) return
  t.equal((await client.peek()).state, 'anonymous', 'signed out')

  host.clock.advance(30_000)
  const again = await client.post('/login', { username: 'alice', password: PASSWORD.alice })
  moved(t, again, 'pending', '/2fa/challenge', 'the password again, with the token of the sign-out')
  const logoutPending = await client.post('/2fa/logout')
  moved(t, logoutPending, 'anonymous', '/login', 'sign out at the code prompt, with the token of the password step')
})

t.test('the forced wizard: password → wizard → confirm → finish', async (t) => {
  const host = await createHost(t)
  await host.app.twoFactor.setRequired('alice', true, { actor: 'cli' })
  const { client, login } = await start(t, host, 'alice')
  moved(t, login, 'pending-setup', '/2fa/setup', 'the password (a new session)')

  const wizard = await client.get('/2fa/setup')
  t.equal(wizard.status, 200, 'the wizard')
  t.type(wizard.body.manualKey, 'string', 'the secret to scan')
  const wrong = await client.post('/2fa/setup/confirm', { code: '000000' })
  t.equal(wrong.status, 422, 'a wrong code, with the wizard’s token: 422')
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(wizard.body.manualKey as string, host.clock.ms) })
  t.equal(confirm.status, 200, 'confirmed, with the token of the refusal')
  t.equal((confirm.body.recoveryCodes as unknown[]).length, 10, 'the recovery codes')
  const finish = await client.post('/2fa/setup/finish')
  moved(t, finish, 'signed-in', '/', 'finish (a new session), with the confirm’s token')
  t.equal((await client.peek()).userId, 'alice', 'signed in')
  await tokenWorks(t, client, 'finish')
  moved(t, await client.post('/2fa/logout'), 'anonymous', '/login', 'sign out')
})

t.test('turning 2FA on while signed in: wizard → confirm → finish', async (t) => {
  const host = await createHost(t)
  const { client, login } = await start(t, host, 'bob')
  moved(t, login, 'signed-in', '/', 'the password (no 2FA yet: signed in)')
  const wizard = await client.get('/2fa/setup')
  t.equal(wizard.status, 200)
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(wizard.body.manualKey as string, host.clock.ms) })
  t.equal(confirm.status, 200, 'confirmed, with the wizard’s token')
  moved(t, await client.post('/2fa/setup/finish'), 'signed-in', '/2fa/settings', 'finish, with the confirm’s token')
  t.equal((await client.peek()).userId, 'bob')
  moved(t, await client.post('/2fa/logout'), 'anonymous', '/login', 'sign out')
})

t.test('skip: password → skip → signed in → sign out', async (t) => {
  const host = await createHost(t)
  const { client, login } = await start(t, host, 'admin')
  moved(t, login, 'pending-setup', '/2fa/setup', 'the password (admins are required: the wizard)')
  const skip = await client.post('/2fa/setup/skip')
  moved(t, skip, 'signed-in', '/', 'skip (a new session), with the password step’s token')
  t.equal((await client.peek()).userId, 'admin', 'signed in')
  await tokenWorks(t, client, 'skip')
  if (!moved(t, await client.post('/2fa/logout'), 'anonymous', '/login', 'sign out')) return
  const again = await client.post('/login', { username: 'admin', password: PASSWORD.admin })
  moved(t, again, 'pending-setup', '/2fa/setup', 'the password again, with the sign-out’s token')
  moved(t, await client.post('/2fa/logout'), 'anonymous', '/login', 'sign out in the forced wizard, with the password step’s token')
})
