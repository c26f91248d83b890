// Model-based property test of the sign-in rule, over the real HTTP surface.
//
// The invariant, checked after every step of random interleavings of two or three browser
// sessions of one account and of admin actions:
//
//   No session is signed in for the account unless, in that very session, one of these
//   happened, decided on the account's state at that moment:
//     1. the password step, while the account was neither enrolled nor required;
//     2. a valid code or an unused recovery code of the account was accepted at the code prompt;
//     3. "Skip for now", while the policy allowed it and the account was not enrolled;
//     4. the wizard's confirm step succeeded in this session, then "finish" was posted, and the
//        account's secret is still the one confirmed;
//     5. the password step in a browser holding the latest token of a trusted browser ("don't
//        ask again", ticked at a code prompt of this account) given under the account's current
//        secret, and not forgotten since. Only ways 2 and 4 (and a code at step-up) count as a
//        factor proven in the session: a trusted browser never satisfies a step-up.
//   And a secret shown to one session never becomes the account's unless that same session
//   confirms it.
//   An ended session (sign out one / all other sessions, and the changes that end sessions) is
//   signed out at its next request; trust is gone when 2FA is turned off, reset or replaced, and
//   when the browser is forgotten; a trust token used a second time (a copied cookie) revokes it.
//
// Why: each step reads the account afresh and a session only remembers references, so the
// dangerous bugs are interleavings: a wizard finished after another browser (or an admin) has
// changed the account, a skip decided on a policy that has since changed, a code of a secret
// that another session was shown, a session that outlives a reset, a trusted browser that
// outlives the secret it skipped. Examples pin a few of those; this walks many.
//
// The model below is a plain statement of the rule and of the documented effects of each action
// (who gets which secret, which changes end which sessions, which forget which browsers); it
// does not use the plugin's state machine. After every command each session is observed through
// the host's gated `GET /` (200 with the user: signed in; 401 to the code prompt or to the wizard;
// 200 with nobody: anonymous), and the account's active secret, its trusted browsers and its
// stored sessions are read from the database; each browser's trust cookie is compared with the
// one the model expects it to hold. A session signed in that the model has no permitted way for,
// a step-up satisfied without a code proven in the session, or a secret that the model did not
// see its own session confirm, is a violation; any other difference is a disagreement between
// model and app (reported as such).
//
// Each run gets a fresh account (same password): the failure counter that wrong codes raise
// can't be cleared through the API, and independent runs make a counterexample replay the same.
// One app (and one database) serves all runs; sessions and browsers of earlier runs' accounts
// are the "someone else's" targets of "sign out" and "forget" (which must refuse them).
//
// MODEL_RUNS (default 200) and MODEL_COMMANDS (default 14) raise the depth, MODEL_SEED (default
// 4242) picks another walk. With DATABASE_URL set it runs on that Postgres server. A default run
// takes about a minute on PGlite on a 2-core machine (tap's per-file timeout is 300 s, see
// .taprc; more runs need `--timeout`).
import t from 'tap'
import fc from 'fast-check'
import { and, eq, gt } from 'drizzle-orm'
import type { LightMyRequestResponse } from 'fastify'
import { Keyring } from '../../plugin/index.ts'
import { base32Encode } from '../../plugin/core/base32.ts'
import { accounts, sessions as storedSessions, trustedDevices } from '../../plugin/db/schema.ts'
import { hashSessionId, sessionHandle } from '../../plugin/db/session-store.ts'
import type { Client } from '../helpers/client.ts'
import { codeFor, TestClock } from '../helpers/demo.ts'
import { createHost, HOST_KEYS, HOST_SESSION_SECRET, type Host } from '../fixtures/host.ts'

const RUNS = Number(process.env.MODEL_RUNS ?? 200)
const MAX_COMMANDS = Number(process.env.MODEL_COMMANDS ?? 14)
const SEED = Number(process.env.MODEL_SEED ?? 4242)
const MAX_SESSIONS = 3

const PASSWORD = 'alice-password'
const ACTOR = { actor: 'model-test' }
const STEP_MS = 30_000
const MINUTE_MS = 60_000
const HOUR_MS = 60 * MINUTE_MS
/** The host's `GET /export` asks for a code entered within 10 minutes (step-up). */
const EXPORT_FRESH_MS = 10 * MINUTE_MS
/** The trusted-browser cookie (no `__Host-` prefix: the test host is plain HTTP). */
const TRUST_COOKIE = 'tf.trust'
/** How long "don't ask again" lasts (the option's default). */
const TRUST_DAYS = 30
const KEYRING = Keyring.fromEnv(HOST_KEYS)

// ---------------------------------------------------------------------------------------------
// The model

type Phase = 'anonymous' | 'code-prompt' | 'wizard' | 'signed-in'
/** The permitted ways in (the five of the rule; a recovery code is way 2 too). */
type Way = 'password' | 'code' | 'recovery code' | 'skip' | 'finish' | 'trusted browser'

interface SessionModel {
  /** Where the session stands in its sign-in. */
  phase: Phase
  /** The permitted way that signed this session in, since its last sign-out (or since it was ended); null: none. */
  signedInBy: Way | null
  /** The pending secret this session holds (a manual key, or an `unseen#n` marker for one it was never shown). */
  held: string | null
  /** The secret whose confirm step succeeded in this session since its password step. */
  confirmed: string | null
  /** When (test clock) that confirm succeeded: the proven factor a finished wizard signs in with. */
  confirmedAt: number | null
  /** When a code or recovery code was last proven in this session (what step-up asks for); never set by a trusted browser. */
  verifiedAt: number | null
  /**
   * The trust cookie (`<id>.<token>`) this session's browser holds, as the model expects it. It
   * belongs to the browser, not the session: sign-out and ended sessions leave it.
   */
  trust: string | null
}

/** A trusted browser as the model knows it (by the id in its cookie). */
interface Device {
  /** The account's secret when trust was given: trust counts only while that is still the account's. */
  secret: string
  /** The token the latest use gave (or trust gave); the one before it. */
  latest: string
  previous: string | null
  /** Not forgotten, revoked or cleared with the factor. */
  alive: boolean
  /** The session whose code prompt gave it. */
  trustedIn: number
  /** Fixed when trust was given (30 days, the default), never extended by use. */
  expiresAt: number
}

interface Model {
  userId: string
  sessions: SessionModel[]
  account: {
    /** The active secret (manual key without spaces): the one whose codes sign in. */
    secret: string | null
    /** The session whose confirm made `secret` the account's. */
    confirmedBy: number | null
    /** The admin's per-account flag. */
    required: boolean
    /** The newest TOTP step accepted for the account (a code is good once). */
    lastUsedStep: number | null
    /** The account's recovery codes: code → still unused. */
    recovery: Map<string, boolean>
  }
  policy: { requireAll: boolean, allowSkip: boolean }
  /** Pending secrets that still exist (shown keys and unseen markers). */
  pending: Set<string>
  /** Every key shown in this run, and the one session it was shown to. */
  shownTo: Map<string, number>
  /** Every recovery code issued in this run (current and replaced ones). */
  issued: string[]
  /** What the last confirm request sent: which session, with a code of which key. */
  lastConfirm: { session: number, key: string | null } | null
  /** Every browser trusted in this run, by id. */
  devices: Map<string, Device>
  unseenCount: number
  trace: string[]
}

interface Real {
  host: Host
  userId: string
  clients: Client[]
}

function newModel (userId: string, sessions: number): Model {
  return {
    userId,
    sessions: Array.from({ length: sessions }, () => ({ phase: 'anonymous', signedInBy: null, held: null, confirmed: null, confirmedAt: null, verifiedAt: null, trust: null })),
    account: { secret: null, confirmedBy: null, required: false, lastUsedStep: null, recovery: new Map() },
    policy: { requireAll: false, allowSkip: true },
    pending: new Set(),
    shownTo: new Map(),
    issued: [],
    lastConfirm: null,
    devices: new Map(),
    unseenCount: 0,
    trace: []
  }
}

