// Small helpers the attack files share: getting clients into a given sign-in state, reading
// the account row an attack is aimed at, and the session id behind a cookie.
import { eq } from 'drizzle-orm'
import { accounts, recoveryCodes } from '../../plugin/db/schema.ts'
import type { Client } from './client.ts'
import { codeFor, passwordStep, type Harness } from './demo.ts'

/** A client that has passed the password and sits on the code prompt. */
export async function pendingClient (h: Harness, username: string, password: string): Promise<Client> {
  const client = h.client()
  const login = await passwordStep(client, username, password)
  if (login.headers.location !== '/2fa/challenge') throw new Error(`${username} is not pending: ${login.statusCode} ${String(login.headers.location)}`)
  await client.get('/2fa/challenge')
  return client
}

/** Many pending clients at once (the password step is scrypt, so they are made in parallel). */
export async function pendingClients (h: Harness, username: string, password: string, n: number): Promise<Client[]> {
  return await Promise.all(Array.from({ length: n }, async () => await pendingClient(h, username, password)))
}

/** Signs a user in with the current code and moves the clock on a step, so the next code is fresh. */
export async function signedInClient (h: Harness, username: string, password: string, manualKey: string): Promise<Client> {
  const client = await pendingClient(h, username, password)
  const done = await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms) })
  if (done.statusCode !== 303) throw new Error(`sign-in failed: ${done.statusCode}`)
  h.clock.advance(30_000)
  return client
}

export async function accountOf (h: Harness, userId: string) {
  const rows = await h.database.db.select().from(accounts).where(eq(accounts.userId, userId))
  return rows[0]
}

/** Test set-up between rounds: a clean failure counter and no lock (as after a success). */
export async function clearFailures (h: Harness, userId: string): Promise<void> {
  await h.database.db.update(accounts).set({ failedAttempts: 0, lockouts: 0, lockedUntil: null }).where(eq(accounts.userId, userId))
}

export async function unusedRecoveryCodes (h: Harness, userId: string): Promise<number> {
  const rows = await h.database.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, userId))
  return rows.filter((row) => row.usedAt === null).length
}

/** The ten codes shown once, from the page that shows them. */
export function recoveryCodesIn (html: string): string[] {
  return [...html.matchAll(/<li><code>([0-9A-Z-]{19})<\/code><\/li>/g)].map((m) => m[1]!)
}

/** The session id inside a signed session cookie (`<sid>.<signature>`). */
export function sessionIdOf (client: Client): string {
  const cookie = client.sessionCookie()
  if (cookie === undefined) throw new Error('no session cookie')
  const value = decodeURIComponent(cookie)
  return value.slice(0, value.lastIndexOf('.'))
}

export function statusCounts (statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1
  return counts
}

/**
 * A POST from a given IP address with the client's cookies and CSRF token (the shared Client
 * always comes from 127.0.0.1). Cookies the answer sets are kept, as a browser would.
 */
export async function postFrom (h: Harness, client: Client, ip: string, url: string, body: Record<string, string>, options: { json?: boolean, headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = {
    ...options.headers,
    cookie: [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
    'x-csrf-token': client.csrfToken ?? ''
  }
  if (options.json === true) headers.accept = 'application/json'
  const response = await h.app.inject({ method: 'POST', url, remoteAddress: ip, headers, payload: body })
  for (const cookie of response.cookies as Array<{ name: string, value: string }>) client.cookies.set(cookie.name, cookie.value)
  return response
}
