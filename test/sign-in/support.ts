// What the sign-in tests share: who a client is signed in as, enrolling and signing in through
// the minimal host as a JSON client, and what a redirect target may look like. Not a test file
// itself (tap runs only *.test.ts).
import type { LightMyRequestResponse } from 'fastify'
import { Client } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { login, type Host } from '../fixtures/host.ts'

export const PASSWORD: Record<string, string> = { admin: 'admin-password', alice: 'alice-password', bob: 'bob-password' }

export interface Who {
  status: number
  /** The signed-in user, or null. */
  userId: string | null
  /** The host's view of the request, or the gate's error code when it refused it. */
  state: string
}

/** What the host's GET / says of this client (a JSON request). */
export async function whoIs (client: Client): Promise<Who> {
  const response = await client.get('/', { json: true })
  const body = JSON.parse(response.body) as { userId?: string | null, state?: string, error?: string }
  return { status: response.statusCode, userId: body.userId ?? null, state: body.state ?? body.error ?? '?' }
}

/** A client holding the same cookies as `client` (a copy of the cookie jar). */
export function sameCookies (host: { client (): Client }, client: Client): Client {
  const copy = host.client()
  for (const [name, value] of client.cookies) copy.cookies.set(name, value)
  copy.csrfToken = client.csrfToken
  return copy
}

/** The wizard's secret for this client's session, as JSON. */
export async function manualKeyOf (client: Client): Promise<string> {
  const setup = await client.get('/2fa/setup', { json: true })
  if (setup.statusCode !== 200) throw new Error(`GET /2fa/setup: ${setup.statusCode} ${setup.body.slice(0, 200)}`)
  const { manualKey } = JSON.parse(setup.body) as { manualKey?: string }
  if (manualKey === undefined) throw new Error(`GET /2fa/setup gave no manual key: ${setup.body.slice(0, 200)}`)
  return manualKey
}

/** Signs `userId` in (no 2FA yet, or required) and enrols; the clock moves past the confirming code's step. */
export async function enrolled (host: Host, userId: string): Promise<{ client: Client, manualKey: string }> {
  const client = host.client()
  await login(client, userId, PASSWORD[userId]!)
  const manualKey = await manualKeyOf(client)
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  if (confirm.statusCode !== 200) throw new Error(`confirm: ${confirm.statusCode} ${confirm.body.slice(0, 200)}`)
  const finish = await client.post('/2fa/setup/finish', {}, { json: true })
  if (finish.statusCode !== 200) throw new Error(`finish: ${finish.statusCode} ${finish.body.slice(0, 200)}`)
  host.clock.advance(30_000)
  return { client, manualKey }
}

/** Password, then the code (JSON); throws unless signed in. The clock moves past the code's step. */
export async function signedInWithCode (host: Host, userId: string, manualKey: string): Promise<Client> {
  const client = host.client()
  const pending = await login(client, userId, PASSWORD[userId]!)
  if (JSON.parse(pending.body).state !== 'pending') throw new Error(`login: ${pending.body.slice(0, 200)}`)
  const done = await client.post('/2fa/challenge', { code: codeFor(manualKey, host.clock.ms) }, { json: true })
  if (done.statusCode !== 200) throw new Error(`challenge: ${done.statusCode} ${done.body.slice(0, 200)}`)
  host.clock.advance(30_000)
  return client
}

/** A path on this site that a header can carry: printable ASCII, one leading "/", no backslash. */
export const SAFE_PATH = /^\/(?![/\\])[\x21-\x7e]*$/

/** Every redirect target an answer carries: `Location`, `HX-Redirect`, `HX-Location`, JSON `next`. */
export function redirectTargets (response: LightMyRequestResponse): string[] {
  const found: string[] = []
  for (const name of ['location', 'hx-redirect', 'hx-location']) {
    const value = response.headers[name]
    if (typeof value === 'string') found.push(value)
  }
  if (String(response.headers['content-type'] ?? '').includes('application/json')) {
    const body = JSON.parse(response.body) as { next?: unknown }
    if (typeof body.next === 'string') found.push(body.next)
  }
  return found
}