const enrolled = (m: Model): boolean => m.account.secret !== null
/** The account must use 2FA: the admin said so, or "require for everyone" (alice's role is not exempt). */
const requiredNow = (m: Model): boolean => m.account.required || m.policy.requireAll
/**
 * "Skip for now" is allowed when nothing requires the account, or when every requirement allows
 * it: an admin's requirement when the policy allows skipping, "everyone" while in its grace
 * period (seven days from switching it on: never over within a run).
 */
const skipAllowedNow = (m: Model): boolean => !requiredNow(m) || !m.account.required || m.policy.allowSkip
const isUnseen = (key: string | null): boolean => key !== null && key.startsWith('unseen#')

/** The session is over (its browser's trust cookie stays). */
function end (s: SessionModel): void {
  s.phase = 'anonymous'
  s.signedInBy = null
  s.held = null
  s.confirmed = null
  s.confirmedAt = null
  s.verifiedAt = null
}

/**
 * A sign-in completed by `way`; a wizard the session had open is over (a later one starts
 * afresh). `verifiedAt`: when the factor it proves was proven (null: none, as for a trusted browser).
 */
function signIn (s: SessionModel, way: Way, verifiedAt: number | null): void {
  s.phase = 'signed-in'
  s.signedInBy = way
  s.held = null
  s.verifiedAt = verifiedAt
  stats.ways[way]++
}

/** Every trusted browser of the account is forgotten. */
function forgetDevices (m: Model): void {
  for (const device of m.devices.values()) device.alive = false
}
const aliveDevices = (m: Model): string[] => [...m.devices].filter(([, d]) => d.alive).map(([id]) => id)

/** Admin reset, lifting the requirement, turning 2FA off: no secret, no pending secrets, no recovery codes, no trusted browsers. */
function clearEnrolment (m: Model): void {
  m.account.secret = null
  m.account.confirmedBy = null
  m.account.lastUsedStep = null
  m.account.recovery = new Map()
  m.pending.clear()
  forgetDevices(m)
}

const stepOf = (ms: number): number => Math.floor(ms / STEP_MS)
/** The step a code is taken for: one of `key`'s codes within a step either side of now, nearest first. */
function matchingStep (key: string | null, code: string, now: number): number | null {
  if (key === null || isUnseen(key)) return null
  for (const offset of [0, -1, 1]) if (codeFor(key, now, offset) === code) return stepOf(now) + offset
  return null
}

const normalise = (manualKey: string): string => manualKey.replace(/\s+/g, '').toUpperCase()

// ---------------------------------------------------------------------------------------------
// Talking to the app

function brief (response: LightMyRequestResponse): string {
  let text = response.body
  try {
    const { csrfToken: _t, qrSvg: _q, otpauthUri: _u, message: _m, ...rest } = JSON.parse(response.body) as Record<string, unknown>
    text = JSON.stringify(rest)
  } catch {}
  return `${response.statusCode} ${text.slice(0, 140)}`
}

function json (response: LightMyRequestResponse): Record<string, unknown> {
  try {
    return JSON.parse(response.body) as Record<string, unknown>
  } catch {
    return {}
  }
}

async function post (r: Real, i: number, url: string, body: Record<string, unknown> = {}): Promise<LightMyRequestResponse> {
  return await r.clients[i]!.post(url, body, { json: true })
}

/** Where a session stands, as the host's gated page sees it. */
async function observe (r: Real, i: number): Promise<string> {
  const response = await r.clients[i]!.get('/', { json: true })
  const body = json(response)
  if (response.statusCode === 200 && body.userId === r.userId) return 'signed-in'
  if (response.statusCode === 200 && body.userId === null) return 'anonymous'
  if (response.statusCode === 401 && body.next === '/2fa/challenge') return 'code-prompt'
  if (response.statusCode === 401 && body.next === '/2fa/setup') return 'wizard'
  return `unexpected: ${brief(response)}`
}

/** The account's active secret, from its row (opened with the host's key ring). */
async function activeSecret (r: Real): Promise<string | null> {
  const rows = await r.host.database.db.select({ secret: accounts.secret, enabledAt: accounts.enabledAt })
    .from(accounts).where(eq(accounts.userId, r.userId))
  const row = rows[0]
  if (row?.secret == null || row.enabledAt == null) return null
  return base32Encode(KEYRING.open(row.secret, r.userId))
}

/** The trusted browsers the database holds for the account (unexpired): id → expiry (ms). */
async function storedDeviceExpiries (r: Real): Promise<Map<string, number>> {
  const rows = await r.host.database.db.select({ id: trustedDevices.id, expiresAt: trustedDevices.expiresAt }).from(trustedDevices)
    .where(and(eq(trustedDevices.userId, r.userId), gt(trustedDevices.expiresAt, new Date(r.host.clock.ms))))
  return new Map(rows.map((row) => [row.id, row.expiresAt.getTime()]))
}
async function storedDevices (r: Real): Promise<string[]> {
  return [...(await storedDeviceExpiries(r)).keys()].sort()
}

/** How many sessions of the account the store holds (unexpired). */
async function storedSessionCount (r: Real): Promise<number> {
  const rows = await r.host.database.db.select({ sidHash: storedSessions.sidHash }).from(storedSessions)
    .where(and(eq(storedSessions.userId, r.userId), gt(storedSessions.expiresAt, new Date(r.host.clock.ms))))
  return rows.length
}

async function sessionStored (r: Real, sidHash: string): Promise<boolean> {
  const rows = await r.host.database.db.select({ sidHash: storedSessions.sidHash }).from(storedSessions).where(eq(storedSessions.sidHash, sidHash))
  return rows.length === 1
}

async function deviceStored (r: Real, id: string): Promise<boolean> {
  const rows = await r.host.database.db.select({ id: trustedDevices.id }).from(trustedDevices).where(eq(trustedDevices.id, id))
  return rows.length === 1
}

/** The session id behind a browser's session cookie (`<id>.<signature>`), as the store hashes it. */
function sidHashOf (r: Real, i: number): string | null {
  const cookie = r.clients[i]!.sessionCookie()
  if (cookie === undefined) return null
  const value = decodeURIComponent(cookie)
  return hashSessionId(value.slice(0, value.lastIndexOf('.')))
}
/** The handle the session list names a browser's session by. */
function handleOf (r: Real, i: number): string | null {
  const sidHash = sidHashOf(r, i)
  return sidHash === null ? null : sessionHandle(sidHash)
}

const jarTrust = (r: Real, i: number): string | null => r.clients[i]!.cookies.get(TRUST_COOKIE) ?? null
function splitTrust (value: string | null): { id: string, token: string } | null {
  const match = value === null ? null : /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(value)
  return match === null ? null : { id: match[1]!, token: match[2]! }
}

/**
 * Sessions and browsers of earlier runs' accounts (someone else's, for this run's account):
 * "sign out" and "forget" must refuse them and leave them be.
 */
const elsewhere = { sessions: [] as Array<{ handle: string, sidHash: string }>, devices: [] as string[] }

async function rememberElsewhere (r: Real): Promise<void> {
  const sessions = await r.host.database.db.select({ sidHash: storedSessions.sidHash }).from(storedSessions).where(eq(storedSessions.userId, r.userId))
  elsewhere.sessions = [...elsewhere.sessions, ...sessions.map(({ sidHash }) => ({ sidHash, handle: sessionHandle(sidHash) }))].slice(-6)
  elsewhere.devices = [...elsewhere.devices, ...await storedDevices(r)].slice(-6)
}

class Failure extends Error {}

function fail (m: Model, problem: string): never {
  throw new Failure(`${problem}\n  trace:\n    ${m.trace.join('\n    ')}`)
}

