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
//        account's secret is still the one confirmed.
//   And a secret shown to one session never becomes the account's unless that same session
//   confirms it.
//
// Why: each step reads the account afresh and a session only remembers references, so the
// dangerous bugs are interleavings: a wizard finished after another browser (or an admin) has
// changed the account, a skip decided on a policy that has since changed, a code of a secret
// that another session was shown, a session that outlives a reset. Examples pin a few of those;
// this walks many.
//
// The model below is a plain statement of the rule and of the documented effects of each action
// (who gets which secret, which changes end which sessions); it does not use the plugin's state
// machine. After every command each session is observed through the host's gated `GET /` (200
// with the user: signed in; 401 to the code prompt or to the wizard; 200 with nobody: anonymous)
// and the account's active secret is read from the database. A session signed in that the model
// has no permitted way for, or a secret that the model did not see its own session confirm, is a
// violation; any other difference is a disagreement between model and app (reported as such).
//
// Each run gets a fresh account (same password): the failure counter that wrong codes raise
// can't be cleared through the API, and independent runs make a counterexample replay the same.
// One app (and one database) serves all runs.
//
// MODEL_RUNS (default 200) and MODEL_COMMANDS (default 12) raise the depth, MODEL_SEED (default
// 4242) picks another walk. With DATABASE_URL set it runs on that Postgres server.
import t from 'tap'
import fc from 'fast-check'
import { eq } from 'drizzle-orm'
import type { LightMyRequestResponse } from 'fastify'
import { Keyring } from '../../plugin/index.ts'
import { base32Encode } from '../../plugin/core/base32.ts'
import { accounts } from '../../plugin/db/schema.ts'
import type { Client } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, HOST_KEYS, HOST_SESSION_SECRET, type Host } from '../fixtures/host.ts'

const RUNS = Number(process.env.MODEL_RUNS ?? 200)
const MAX_COMMANDS = Number(process.env.MODEL_COMMANDS ?? 12)
const SEED = Number(process.env.MODEL_SEED ?? 4242)
const MAX_SESSIONS = 3

const PASSWORD = 'alice-password'
const ACTOR = { actor: 'model-test' }
const STEP_MS = 30_000
const HOUR_MS = 60 * 60_000
const KEYRING = Keyring.fromEnv(HOST_KEYS)

// ---------------------------------------------------------------------------------------------
// The model

type Phase = 'anonymous' | 'code-prompt' | 'wizard' | 'signed-in'
/** The permitted ways in (the four of the rule; a recovery code is way 2 too). */
type Way = 'password' | 'code' | 'recovery code' | 'skip' | 'finish'

