// Builds the demo host app on a test database, with users, a fixed key ring and an
// injectable clock, and signs users in through it.
import type { FastifyInstance } from 'fastify'
import { Keyring, type TwoFactorEvent } from '../../plugin/index.ts'
import { base32Decode } from '../../plugin/core/base32.ts'
import { hotp, timeStep } from '../../plugin/core/totp.ts'
import { buildDemoApp, createDemoUser, ensureDemoSchema, type DemoAppOptions } from '../../demo-app/app.ts'
import { Client } from './client.ts'
import { createTestDatabase, type TestDatabase } from './db.ts'

export const PASSWORDS = { admin: 'admin-password-123', alice: 'alice-password-123', bob: 'bob-password-123' } as const
export const TEST_KEYS = Keyring.generateSpec('k1')
/** Cheap scrypt for test users: the suite signs in hundreds of times (the demo itself uses 16384). */
export const TEST_PASSWORD_COST = 1024
export const SESSION_SECRET = 'test-session-secret-that-is-long-enough-0123456789'

/** A clock tests move by hand: time is injected, never waited for. */
export class TestClock {
  constructor (public ms = Date.UTC(2026, 10, 22, 12, 0, 0)) {}
  now = (): number => this.ms
  advance (ms: number): void { this.ms += ms }
}

export interface Harness {
  app: FastifyInstance
  database: TestDatabase
  clock: TestClock
  events: TwoFactorEvent[]
  logs: string[]
  client (): Client
}

export interface HarnessOptions {
  users?: Array<{ username: string, password: string, role?: string }>
  app?: Partial<DemoAppOptions>
  /** Reuse a database (several apps on one database). */
  database?: TestDatabase
  clock?: TestClock
}

export async function createHarness (t: { teardown (fn: () => unknown): void }, options: HarnessOptions = {}): Promise<Harness> {
  const database = options.database ?? await createTestDatabase(t)
  const clock = options.clock ?? new TestClock()
  const events: TwoFactorEvent[] = []
  const logs: string[] = []
  const app = await buildDemoApp({
    database: database.db,
    keys: TEST_KEYS,
    sessionSecret: SESSION_SECRET,
    clock: clock.now,
    rateLimitPerMinute: 10_000,
    passwordCost: TEST_PASSWORD_COST,
    logger: { level: 'trace', stream: { write: (line: string) => { logs.push(line) } } },
    ...options.app,
    twoFactor: { onEvent: (event) => { events.push(event) }, ...options.app?.twoFactor }
  })
  t.teardown(() => app.close())
  await app.ready()
  if (options.database === undefined) {
    await ensureDemoSchema(database.db)
    const users = options.users ?? [
      { username: 'admin', password: PASSWORDS.admin, role: 'admin' },
      { username: 'alice', password: PASSWORDS.alice },
      { username: 'bob', password: PASSWORDS.bob }
    ]
    for (const user of users) {
      await createDemoUser(database.db, { ...user, passwordCost: TEST_PASSWORD_COST, createdAt: new Date(clock.ms) })
      await app.twoFactor.onUserCreated(user.username)
    }
  }
  return { app, database, clock, events, logs, client: () => new Client(app) }
}

/** The current code for a manual key as shown on the setup page ("ABCD EFGH …"). */
export function codeFor (manualKey: string, atMs: number, offsetSteps = 0): string {
  return hotp(base32Decode(manualKey), timeStep(atMs, 30) + offsetSteps, 'SHA1', 6)
}

/** Password step through the demo's login form. */
export async function passwordStep (client: Client, username: string, password: string, json = false) {
  await client.get('/login', { json })
  return await client.post('/login', { username, password }, { json })
}

/** Reads the manual key from the setup page HTML. */
export function manualKeyFrom (html: string): string {
  const match = /id="tf-manual-key" class="tf-key">([A-Z2-7 ]+)</.exec(html)
  if (match === null) throw new Error('no manual key on the page')
  return match[1]!
}

/** Enrols a user from scratch through the pages; returns the manual key and recovery codes. */
export async function enrol (h: Harness, username: string, password: string): Promise<{ client: Client, manualKey: string, recoveryCodes: string[] }> {
  const client = h.client()
  const login = await passwordStep(client, username, password)
  let setupPage = await client.get('/2fa/setup')
  if (login.headers.location === '/' || login.headers.location === undefined) setupPage = await client.get('/2fa/setup')
  const manualKey = manualKeyFrom(setupPage.body)
  const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, h.clock.ms) })
  if (confirm.statusCode !== 200) throw new Error(`confirm failed: ${confirm.statusCode} ${confirm.body.slice(0, 300)}`)
  const recoveryCodes = [...confirm.body.matchAll(/<li><code>([0-9A-Z-]{19})<\/code><\/li>/g)].map((m) => m[1]!)
  const finish = await client.post('/2fa/setup/finish')
  if (finish.statusCode >= 400) throw new Error(`finish failed: ${finish.statusCode}`)
  // The confirming code's step is used: later sign-ins must wait for the next step.
  h.clock.advance(30_000)
  return { client, manualKey, recoveryCodes }
}