/** The invariant (and the model's other predictions), after every command. */
async function verify (m: Model, r: Real, label: string): Promise<void> {
  const problems: string[] = []
  for (let i = 0; i < m.sessions.length; i++) {
    const s = m.sessions[i]!
    const seen = await observe(r, i)
    if (seen === 'signed-in' && s.signedInBy === null) {
      problems.push(`VIOLATION: s${i} is signed in, but no permitted way signed it in (the model has it at ${s.phase})`)
    } else if (s.signedInBy !== null && seen !== 'signed-in') {
      problems.push(`model disagreement: s${i} was signed in by ${s.signedInBy} and not ended, yet it is ${seen}`)
    } else if (seen !== s.phase) {
      problems.push(`model disagreement: s${i} is ${seen}, the model says ${s.phase}`)
    }
  }
  // Trust: the browsers the database holds are the ones the model has alive; each browser holds the cookie the model expects.
  const expiries = await storedDeviceExpiries(r)
  const devices = [...expiries.keys()].sort()
  const alive = aliveDevices(m).sort()
  for (const id of alive) {
    const expiry = expiries.get(id)
    const trustedUntil = m.devices.get(id)!.expiresAt
    if (expiry !== undefined && expiry !== trustedUntil) problems.push(`model disagreement: trusted browser ${id} lasts until ${new Date(expiry).toISOString()}, not the ${new Date(trustedUntil).toISOString()} fixed when trust was given (use never extends it)`)
  }
  if (devices.join() !== alive.join()) {
    const extra = devices.filter((id) => !alive.includes(id))
    const missing = alive.filter((id) => !devices.includes(id))
    const stale = extra.filter((id) => m.devices.has(id))
    if (stale.length > 0) problems.push(`VIOLATION: trusted browser(s) ${stale.map((id) => `${id} (trusted in s${m.devices.get(id)!.trustedIn})`).join(', ')} outlived what should have revoked them`)
    if (extra.length > stale.length) problems.push(`VIOLATION: the account has trusted browser(s) no session ticked "don't ask again" for: ${extra.filter((id) => !m.devices.has(id)).join(', ')}`)
    if (missing.length > 0) problems.push(`model disagreement: trusted browser(s) ${missing.join(', ')} are gone, the model has them alive`)
  }
  for (let i = 0; i < m.sessions.length; i++) {
    const held = jarTrust(r, i)
    if (held !== m.sessions[i]!.trust) problems.push(`model disagreement: s${i}'s browser holds the trust cookie ${held ?? 'none'}, the model expects ${m.sessions[i]!.trust ?? 'none'}`)
  }
  // Sessions: the store holds a row of the account for each session that is not signed out, and no other (an ended one, or the id before a regeneration).
  const stored = await storedSessionCount(r)
  const open = m.sessions.filter((s) => s.phase !== 'anonymous').length
  if (stored !== open) problems.push(`model disagreement: the store holds ${stored} session(s) of the account, the model ${open}`)
  const actual = await activeSecret(r)
  if (actual !== m.account.secret) {
    const owner = actual === null ? undefined : m.shownTo.get(actual)
    const expected = m.account.secret === null ? 'none' : `${m.account.secret} (confirmed in s${m.account.confirmedBy})`
    if (actual === null) {
      problems.push(`model disagreement: the account has no secret, the model expects ${expected}`)
    } else if (owner === undefined) {
      problems.push(`VIOLATION: the account's secret is ${actual}, which no session was shown (the model expects ${expected})`)
    } else if (m.lastConfirm?.session === owner && m.lastConfirm.key === actual) {
      problems.push(`model disagreement: s${owner} confirmed its own ${actual}, which the model refused (it expects ${expected})`)
    } else {
      problems.push(`VIOLATION: ${actual}, shown to s${owner}, became the account's without s${owner} confirming it (the model expects ${expected})`)
    }
  }
  if (problems.length > 0) fail(m, `after ${label}:\n  ${problems.join('\n  ')}`)
}

// ---------------------------------------------------------------------------------------------
// The actions: each sends its request and moves the model as the rule says

async function passwordStep (m: Model, r: Real, i: number, password = PASSWORD): Promise<void> {
  await r.clients[i]!.get('/login', { json: true })
  const s = m.sessions[i]!
  const sent = s.trust
  const response = await r.clients[i]!.post('/login', { username: m.userId, password }, { json: true })
  m.trace.push(`s${i} POST /login${password === PASSWORD ? '' : ' (wrong password)'}${sent === null ? '' : ` (with ${describeTrust(m, sent)})`} → ${brief(response)}`)
  if (password !== PASSWORD) return // the host refuses it: nothing changes
  end(s) // a new sign-in starts: nothing of the old one carries over
  if (enrolled(m)) {
    s.phase = 'code-prompt'
    presentTrust(m, r, i) // way 5, if the browser is trusted
  } else if (requiredNow(m)) s.phase = 'wizard'
  else signIn(s, 'password', null) // way 1
}

/** What a trust cookie is, in the model's words (for the trace). */
function describeTrust (m: Model, value: string): string {
  const parsed = splitTrust(value)
  const device = parsed === null ? undefined : m.devices.get(parsed.id)
  if (parsed === null || device === undefined) return `an unknown trust cookie ${value}`
  const token = parsed.token === device.latest ? 'latest' : parsed.token === device.previous ? 'replaced' : 'old'
  const state = !device.alive ? 'forgotten' : device.secret !== m.account.secret ? `given under ${device.secret}` : 'trusted'
  return `the ${token} token of ${state} browser ${parsed.id} (from s${device.trustedIn})`
}

/**
 * The password step in a browser that holds a trust cookie, the account enrolled: the latest
 * token of a live browser trusted under the account's current secret signs in (and is replaced
 * by a new one, same browser); the token before it (a copy used after the original) revokes the
 * browser and its cookie is cleared; anything else leaves the code prompt and the cookie as they are.
 */
function presentTrust (m: Model, r: Real, i: number): void {
  const s = m.sessions[i]!
  const parsed = splitTrust(s.trust)
  const device = parsed === null ? undefined : m.devices.get(parsed.id)
  if (parsed === null || device === undefined || !device.alive) return
  if (parsed.token === device.latest) {
    if (device.secret !== m.account.secret) return
    const held = jarTrust(r, i)
    const now = splitTrust(held)
    if (now?.id !== parsed.id || now.token === parsed.token) {
      fail(m, `model disagreement: s${i}'s trusted browser ${parsed.id} should sign in and get a new token of the same browser; it holds ${held ?? 'no trust cookie'}`)
    }
    device.previous = device.latest
    device.latest = now.token
    s.trust = held
    signIn(s, 'trusted browser', null) // way 5: no factor proven for step-up
    stats.trust.usedToSignIn++
    return
  }
  if (parsed.token === device.previous) {
    device.alive = false
    s.trust = null
    stats.trust.revokedByReuse++
  }
}

/** A code prompt answered with "don't ask again" ticked: the answer trusts a new browser (a cookie of an id not seen before). */
function trusted (m: Model, r: Real, i: number): void {
  const s = m.sessions[i]!
  const held = jarTrust(r, i)
  const parsed = splitTrust(held)
  if (parsed === null || held === s.trust || m.devices.has(parsed.id)) {
    fail(m, `model disagreement: s${i} signed in with "don't ask again" ticked, but its browser holds ${held === s.trust ? 'the trust cookie it had' : held ?? 'no trust cookie'}`)
  }
  m.devices.set(parsed.id, { secret: m.account.secret!, latest: parsed.token, previous: null, alive: true, trustedIn: i, expiresAt: r.host.clock.ms + TRUST_DAYS * 24 * HOUR_MS })
  s.trust = held
  stats.trust.given++
}

/** A wizard action from a forced setup whose account is enrolled by now: the code is asked instead. */
function wizardOfEnrolledAccount (m: Model, s: SessionModel): boolean {
  if (s.phase === 'wizard' && enrolled(m)) {
    s.phase = 'code-prompt'
    return true
  }
  return false
}

async function openWizard (m: Model, r: Real, i: number): Promise<void> {
  const response = await r.clients[i]!.get('/2fa/setup', { json: true })
  const shown = json(response).manualKey
  m.trace.push(`s${i} GET /2fa/setup → ${brief(response)}`)
  const s = m.sessions[i]!
  const getsSecret = !wizardOfEnrolledAccount(m, s) && (s.phase === 'wizard' || s.phase === 'signed-in')
  if (!getsSecret) {
    if (typeof shown === 'string') fail(m, `VIOLATION: s${i} (${s.phase}) was shown a secret`)
    return
  }
  if (typeof shown !== 'string') fail(m, `model disagreement: s${i} (${s.phase}) should be shown a secret: ${brief(response)}`)
  const key = normalise(shown)
  const owner = m.shownTo.get(key)
  if (owner !== undefined && owner !== i) fail(m, `VIOLATION: s${i} was shown the secret ${key} already shown to s${owner}`)
  // A pending secret is resumed while it exists (one it was never shown included).
  const resumes = s.held !== null && m.pending.has(s.held)
  if (resumes && !isUnseen(s.held) && s.held !== key) fail(m, `model disagreement: s${i} should be shown its pending ${s.held} again, got ${key}`)
  if (resumes && isUnseen(s.held)) m.pending.delete(s.held!)
  if (!resumes && owner !== undefined) fail(m, `model disagreement: s${i} should get a new secret, got its old ${key} again`)
  m.shownTo.set(key, i)
  m.pending.add(key)
  s.held = key
  stats.secretsShown++
}