interface SessionModel {
  /** Where the session stands in its sign-in. */
  phase: Phase
  /** The permitted way that signed this session in, since its last sign-out (or since it was ended); null: none. */
  signedInBy: Way | null
  /** The pending secret this session holds (a manual key, or an `unseen#n` marker for one it was never shown). */
  held: string | null
  /** The secret whose confirm step succeeded in this session since its password step. */
  confirmed: string | null
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
    sessions: Array.from({ length: sessions }, () => ({ phase: 'anonymous', signedInBy: null, held: null, confirmed: null })),
    account: { secret: null, confirmedBy: null, required: false, lastUsedStep: null, recovery: new Map() },
    policy: { requireAll: false, allowSkip: true },
    pending: new Set(),
    shownTo: new Map(),
    issued: [],
    lastConfirm: null,
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

function end (s: SessionModel): void {
  s.phase = 'anonymous'
  s.signedInBy = null
  s.held = null
  s.confirmed = null
}

/** A sign-in completed by `way`; a wizard the session had open is over (a later one starts afresh). */
function signIn (s: SessionModel, way: Way): void {
  s.phase = 'signed-in'
  s.signedInBy = way
  s.held = null
  stats.ways[way]++
}

/** Admin reset and lifting the requirement: no secret, no pending secrets, no recovery codes. */
function clearEnrolment (m: Model): void {
  m.account.secret = null
  m.account.confirmedBy = null
  m.account.lastUsedStep = null
  m.account.recovery = new Map()
  m.pending.clear()
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
  const response = await r.clients[i]!.post('/login', { username: m.userId, password }, { json: true })
  m.trace.push(`s${i} POST /login${password === PASSWORD ? '' : ' (wrong password)'} → ${brief(response)}`)
  if (password !== PASSWORD) return // the host refuses it: nothing changes
  const s = m.sessions[i]!
  end(s) // a new sign-in starts: nothing of the old one carries over
  if (enrolled(m)) s.phase = 'code-prompt'
  else if (requiredNow(m)) s.phase = 'wizard'
  else signIn(s, 'password') // way 1
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
  if (s.confirmed !== null && s.confirmed === m.account.secret) signIn(s, 'finish') // way 4
  else wizardOfEnrolledAccount(m, s)
}

async function skip (m: Model, r: Real, i: number): Promise<void> {
  const response = await post(r, i, '/2fa/setup/skip')
  m.trace.push(`s${i} POST /2fa/setup/skip → ${brief(response)}`)
  const s = m.sessions[i]!
  if (s.phase !== 'wizard' || wizardOfEnrolledAccount(m, s)) return
  if (skipAllowedNow(m)) signIn(s, 'skip') // way 3
}

/** A code at the prompt, one step later than anything before (so a right one is unused). */
async function challenge (m: Model, r: Real, i: number, code: string, what: string): Promise<void> {
  const response = await post(r, i, '/2fa/challenge', { code })
  m.trace.push(`s${i} POST /2fa/challenge (${what}) → ${brief(response)}`)
  const s = m.sessions[i]!
  if (s.phase !== 'code-prompt' || !enrolled(m)) return
  const step = matchingStep(m.account.secret, code, r.host.clock.ms)
  if (step === null || (m.account.lastUsedStep !== null && step <= m.account.lastUsedStep)) return
  m.account.lastUsedStep = step
  signIn(s, 'code') // way 2
}

async function recoveryCode (m: Model, r: Real, i: number, code: string): Promise<void> {
  const response = await post(r, i, '/2fa/challenge', { recoveryCode: code })
  const state = m.account.recovery.get(code)
  m.trace.push(`s${i} POST /2fa/challenge (recovery code ${code}, ${state === undefined ? 'not the account\'s' : state ? 'unused' : 'used'}) → ${brief(response)}`)
  const s = m.sessions[i]!
  if (s.phase !== 'code-prompt' || !enrolled(m) || state !== true) return
  m.account.recovery.set(code, false)
  signIn(s, 'recovery code') // way 2
}

async function logout (m: Model, r: Real, i: number): Promise<void> {
  const response = await post(r, i, '/logout')
  m.trace.push(`s${i} POST /logout → ${brief(response)}`)
  end(m.sessions[i]!)
}

/** Admin API actions end all of the account's sessions when they end any. */
const endAll = (m: Model): void => { for (const s of m.sessions) end(s) }

// ---------------------------------------------------------------------------------------------
// The commands

const stats = {
  runs: 0,
  commands: 0,
  ways: { password: 0, code: 0, 'recovery code': 0, skip: 0, finish: 0 } as Record<Way, number>,
  secretsShown: 0,
  confirms: 0,
  /** Confirms replacing an active secret. */
  replacements: 0,
  /** A confirm with a code of another session's secret while that secret still existed. */
  liveForeignConfirms: 0,
  /** A code prompt answered with a code of a secret shown to a session but not the account's. */
  foreignCodesAtPrompt: 0,
  /** A recovery code tried at the prompt that is no longer the account's (replaced or cleared). */
  staleRecoveryCodes: 0
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

async function rightCode (m: Model, r: Real, i: number): Promise<void> {
  nextStep(r)
  await challenge(m, r, i, codeFor(m.account.secret!, r.host.clock.ms), `code of the account's ${m.account.secret}`)
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

async function wrongCode (m: Model, r: Real, i: number): Promise<void> {
  nextStep(r)
  const now = r.host.clock.ms
  const near = m.account.secret === null ? [] : [-1, 0, 1].map((d) => codeFor(m.account.secret!, now, d))
  let n = 123456
  while (near.includes(String(n).padStart(6, '0'))) n = (n + 111111) % 1_000_000
  await challenge(m, r, i, String(n).padStart(6, '0'), 'a wrong code')
}

/** A recovery code issued in this run: with `fresh`, an unused one of the account's; else a replaced or used one (when there is one). */
async function recovery (m: Model, r: Real, i: number, pick: number, fresh: boolean): Promise<void> {
  const unused = m.issued.filter((code) => m.account.recovery.get(code) === true)
  const spent = m.issued.filter((code) => m.account.recovery.get(code) !== true)
  const from = (fresh ? unused : spent).length > 0 ? (fresh ? unused : spent) : m.issued
  const code = from[pick % from.length]!
  if (!m.account.recovery.has(code)) stats.staleRecoveryCodes++
  await recoveryCode(m, r, i, code)
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
      if (choice % 5 === 2 && m.issued.length > 0) return await recovery(m, r, i, choice, choice % 2 === 0)
      if (choice % 5 === 3) return await wrongCode(m, r, i)
      if (choice % 5 === 4 && m.shownTo.size > 0) return await shownKeyCode(m, r, i, choice)
      if (enrolled(m)) return await rightCode(m, r, i)
      return await wrongCode(m, r, i)
    case 'signed-in':
      if (choice % 5 === 4 && hasForeign) return await confirmForeign(m, r, i, choice, true)
      if (choice % 5 === 3) return await logout(m, r, i)
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
    recoveryCode: onSessionWith('recoveryCode', fc.tuple(pick, fc.boolean()), ([p, fresh]) => `, #${p}${fresh ? ', unused' : ''}`,
      async (m, r, i, [p, fresh]) => await recovery(m, r, i, p, fresh), (m) => m.issued.length > 0),
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
    }
  })

  let accountNumber = 0
  const property = fc.asyncProperty(
    fc.integer({ min: 2, max: MAX_SESSIONS }),
    fc.record({ required: fc.boolean(), requireAll: fc.boolean(), allowSkip: fc.boolean(), enrolled: fc.boolean() }),
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
      model.trace.push(`start: ${sessions} sessions, required: ${start.required}, requireAll: ${start.requireAll}, allowSkip: ${start.allowSkip}${start.enrolled ? ', enrolled by s0' : ''}`)
      if (start.enrolled) {
        await enrolNow(model, real, 0)
        await verify(model, real, 'start: enrolNow(s0)')
      }
      await fc.asyncModelRun(() => ({ model, real }), commands)
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
