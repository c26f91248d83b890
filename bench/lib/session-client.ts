// Signs bench users in over real HTTP, as a browser would, and hands back what a later
// request needs: the session cookie and the CSRF token of that session. Used to prepare
// sessions and to sign thousands of users in, so it is plain node:http with keep-alive:
// fetch cost the runner about 1 ms of CPU a request, as much as the app spent answering.
import { Agent, request as httpRequest } from 'node:http'

export interface PreparedSession {
  userId: string
  cookie: string
  csrfToken: string
}

interface Answer {
  status: number
  setCookies: string[]
  body: string
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 })

function send (method: 'GET' | 'POST', url: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method, agent, headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) } }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => resolve({
        status: response.statusCode ?? 0,
        setCookies: response.headers['set-cookie'] ?? [],
        body: Buffer.concat(chunks).toString('utf8')
      }))
      response.on('error', reject)
    })
    request.on('error', reject)
    request.end(body)
  })
}

function sessionCookieOf (answer: Answer, previous: string | undefined): string | undefined {
  for (const header of answer.setCookies) {
    const pair = header.split(';', 1)[0]!
    if (pair.startsWith('tf.sid=')) return pair
  }
  return previous
}

function json (answer: Answer, what: string): Record<string, unknown> {
  if (answer.status < 200 || answer.status >= 300) throw new Error(`${what}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`)
  return JSON.parse(answer.body) as Record<string, unknown>
}

const JSON_ACCEPT = { accept: 'application/json' }

/** GET /login, POST /login with the password: the session is pending (or signed in). */
export async function passwordStep (origin: string, username: string, password: string): Promise<{ cookie: string, state: string }> {
  const page = await send('GET', `${origin}/login`, JSON_ACCEPT)
  const { csrfToken } = json(page, 'GET /login') as { csrfToken: string }
  let cookie = sessionCookieOf(page, undefined)
  const login = await send('POST', `${origin}/login`,
    { ...JSON_ACCEPT, 'content-type': 'application/json', 'x-csrf-token': csrfToken, cookie: cookie ?? '' },
    JSON.stringify({ username, password }))
  cookie = sessionCookieOf(login, cookie)
  const { state } = json(login, `POST /login (${username})`) as { state: string }
  if (cookie === undefined) throw new Error('no session cookie after /login')
  return { cookie, state }
}

/** A pending sign-in waiting at the challenge, with the CSRF token its form would carry. */
export async function pendingChallenge (origin: string, username: string, password: string): Promise<PreparedSession> {
  const { cookie, state } = await passwordStep(origin, username, password)
  if (state !== 'pending') throw new Error(`${username}: expected a pending sign-in, got ${state}`)
  const challenge = await send('GET', `${origin}/2fa/challenge`, { ...JSON_ACCEPT, cookie })
  const { csrfToken } = json(challenge, 'GET /2fa/challenge') as { csrfToken: string }
  return { userId: username, cookie: sessionCookieOf(challenge, cookie)!, csrfToken }
}

/** Completes a pending sign-in with a code (form post, as the page sends it). */
export async function submitCode (origin: string, session: PreparedSession, code: string): Promise<{ status: number, cookie: string }> {
  const answer = await send('POST', `${origin}/2fa/challenge`,
    { 'content-type': 'application/x-www-form-urlencoded', cookie: session.cookie },
    new URLSearchParams({ _csrf: session.csrfToken, code }).toString())
  return { status: answer.status, cookie: sessionCookieOf(answer, session.cookie)! }
}

/** Runs `task` over `items` with a fixed number in flight. */
export async function inParallel<T, R> (items: readonly T[], concurrency: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await task(items[index]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return results
}