async function confirm (m: Model, r: Real, i: number, key: string | null, withPassword: boolean, what: string): Promise<void> {
  const code = key === null ? '000000' : codeFor(key, r.host.clock.ms)
  const wasEnrolled = enrolled(m)
  const response = await post(r, i, '/2fa/setup/confirm', { code, ...(withPassword ? { password: PASSWORD } : {}) })
  const answer = json(response)
  m.trace.push(`s${i} POST /2fa/setup/confirm (${what}${withPassword ? ', password' : ''}) → ${brief(response)}`)
  m.lastConfirm = { session: i, key }
  const s = m.sessions[i]!
  const confirms = (): boolean => {
    if (wizardOfEnrolledAccount(m, s) || (s.phase !== 'wizard' && s.phase !== 'signed-in')) return false
    if (s.held === null || !m.pending.has(s.held)) {
      // Nothing (alive) to confirm: the session is given a new pending secret, not shown in JSON.
      s.held = `unseen#${++m.unseenCount}`
      m.pending.add(s.held)
      return false
    }
    // Only the code of the session's own pending secret confirms it.
    const step = matchingStep(s.held, code, r.host.clock.ms)
    if (step === null) return false
    // Replacing an active secret also asks for the password.
    if (s.phase === 'signed-in' && enrolled(m) && !withPassword) return false
    m.account.secret = s.held
    m.account.confirmedBy = i
    m.account.lastUsedStep = step
    m.pending.clear() // the confirmed one is taken, the others are dropped
    s.confirmed = s.held
    s.confirmedAt = r.host.clock.ms
    // A code of the new secret proven in a signed-in session: fresh for step-up.
    if (s.phase === 'signed-in') s.verifiedAt = r.host.clock.ms
    // Trust given under the old authenticator does not carry over to the new one.
    if (wasEnrolled) forgetDevices(m)
    return true
  }
  if (!confirms()) {
    if (Array.isArray(answer.recoveryCodes)) fail(m, `model disagreement: s${i}'s confirm should fail: ${brief(response)}`)
    return
  }
  const codes = answer.recoveryCodes
  if (!Array.isArray(codes) || codes.length !== 10) fail(m, `model disagreement: s${i}'s confirm should succeed with ten recovery codes: ${brief(response)}`)
  m.account.recovery = new Map(codes.map((c) => [String(c), true]))
  m.issued.push(...codes.map(String))
  // The account's other sessions were signed in (or half-way) without this secret: they end.
  m.sessions.forEach((other, j) => { if (j !== i) end(other) })
  stats.confirms++
}

async function finish (m: Model, r: Real, i: number): Promise<void> {
  const response = await post(r, i, '/2fa/setup/finish')
  m.trace.push(`s${i} POST /2fa/setup/finish → ${brief(response)}`)
  const s = m.sessions[i]!
  if (s.phase !== 'wizard') return
  if (s.confirmed !== null && s.confirmed === m.account.secret) signIn(s, 'finish', s.confirmedAt) // way 4
  else wizardOfEnrolledAccount(m, s)
}

async function skip (m: Model, r: Real, i: number): Promise<void> {
  const response = await post(r, i, '/2fa/setup/skip')
  m.trace.push(`s${i} POST /2fa/setup/skip → ${brief(response)}`)
  const s = m.sessions[i]!
  if (s.phase !== 'wizard' || wizardOfEnrolledAccount(m, s)) return
  if (skipAllowedNow(m)) signIn(s, 'skip', null) // way 3
}

/** Whether `code` is a code of the account's secret for a step not used yet (and which step). */
function unusedStep (m: Model, code: string, now: number): number | null {
  const step = matchingStep(m.account.secret, code, now)
  return step === null || (m.account.lastUsedStep !== null && step <= m.account.lastUsedStep) ? null : step
}

/** A code at the prompt, one step later than anything before (so a right one is unused); `trust`: "don't ask again" ticked. */
async function challenge (m: Model, r: Real, i: number, code: string, what: string, trust = false): Promise<void> {
  const response = await post(r, i, '/2fa/challenge', { code, ...(trust ? { trustDevice: 'true' } : {}) })
  m.trace.push(`s${i} POST /2fa/challenge (${what}${trust ? ', don\'t ask again' : ''}) → ${brief(response)}`)
  const s = m.sessions[i]!
  if (s.phase !== 'code-prompt' || !enrolled(m)) return
  const step = unusedStep(m, code, r.host.clock.ms)
  if (step === null) return
  m.account.lastUsedStep = step
  signIn(s, 'code', r.host.clock.ms) // way 2
  if (trust) trusted(m, r, i)
}

async function recoveryCode (m: Model, r: Real, i: number, code: string, trust = false): Promise<void> {
  const response = await post(r, i, '/2fa/challenge', { recoveryCode: code, ...(trust ? { trustDevice: 'on' } : {}) })
  const state = m.account.recovery.get(code)
  m.trace.push(`s${i} POST /2fa/challenge (recovery code ${code}, ${state === undefined ? 'not the account\'s' : state ? 'unused' : 'used'}${trust ? ', don\'t ask again' : ''}) → ${brief(response)}`)
  const s = m.sessions[i]!
  if (s.phase !== 'code-prompt' || !enrolled(m) || state !== true) return
  m.account.recovery.set(code, false)
  signIn(s, 'recovery code', r.host.clock.ms) // way 2
  if (trust) trusted(m, r, i)
}

async function logout (m: Model, r: Real, i: number): Promise<void> {
  const response = await post(r, i, '/logout')
  m.trace.push(`s${i} POST /logout → ${brief(response)}`)
  end(m.sessions[i]!)
}

/** Admin API actions end all of the account's sessions when they end any. */
const endAll = (m: Model): void => { for (const s of m.sessions) end(s) }

/** The sessions that are not signed out (the store holds them under the account), but `except`. */
const openSessions = (m: Model, except: number): SessionModel[] => m.sessions.filter((s, j) => j !== except && s.phase !== 'anonymous')

/**
 * A request only a signed-in session may make, from one that is not: it must be refused. One
 * that acts on the account (signs a session out, forgets a browser) from a session that has only
 * the password is a violation: that is what the second factor stands between.
 */
function mustBeRefused (m: Model, i: number, response: LightMyRequestResponse, what: string): void {
  if (response.statusCode < 400) fail(m, `VIOLATION: s${i}, ${m.sessions[i]!.phase} (not signed in), could ${what}: ${brief(response)}`)
}

// Trusted browsers (settings): forget one, forget all. A forgotten browser is asked for a code again.

async function forgetAll (m: Model, r: Real, i: number): Promise<void> {
  const response = await post(r, i, '/2fa/devices/forget-all')
  m.trace.push(`s${i} POST /2fa/devices/forget-all → ${brief(response)}`)
  if (m.sessions[i]!.phase !== 'signed-in') return mustBeRefused(m, i, response, 'forget the trusted browsers')
  const listed = json(response).devices
  if (response.statusCode !== 200 || !Array.isArray(listed) || listed.length !== 0) fail(m, `model disagreement: s${i}'s "forget all browsers" should answer an empty list: ${brief(response)}`)
  forgetDevices(m)
  stats.trust.forgotten++
}

/** "Forget" one browser: one of this run's (`pick` chooses, alive or not), or another account's. */
async function forgetOne (m: Model, r: Real, i: number, pick: number): Promise<void> {
  const targets = [...m.devices.keys(), ...elsewhere.devices]
  const id = targets[pick % targets.length]!
  const mine = m.devices.get(id)
  const theirsStored = mine === undefined && await deviceStored(r, id)
  const response = await post(r, i, `/2fa/devices/${id}/forget`)
  m.trace.push(`s${i} POST /2fa/devices/${id}/forget (${mine === undefined ? 'another account\'s browser' : `s${mine.trustedIn}'s browser${mine.alive ? '' : ', forgotten already'}`}) → ${brief(response)}`)
  if (mine === undefined) {
    if (response.statusCode < 400) fail(m, `VIOLATION: s${i} forgot another account's trusted browser ${id}: ${brief(response)}`)
    if (theirsStored && !await deviceStored(r, id)) fail(m, `VIOLATION: another account's trusted browser ${id} is gone after s${i} asked to forget it`)
    stats.trust.othersRefused++
    return
  }
  if (m.sessions[i]!.phase !== 'signed-in') return mustBeRefused(m, i, response, `forget the trusted browser ${id}`)
  if (!mine.alive) {
    if (response.statusCode !== 404) fail(m, `model disagreement: forgetting ${id} again should be a 404: ${brief(response)}`)
    return
  }
  mine.alive = false
  const listed = json(response).devices
  const ids = Array.isArray(listed) ? listed.map((d) => String((d as { id?: unknown }).id)).sort().join() : null
  if (response.statusCode !== 200 || ids !== aliveDevices(m).sort().join()) fail(m, `model disagreement: s${i}'s "forget" should answer the browsers still trusted (${aliveDevices(m).join(', ') || 'none'}): ${brief(response)}`)
  stats.trust.forgotten++
}

/** The other browsers that hold a trust cookie (not the one `j` holds). */
const trustSources = (m: Model, j: number): number[] =>
  m.sessions.flatMap((s, k) => k !== j && s.trust !== null && s.trust !== m.sessions[j]!.trust ? [k] : [])

/** A copied trust cookie: browser `j` gets browser `i`'s. The first of the two to use it signs in; the other's use revokes the browser. */
function copyTrust (m: Model, r: Real, i: number, j: number): void {
  const value = m.sessions[i]!.trust!
  r.clients[j]!.cookies.set(TRUST_COOKIE, value)
  m.sessions[j]!.trust = value
  m.trace.push(`s${j}'s browser gets a copy of s${i}'s trust cookie (${describeTrust(m, value)})`)
  stats.trust.copied++
}

/**
 * Signing out, then the password again in the same browser: the way a trusted browser is used.
 * Signed in again, the session goes for a sensitive page (step-up) at once.
 */
async function relogin (m: Model, r: Real, i: number): Promise<void> {
  await logout(m, r, i)
  await verify(m, r, `relogin(s${i}): logout`)
  await passwordStep(m, r, i)
  if (m.sessions[i]!.phase === 'signed-in' && enrolled(m)) {
    await verify(m, r, `relogin(s${i}): password`)
    await askExport(m, r, i)
  }
}

// Sessions (settings): sign out one, sign out all others. Ended sessions are signed out at their next request.

/** The handles the list should show: the signed-in sessions. */
function signedInHandles (m: Model, r: Real): string[] {
  return m.sessions.flatMap((s, k) => s.phase === 'signed-in' ? [handleOf(r, k) ?? `s${k}?`] : []).sort()
}

function listedHandles (response: LightMyRequestResponse): { handles: string, current: string[] } | null {
  const listed = json(response).sessions
  if (!Array.isArray(listed)) return null
  const rows = listed as Array<{ id?: unknown, current?: unknown }>
  return { handles: rows.map((row) => String(row.id)).sort().join(), current: rows.filter((row) => row.current === true).map((row) => String(row.id)) }
}

async function endOthers (m: Model, r: Real, i: number): Promise<void> {
  const response = await post(r, i, '/2fa/sessions/end-others')
  m.trace.push(`s${i} POST /2fa/sessions/end-others → ${brief(response)}`)
  if (m.sessions[i]!.phase !== 'signed-in') return mustBeRefused(m, i, response, 'sign the other sessions out')
  const others = openSessions(m, i)
  for (const other of others) end(other)
  const listed = listedHandles(response)
  const own = handleOf(r, i)
  if (response.statusCode !== 200 || json(response).ended !== others.length || listed?.handles !== own || listed.current.join() !== own) {
    fail(m, `model disagreement: s${i}'s "sign out all other sessions" should end ${others.length} and list only itself (${own}): ${brief(response)}`)
  }
  stats.sessionsEnded += others.length
}

/** "Sign out" one session: one of this run's (`pick` chooses; itself included), or another account's. */
async function endOne (m: Model, r: Real, i: number, pick: number): Promise<void> {
  const count = m.sessions.length + (elsewhere.sessions.length > 0 ? 1 : 0)
  const target = pick % count
  if (target === m.sessions.length) {
    const theirs = elsewhere.sessions[pick % elsewhere.sessions.length]!
    const stored = await sessionStored(r, theirs.sidHash)
    const response = await post(r, i, `/2fa/sessions/${theirs.handle}/end`)
    m.trace.push(`s${i} POST /2fa/sessions/${theirs.handle}/end (another account's session${stored ? '' : ', ended already'}) → ${brief(response)}`)
    if (response.statusCode < 400) fail(m, `VIOLATION: s${i} signed out another account's session: ${brief(response)}`)
    if (stored && !await sessionStored(r, theirs.sidHash)) fail(m, `VIOLATION: another account's session is gone after s${i} asked to sign it out`)
    stats.othersSessionsRefused++
    return
  }
  const j = target
  const handle = handleOf(r, j) ?? 'AAAAAAAAAAAAAAAAAAAAAA'
  const response = await post(r, i, `/2fa/sessions/${handle}/end`)
  m.trace.push(`s${i} POST /2fa/sessions/${handle}/end (s${j}'s${j === i ? ', its own' : ''}) → ${brief(response)}`)
  if (m.sessions[i]!.phase !== 'signed-in') return mustBeRefused(m, i, response, `sign s${j} out`)
  if (m.sessions[j]!.phase === 'anonymous') {
    if (response.statusCode !== 404) fail(m, `model disagreement: s${j} is signed out already, so signing it out should be a 404: ${brief(response)}`)
    return
  }
  end(m.sessions[j]!)
  const listed = listedHandles(response)
  const expected = signedInHandles(m, r).join()
  if (response.statusCode !== 200 || listed?.handles !== expected) fail(m, `model disagreement: s${i}'s "sign out" of s${j} should answer the sessions left (${expected || 'none'}): ${brief(response)}`)
  stats.sessionsEnded++
}

async function disable (m: Model, r: Real, i: number): Promise<void> {
  const response = await post(r, i, '/2fa/disable', { password: PASSWORD })
  m.trace.push(`s${i} POST /2fa/disable (password) → ${brief(response)}`)
  const s = m.sessions[i]!
  if (s.phase !== 'signed-in') return mustBeRefused(m, i, response, 'turn 2FA off')
  if (requiredNow(m)) {
    if (response.statusCode !== 409) fail(m, `model disagreement: s${i} turned 2FA off while the policy requires it: ${brief(response)}`)
    return
  }
  if (response.statusCode !== 200 || json(response).enabled !== false) fail(m, `model disagreement: s${i} should turn 2FA off: ${brief(response)}`)
  clearEnrolment(m)
  for (const other of openSessions(m, i)) end(other)
  stats.disabled++
}

// Step-up: the host's GET /export asks for a code entered within 10 minutes. A trusted browser
// skipped the code at sign-in: it never counts here.

type StepUpHow = 'ask' | 'code' | 'wrong code' | 'recovery code'

/** A code for now that is none of the account's codes near now. */
function aWrongCode (m: Model, now: number): string {
  const near = m.account.secret === null ? [] : [-1, 0, 1].map((d) => codeFor(m.account.secret!, now, d))
  let n = 123456
  while (near.includes(String(n).padStart(6, '0'))) n = (n + 111111) % 1_000_000
  return String(n).padStart(6, '0')
}

async function stepUp (m: Model, r: Real, i: number, how: StepUpHow, pick: number): Promise<void> {
  const s = m.sessions[i]!
  if (how !== 'ask') {
    nextStep(r)
    const now = r.host.clock.ms
    const canStepUp = s.phase === 'signed-in' && enrolled(m)
    let body: Record<string, string>
    let accepted = false
    let what: string
    if (how === 'code' && m.account.secret !== null) {
      body = { code: codeFor(m.account.secret, now) }
      what = `code of the account's ${m.account.secret}`
      const step = canStepUp ? unusedStep(m, body.code!, now) : null
      if (step !== null) { accepted = true; m.account.lastUsedStep = step }
    } else if (how === 'recovery code' && m.issued.length > 0) {
      const unused = m.issued.filter((code) => m.account.recovery.get(code) === true)
      const code = (unused.length > 0 ? unused : m.issued)[pick % (unused.length > 0 ? unused.length : m.issued.length)]!
      body = { recoveryCode: code }
      what = `recovery code ${code}, ${m.account.recovery.get(code) === true ? 'unused' : 'not usable'}`
      if (canStepUp && m.account.recovery.get(code) === true) { accepted = true; m.account.recovery.set(code, false) }
    } else {
      body = { code: aWrongCode(m, now) }
      what = 'a wrong code'
    }
    const response = await post(r, i, '/2fa/step-up', { ...body, returnTo: '/export' })
    m.trace.push(`s${i} POST /2fa/step-up (${what}) → ${brief(response)}`)
    if (accepted) {
      s.verifiedAt = now
      const until = json(response).freshUntil
      if (response.statusCode !== 200 || until !== new Date(now + EXPORT_FRESH_MS).toISOString()) fail(m, `model disagreement: s${i}'s step-up should be fresh until ${new Date(now + EXPORT_FRESH_MS).toISOString()}: ${brief(response)}`)
      stats.stepUp.codes++
    } else if (response.statusCode < 400) {
      fail(m, `VIOLATION: s${i}'s step-up (${what}) was accepted, but ${canStepUp ? 'it is no usable code of the account' : `the session is ${s.phase}${s.phase === 'signed-in' ? ' and the account not enrolled' : ''}`}: ${brief(response)}`)
    }
  }
  await askExport(m, r, i)
}

/** The step-up route: allowed only with a code (or recovery code) proven in this session within 10 minutes. */
async function askExport (m: Model, r: Real, i: number): Promise<void> {
  const s = m.sessions[i]!
  const now = r.host.clock.ms
  const response = await r.clients[i]!.get('/export', { json: true })
  const body = json(response)
  const seen = response.statusCode === 200 && body.exported === m.userId ? 'allowed' : `${response.statusCode} ${String(body.error)}`
  const fresh = s.verifiedAt !== null && now - s.verifiedAt <= EXPORT_FRESH_MS
  const expected = s.phase === 'anonymous'
    ? '401 sign_in_required'
    : s.phase !== 'signed-in' ? '401 second_factor_required' : !enrolled(m) ? '403 second_factor_not_enrolled' : fresh ? 'allowed' : '401 step_up_required'
  const proven = s.verifiedAt === null ? 'no code proven in it' : `a code proven ${Math.round((now - s.verifiedAt) / 1000)} s ago`
  m.trace.push(`s${i} GET /export (${s.phase}${s.signedInBy === null ? '' : ` by ${s.signedInBy}`}, ${proven}) → ${brief(response)}`)
  stats.stepUp.asked++
  if (expected === 'allowed') stats.stepUp.allowed++
  if (s.signedInBy === 'trusted browser' && s.verifiedAt === null && enrolled(m)) stats.stepUp.trustedBrowserAsked++
  if (seen === expected) return
  if (seen === 'allowed') fail(m, `VIOLATION: s${i} (signed in by ${s.signedInBy}) passed a step-up with ${proven}`)
  fail(m, `model disagreement: s${i}'s GET /export should be ${expected}: ${brief(response)}`)
}

// ---------------------------------------------------------------------------------------------
// The commands

const stats = {
  runs: 0,
  commands: 0,
  ways: { password: 0, code: 0, 'recovery code': 0, skip: 0, finish: 0, 'trusted browser': 0 } as Record<Way, number>,
  secretsShown: 0,
  confirms: 0,
  /** Confirms replacing an active secret. */
  replacements: 0,
  /** A confirm with a code of another session's secret while that secret still existed. */
  liveForeignConfirms: 0,
  /** A code prompt answered with a code of a secret shown to a session but not the account's. */
  foreignCodesAtPrompt: 0,
  /** A recovery code tried at the prompt that is no longer the account's (replaced or cleared). */
  staleRecoveryCodes: 0,
  trust: { given: 0, usedToSignIn: 0, forgotten: 0, copied: 0, revokedByReuse: 0, othersRefused: 0 },
  stepUp: { asked: 0, allowed: 0, codes: 0, trustedBrowserAsked: 0 },
  sessionsEnded: 0,
  othersSessionsRefused: 0,
  disabled: 0
}

class Step implements fc.AsyncCommand<Model, Real> {
  constructor (
    private readonly label: string,
    private readonly action: (m: Model, r: Real) => Promise<void>,
    private readonly session: number | null = null,
    private readonly when: (m: Model) => boolean = () => true
  ) {}

  check (m: Readonly<Model>): boolean {
    return (this.session === null || this.session < m.sessions.length) && this.when(m as Model)
  }

  async run (m: Model, r: Real): Promise<void> {
    m.lastConfirm = null
    stats.commands++
    await this.action(m, r)
    await verify(m, r, this.label)
  }

  toString (): string {
    return this.label
  }
}

/** The keys shown to sessions other than `i`; those that still exist first. */
function foreignKeys (m: Model, i: number): string[] {
  const keys = [...m.shownTo].filter(([, owner]) => owner !== i).map(([key]) => key)
  return [...keys.filter((key) => m.pending.has(key)), ...keys.filter((key) => !m.pending.has(key))]
}
const ownKey = (m: Model, i: number): string | null => {
  const held = m.sessions[i]!.held
  return held === null || isUnseen(held) ? null : held
}
/** Code prompts ask for a step later than anything before, so that a right code is unused. */
const nextStep = (r: Real): void => r.host.clock.advance(STEP_MS)

async function confirmOwn (m: Model, r: Real, i: number, withPassword: boolean): Promise<void> {
  const key = ownKey(m, i)
  if (key !== null && m.sessions[i]!.phase === 'signed-in' && enrolled(m) && m.pending.has(key)) stats.replacements++
  await confirm(m, r, i, key, withPassword, key === null ? 'no secret shown to it' : `its own ${key}`)
}

/** A code of a secret another session was shown (one that still exists, if any): `pick` chooses. */
async function confirmForeign (m: Model, r: Real, i: number, pick: number, withPassword: boolean): Promise<void> {
  const keys = foreignKeys(m, i)
  const live = keys.filter((key) => m.pending.has(key))
  const key = live.length > 0 ? live[pick % live.length]! : keys[pick % keys.length]!
  if (m.pending.has(key)) stats.liveForeignConfirms++
  await confirm(m, r, i, key, withPassword, `s${m.shownTo.get(key)}'s ${m.pending.has(key) ? 'pending' : 'lapsed'} ${key}`)
}

async function rightCode (m: Model, r: Real, i: number, trust = false): Promise<void> {
  nextStep(r)
  await challenge(m, r, i, codeFor(m.account.secret!, r.host.clock.ms), `code of the account's ${m.account.secret}`, trust)
}

async function shownKeyCode (m: Model, r: Real, i: number, pick: number): Promise<void> {
  nextStep(r)
  // Secrets that are not the account's first: those are the ones that must fail.
  const keys = [...m.shownTo.keys()].sort((a, b) => Number(a === m.account.secret) - Number(b === m.account.secret))
  const foreign = keys.filter((key) => key !== m.account.secret)
  const key = foreign.length > 0 ? foreign[pick % foreign.length]! : keys[pick % keys.length]!
  if (key !== m.account.secret) stats.foreignCodesAtPrompt++
  await challenge(m, r, i, codeFor(key, r.host.clock.ms), `code of s${m.shownTo.get(key)}'s ${key}${key === m.account.secret ? ' (the account\'s)' : ''}`)
}

async function wrongCode (m: Model, r: Real, i: number, trust = false): Promise<void> {
  nextStep(r)
  await challenge(m, r, i, aWrongCode(m, r.host.clock.ms), 'a wrong code', trust)
}

/** A recovery code issued in this run: with `fresh`, an unused one of the account's; else a replaced or used one (when there is one). */
async function recovery (m: Model, r: Real, i: number, pick: number, fresh: boolean, trust = false): Promise<void> {
  const unused = m.issued.filter((code) => m.account.recovery.get(code) === true)
  const spent = m.issued.filter((code) => m.account.recovery.get(code) !== true)
  const from = (fresh ? unused : spent).length > 0 ? (fresh ? unused : spent) : m.issued
  const code = from[pick % from.length]!
  if (!m.account.recovery.has(code)) stats.staleRecoveryCodes++
  await recoveryCode(m, r, i, code, trust)
}

async function enrolNow (m: Model, r: Real, i: number): Promise<void> {
  await passwordStep(m, r, i)
  await verify(m, r, `enrolNow(s${i}): password`)
  await openWizard(m, r, i)
  await verify(m, r, `enrolNow(s${i}): openWizard`)
  await confirmOwn(m, r, i, true)
  await verify(m, r, `enrolNow(s${i}): confirm`)
  await finish(m, r, i)
}

/** A stand-in for the next thing a person would do in the session, from where it stands (`choice` varies it). */
async function progress (m: Model, r: Real, i: number, choice: number): Promise<void> {
  const s = m.sessions[i]!
  const hasForeign = foreignKeys(m, i).length > 0
  switch (s.phase) {
    case 'anonymous':
      return await passwordStep(m, r, i)
    case 'wizard':
      if (choice % 6 === 4) return await skip(m, r, i)
      if (choice % 6 === 5 && hasForeign) return await confirmForeign(m, r, i, choice, false)
      if (s.confirmed !== null) return await finish(m, r, i)
      if (ownKey(m, i) === null || !m.pending.has(ownKey(m, i)!)) return await openWizard(m, r, i)
      return await confirmOwn(m, r, i, false)
    case 'code-prompt':
      // "Don't ask again" ticked a third of the time.
      if (choice % 5 === 2 && m.issued.length > 0) return await recovery(m, r, i, choice, choice % 2 === 0, choice % 3 === 0)
      if (choice % 5 === 3) return await wrongCode(m, r, i, choice % 3 === 0)
      if (choice % 5 === 4 && m.shownTo.size > 0) return await shownKeyCode(m, r, i, choice)
      if (enrolled(m)) return await rightCode(m, r, i, choice % 3 === 0)
      return await wrongCode(m, r, i)
    case 'signed-in':
      // A sensitive page after a sign-in that skipped the code: the code is asked (and typed, half the time).
      if (s.signedInBy === 'trusted browser' && choice % 2 === 0) return await stepUp(m, r, i, choice % 4 === 0 ? 'ask' : 'code', choice)
      if (choice % 5 === 4 && hasForeign) return await confirmForeign(m, r, i, choice, true)
      if (choice % 5 === 3) return choice % 2 === 0 ? await logout(m, r, i) : await relogin(m, r, i)
      if (choice % 5 === 1 && enrolled(m) && choice % 3 === 0) return await stepUp(m, r, i, choice % 2 === 0 ? 'ask' : 'code', choice)
      if (choice % 5 === 2 && m.devices.size > 0 && choice % 2 === 0) return choice % 4 === 0 ? await forgetAll(m, r, i) : await forgetOne(m, r, i, choice)
      if (choice % 5 === 0 && openSessions(m, i).length > 0 && choice % 3 === 0) return await endOthers(m, r, i)
      if (ownKey(m, i) === null || !m.pending.has(ownKey(m, i)!)) return await openWizard(m, r, i)
      return await confirmOwn(m, r, i, choice % 5 !== 2)
  }
}

function commandArbitrary () {
  // Mostly the first two sessions, so that one session's steps follow each other often enough.
  const session = fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.constant(1), weight: 2 }, { arbitrary: fc.constant(MAX_SESSIONS - 1), weight: 1 })
  const pick = fc.nat({ max: 59 })
  const onSession = (name: string, action: (m: Model, r: Real, i: number) => Promise<void>, when: (m: Model, i: number) => boolean = () => true) =>
    session.map((i) => new Step(`${name}(s${i})`, async (m, r) => await action(m, r, i), i, (m) => when(m, i)))
  const onSessionWith = <T>(name: string, extra: fc.Arbitrary<T>, show: (x: T) => string, action: (m: Model, r: Real, i: number, x: T) => Promise<void>, when: (m: Model, i: number) => boolean = () => true) =>
    fc.tuple(session, extra).map(([i, x]) => new Step(`${name}(s${i}${show(x)})`, async (m, r) => await action(m, r, i, x), i, (m) => when(m, i)))
  const adminStep = (label: string, action: (m: Model, r: Real) => Promise<unknown>, effect: (m: Model) => void) =>
    new Step(label, async (m, r) => { await action(m, r); m.trace.push(`admin ${label}`); effect(m) })

  const commands = {
    progress: onSessionWith('progress', pick, (c) => `, ${c}`, progress),
    password: onSession('password', async (m, r, i) => await passwordStep(m, r, i)),
    wrongPassword: onSession('wrongPassword', async (m, r, i) => await passwordStep(m, r, i, 'not-the-password')),
    openWizard: onSession('openWizard', openWizard),
    confirmOwn: onSessionWith('confirmOwn', fc.boolean(), (pw) => pw ? ', password' : '', confirmOwn),
    confirmForeign: onSessionWith('confirmForeign', fc.tuple(pick, fc.boolean()), ([p, pw]) => `, #${p}${pw ? ', password' : ''}`,
      async (m, r, i, [p, pw]) => await confirmForeign(m, r, i, p, pw), (m, i) => foreignKeys(m, i).length > 0),
    finish: onSession('finish', finish),
    skip: onSession('skip', skip),
    rightCode: onSession('rightCode', rightCode, (m) => enrolled(m)),
    shownKeyCode: onSessionWith('shownKeyCode', pick, (p) => `, #${p}`, shownKeyCode, (m) => m.shownTo.size > 0),
    wrongCode: onSession('wrongCode', wrongCode),
    recoveryCode: onSessionWith('recoveryCode', fc.tuple(pick, fc.boolean(), fc.boolean()), ([p, fresh, trust]) => `, #${p}${fresh ? ', unused' : ''}${trust ? ', trust' : ''}`,
      async (m, r, i, [p, fresh, trust]) => await recovery(m, r, i, p, fresh, trust), (m) => m.issued.length > 0),
    // "Don't ask again on this browser" ticked with a right code.
    rightCodeTrusting: onSession('rightCodeTrusting', async (m, r, i) => await rightCode(m, r, i, true), (m) => enrolled(m)),
    // The password and a right code with the box ticked: the shortcut to a trusted browser.
    signInTrustingNow: onSession('signInTrustingNow', async (m, r, i) => {
      await passwordStep(m, r, i)
      await verify(m, r, `signInTrustingNow(s${i}): password`)
      await rightCode(m, r, i, true)
    }, (m) => enrolled(m)),
    // Sign out and in again in the same browser: a trusted one skips the code.
    relogin: onSession('relogin', relogin),
    // Another browser's trust cookie copied into this one (`pick` chooses whose, among those that
    // hold one); with `race`, both browsers then sign out and in again (the copy first, or the
    // original first): the first use signs in, the second revokes the browser.
    copyTrust: onSessionWith('copyTrust', fc.tuple(pick, fc.constantFrom<'no' | 'copy first' | 'original first'>('no', 'copy first', 'original first')),
      ([p, race]) => `, #${p}${race === 'no' ? '' : `, ${race}`}`, async (m, r, j, [p, race]) => {
        const from = trustSources(m, j)
        const i = from[p % from.length]!
        copyTrust(m, r, i, j)
        if (race === 'no') return
        const [first, second] = race === 'copy first' ? [j, i] : [i, j]
        await verify(m, r, `copyTrust(s${i} → s${j})`)
        await relogin(m, r, first)
        await verify(m, r, `copyTrust: relogin(s${first})`)
        await relogin(m, r, second)
      }, (m, j) => trustSources(m, j).length > 0),
    forgetAll: onSession('forgetAll', forgetAll),
    forgetOne: onSessionWith('forgetOne', pick, (p) => `, #${p}`, forgetOne, (m) => m.devices.size + elsewhere.devices.length > 0),
    endOthers: onSession('endOthers', endOthers),
    endOne: onSessionWith('endOne', pick, (p) => `, #${p}`, endOne),
    stepUp: onSessionWith('stepUp', fc.tuple(fc.constantFrom<StepUpHow>('ask', 'code', 'wrong code', 'recovery code'), pick), ([how, p]) => `, ${how}${how === 'recovery code' ? ` #${p}` : ''}`,
      async (m, r, i, [how, p]) => await stepUp(m, r, i, how, p)),
    disable: onSession('disable', disable, (m) => enrolled(m)),
    // Five minutes pass: two of these and a step-up is stale.
    later: fc.constant(new Step('later(5 min)', async (m, r) => { r.host.clock.advance(5 * MINUTE_MS); m.trace.push('5 minutes pass') })),
    logout: onSession('logout', logout),
    // Replacing the authenticator (or enrolling, for a session not enrolled yet), checked between the two requests.
    replace: onSession('replace', async (m, r, i) => {
      await openWizard(m, r, i)
      await verify(m, r, `replace(s${i}): openWizard`)
      await confirmOwn(m, r, i, true)
    }),
    // A whole wizard from the password on, checked as it goes: the shortcut to an enrolled account.
    enrolNow: onSession('enrolNow', enrolNow),
    // The password and a right code: the shortcut to a session signed in by a code.
    signInNow: onSession('signInNow', async (m, r, i) => {
      await passwordStep(m, r, i)
      await verify(m, r, `signInNow(s${i}): password`)
      await rightCode(m, r, i)
    }, (m) => enrolled(m)),
    setRequired: fc.boolean().map((required) => adminStep(`setRequired(${required})`,
      async (m, r) => await r.host.app.twoFactor.setRequired(m.userId, required, ACTOR),
      (m) => {
        m.account.required = required
        // Lifting the requirement also clears the 2FA, and ends every session of the account.
        if (!required) { clearEnrolment(m); endAll(m) }
      })),
    reset: fc.constant(adminStep('reset',
      async (m, r) => await r.host.app.twoFactor.reset(m.userId, { ...ACTOR, reason: 'model test' }),
      (m) => { clearEnrolment(m); endAll(m) })),
    policy: fc.tuple(fc.boolean(), fc.boolean()).map(([requireAll, allowSkip]) => adminStep(`policy(requireAll: ${requireAll}, allowSkip: ${allowSkip})`,
      async (_m, r) => await r.host.app.twoFactor.setPolicy({ requireAll, requireAllSince: null, graceDays: 7, requiredRoles: [], exemptRoles: [], allowSkip }, ACTOR),
      (m) => { m.policy = { requireAll, allowSkip } })),
    endSessions: fc.constant(adminStep('endSessions',
      async (m, r) => await r.host.app.twoFactor.endSessions(m.userId, ACTOR),
      (m) => endAll(m)))
  }
  const weights: Record<keyof typeof commands, number> = {
    progress: 14,
    password: 2,
    wrongPassword: 1,
    openWizard: 2,
    confirmOwn: 2,
    confirmForeign: 3,
    finish: 2,
    skip: 1,
    rightCode: 1,
    shownKeyCode: 1,
    wrongCode: 1,
    recoveryCode: 1,
    rightCodeTrusting: 1,
    signInTrustingNow: 3,
    relogin: 3,
    copyTrust: 3,
    forgetAll: 1,
    forgetOne: 1,
    endOthers: 2,
    endOne: 2,
    stepUp: 4,
    disable: 2,
    later: 1,
    logout: 1,
    replace: 1,
    enrolNow: 2,
    signInNow: 2,
    setRequired: 2,
    reset: 1,
    policy: 2,
    endSessions: 1
  }
  return fc.oneof(...Object.entries(commands).map(([name, arbitrary]) => ({ arbitrary: arbitrary as fc.Arbitrary<Step>, weight: weights[name as keyof typeof commands] })))
}


// ---------------------------------------------------------------------------------------------

// A pass takes about a minute on PGlite; shrinking a failure replays the app many times more.
t.setTimeout(Math.max(600_000, RUNS * 3000))

t.test('sign-in model: no session signed in but by a permitted way; no secret but the confirming session\'s own', async (t) => {
  const host = await createHost(t, {
    twoFactor: {
      // Limits high, lifetimes long: no run locks the account or outlives a prompt.
      lockoutThreshold: 100,
      pendingAttempts: 100,
      pendingTtlMs: 24 * HOUR_MS,
      enrolmentTtlMs: 24 * HOUR_MS,
      session: { secret: HOST_SESSION_SECRET, secure: false, maxAgeMs: 365 * 24 * HOUR_MS }
    },
    // The test client drops a cookie whose expiry is past on the wall clock: the app's clock
    // starts at the real time, so a 30-day trust cookie set by it is not dropped at once.
    clock: new TestClock(Math.floor(Date.now() / STEP_MS) * STEP_MS)
  })

  let accountNumber = 0
  const property = fc.asyncProperty(
    fc.integer({ min: 2, max: MAX_SESSIONS }),
    fc.record({ required: fc.boolean(), requireAll: fc.boolean(), allowSkip: fc.boolean(), enrolled: fc.boolean(), trusted: fc.boolean() }),
    fc.commands([commandArbitrary()], { maxCommands: MAX_COMMANDS, size: 'max' }),
    async (sessions, start, commands) => {
      stats.runs++
      const userId = `alice-${++accountNumber}`
      host.users.set(userId, { id: userId, password: PASSWORD })
      await host.app.twoFactor.onUserCreated(userId)
      // Where the run starts: the policy, the account's flag (both change later by command too), and
      // half the time an account enrolled through the wizard of s0 (most interleavings that matter need one).
      await host.app.twoFactor.setPolicy({ requireAll: start.requireAll, requireAllSince: null, graceDays: 7, requiredRoles: [], exemptRoles: [], allowSkip: start.allowSkip }, ACTOR)
      await host.app.twoFactor.setRequired(userId, start.required, ACTOR)
      host.clock.advance(STEP_MS)
      const model = newModel(userId, sessions)
      const real: Real = { host, userId, clients: Array.from({ length: sessions }, () => host.client()) }
      model.account.required = start.required
      model.policy = { requireAll: start.requireAll, allowSkip: start.allowSkip }
      model.trace.push(`start: ${sessions} sessions, required: ${start.required}, requireAll: ${start.requireAll}, allowSkip: ${start.allowSkip}${start.enrolled ? `, enrolled by s0${start.trusted ? ', s1 a trusted browser' : ''}` : ''}`)
      if (start.enrolled) {
        await enrolNow(model, real, 0)
        await verify(model, real, 'start: enrolNow(s0)')
        if (start.trusted) {
          // s1 signed in once with "don't ask again" and signed out: its browser is trusted.
          await passwordStep(model, real, 1)
          await rightCode(model, real, 1, true)
          await logout(model, real, 1)
          await verify(model, real, 'start: s1 trusted')
        }
      }
      await fc.asyncModelRun(() => ({ model, real }), commands)
      await rememberElsewhere(real)
    }
  )

  const started = Date.now()
  try {
    await fc.assert(property, { numRuns: RUNS, seed: SEED, verbose: 1 })
    t.pass(`${RUNS} runs of up to ${MAX_COMMANDS} commands (seed ${SEED}, ${host.database.kind})`)
  } catch (error) {
    // fast-check's report (seed, path, the shrunk counterexample), then what broke in it, with its trace.
    const cause = (error as Error).cause
    t.fail(`seed ${SEED} (MODEL_SEED=${SEED} to replay): ${(error as Error).message}`)
    if (cause instanceof Error) t.comment(`The shrunk counterexample fails so (seed ${SEED}):\n${cause.message}`)
  }
  t.comment(`${((Date.now() - started) / 1000).toFixed(1)} s; ${JSON.stringify(stats)}`)
})
