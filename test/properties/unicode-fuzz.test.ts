// Every input the plugin reads, fuzzed with text from all of Unicode: each body field of each
// route, each query field, the `:id` path parameter, the request headers the plugin looks at
// (User-Agent, Referer, HX-Current-URL, HX-Request, Accept, Sec-Fetch-Site, Host, which the
// Referer is compared with, and Accept-Language) and the host's own input that reaches it, the
// `returnTo` of the login route handed to `request.twoFactor.startLogin`.
//
// Why: a string is more than ASCII. NUL can't be stored by Postgres, a lone surrogate can't be
// stored in jsonb nor encoded as UTF-8, C0 controls and DEL can forge log lines, and a header
// can only carry printable ASCII: Node throws on anything else, and thrown while a response is
// on its way that ends the process. A returnTo such as '/ā', U+2028 sent with `HX-Request: true`,
// DEL, or a lone surrogate once ended the process or made the session save fail.
//
// How: strings drawn from every code point (fast-check's 'binary' and 'binary-ascii' units),
// lone surrogates, C0 controls, DEL, U+0080–U+00FF, U+2028/U+2029, bidi marks, emoji and URL
// syntax; sent as JSON (lone surrogates as \uD800 escapes, and raw as invalid UTF-8), as
// urlencoded forms (as a browser encodes them, and byte by byte with %ED%A0%80 for a lone
// surrogate), in query strings and path parameters (percent-encoded, WTF-8, and raw), and in
// headers (as the JavaScript string, and as the Latin-1 view of its UTF-8 bytes, which is what
// Node makes of a real request). Then each explicit case is swept through every kind of input
// once, the login `returnTo` is followed to the redirect that finally uses it, and a few
// requests go over a real socket with raw bytes, through Node's own HTTP parser.
//
// From sessions in each sign-in state (anonymous, at the code prompt, in the forced wizard,
// signed in without 2FA, signed in with a stale code, a fresh admin), each holding a valid CSRF
// token so input reaches the handlers. Properties, for every request:
//   (a) never a 5xx;
//   (b) a refused input (4xx) changes nothing guarded (the active factor, who must use it, the
//       single-use step, recovery codes, settings, security events, who is signed in), and a GET
//       never does;
//   (c) every request is answered within a timeout, and the server answers afterwards;
// and besides: nothing is logged as an error (level 50/60), no reply is sent twice, and every
// Location, HX-Redirect and HX-Location header, and every JSON `next`, is printable ASCII that
// starts with a single '/'.
//
// UNICODE_FUZZ_RUNS raises the depth (runs per POST route; GET routes get about half), and
// UNICODE_FUZZ_SEED picks another seed (fixed by default, printed on failure).
import { connect } from 'node:net'
import t from 'tap'
import fc from 'fast-check'
import { sql } from 'drizzle-orm'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { rowsOf } from '../../plugin/db/database.ts'
import { hashSessionId } from '../../plugin/db/session-store.ts'
import { STATUS_FILTERS } from '../../plugin/services/admin-users.ts'
import { EVENT_TYPES } from '../../plugin/services/audit.ts'
import type { PolicySettings } from '../../plugin/core/policy.ts'
import { Client } from '../helpers/client.ts'
import { codeFor } from '../helpers/demo.ts'
import { createHost, login, type Host, type HostUser } from '../fixtures/host.ts'

const RUNS = Number(process.env.UNICODE_FUZZ_RUNS ?? 40)
const GET_RUNS = Math.max(1, Math.ceil(RUNS * 0.45))
const LIGHT_RUNS = Math.max(1, Math.ceil(RUNS / 8))
const SEED = Number(process.env.UNICODE_FUZZ_SEED ?? 20261122)
/** Longer than any answer takes on a loaded machine; a request still open after it has wedged. */
const TIMEOUT_MS = Number(process.env.UNICODE_FUZZ_TIMEOUT_MS ?? 15_000)
const REPRODUCE = `(reproduce with UNICODE_FUZZ_SEED=${SEED}${process.env.UNICODE_FUZZ_RUNS === undefined ? '' : ` UNICODE_FUZZ_RUNS=${RUNS}`})`

// ---------------------------------------------------------------------------------------------
// The text

const range = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => String.fromCharCode(from + i))
const C0 = range(0x00, 0x1f)
const LATIN1 = range(0x80, 0xff)
const LONE_SURROGATES = ['\ud800', '\udbff', '\udc00', '\udfff', '\ud83d', '\ude00', '\ude00\ud83d', '\ud800\ud800', 'a\udc00b']
const LINE_SEPARATORS = ['\u2028', '\u2029', '\u0085']
const BIDI = ['\u200e', '\u200f', '\u061c', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069']
const EMOJI = ['😀', '👩‍👩‍👧‍👦', '🇫🇷', '👍🏽', '\u{1f9d1}\u200d\u{1f4bb}']
const OTHER = ['\ufeff', '\ufffd', '\ufffe', '\uffff', '\u{10ffff}', '\u{e0001}', '\u{f0000}', '\u3000', '\u00a0', 'ā', 'ß', 'İ', 'ﬃ', 'e\u0301', '１２３４５６', '٠١٢٣٤٥', '\u0663']
const SYNTAX = ['/', '//', '\\', '/\\', '?', '#', '&', '=', '+', '%', '%00', '%ED%A0%80', '%C3%28', '%2F', ';', ',', ' ', '"', "'", '<', '>', '@', ':', '..', '\t']
const TEN_KB = ['é'.repeat(5120), 'a\u2028😀\u0000\ud800'.repeat(1638), '/' + 'ā'.repeat(5120), '\ud800'.repeat(10_240)]

/** The explicit cases, each swept through every kind of input once. Latin-1 in groups of 8. */
const EXPLICIT: string[] = [
  ...C0,
  '\u007f',
  ...Array.from({ length: LATIN1.length / 8 }, (_, i) => LATIN1.slice(i * 8, i * 8 + 8).join('')),
  ...LINE_SEPARATORS,
  ...LONE_SURROGATES,
  ...BIDI,
  ...EMOJI,
  ...OTHER,
  ...TEN_KB
]

/** One unit of text: any code point, any of 0000–00FF, a lone surrogate, or a hand-picked troublemaker. */
const unit = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
  { weight: 3, arbitrary: fc.constantFrom(...C0, '\u007f', ...LINE_SEPARATORS, ...BIDI, ...EMOJI, ...OTHER, ...SYNTAX) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) }
)
const uni = fc.string({ unit, maxLength: 24 })
// Without C0 controls, DEL and lone surrogates, which are refused before any handler reads them:
// text that gets through to the handlers, the database, the pages and the headers.
// eslint-disable-next-line no-control-regex
const safeUnit = unit.filter((u) => !/[\u0000-\u001f\u007f]/.test(u) && u.isWellFormed())
const uniSafe = fc.string({ unit: safeUnit, maxLength: 24 })
const text = fc.oneof(
  { weight: 4, arbitrary: uni },
  { weight: 5, arbitrary: uniSafe },
  { weight: 2, arbitrary: fc.constantFrom(...EXPLICIT.filter((s) => s.length < 100)) },
  { weight: 1, arbitrary: fc.constantFrom(...TEN_KB) }
)
const digits = fc.stringMatching(/^[0-9]{0,8}$/)
/** Realistic text with Unicode around and inside it: passes a first glance, then doesn't. */
const around = (base: fc.Arbitrary<string>) => fc.tuple(uni, base, uni, fc.nat({ max: 3 })).map(([a, b, c, how]) =>
  how === 0 ? a + b : how === 1 ? b + c : how === 2 ? a + b + c : b.slice(0, 3) + a + b.slice(3))

type Value = string | string[]

function valueFor (field: string): fc.Arbitrary<Value> {
  const one = ((): fc.Arbitrary<string> => {
    switch (field) {
      case 'code':
      case 'currentCode': return fc.oneof(text, around(fc.stringMatching(/^[0-9]{6}$/)), around(fc.constantFrom('123 456', '12345678')))
      case 'recoveryCode': return fc.oneof(text, around(fc.stringMatching(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/)))
      case 'returnTo': return fc.oneof(text, text.map((s) => `/${s}`), text.map((s) => `/2fa/admin/users/${s}`), text.map((s) => `/2fa/admin/users?q=${s}`), around(fc.constantFrom('/', '/export', '//evil.example', '/\\evil')))
      case 'required':
      case 'requireAll':
      case 'allowSkip': return fc.oneof(fc.constantFrom('true', 'false', 'on'), around(fc.constantFrom('true', 'false')), text)
      case 'graceDays':
      case 'page':
      case 'from':
      case 'beforeId': return fc.oneof(digits, around(digits), text)
      case 'requiredRoles':
      case 'exemptRoles': return fc.oneof(text, around(fc.constantFrom('staff', 'admin,user', 'a b c')))
      case 'reason': return fc.oneof(text, around(fc.constant('lost phone')))
      case 'method': return fc.oneof(fc.constantFrom('recovery', 'totp'), around(fc.constant('recovery')), text)
      case 'status': return fc.oneof(fc.constantFrom(...STATUS_FILTERS), around(fc.constantFrom(...STATUS_FILTERS)), text)
      case 'user': return fc.oneof(fc.constantFrom('alice', 'admin'), around(fc.constant('alice')), text)
      case 'type': return fc.oneof(fc.constantFrom(...EVENT_TYPES), around(fc.constantFrom(...EVENT_TYPES)), text)
      case 'until': return fc.oneof(around(fc.constantFrom('2026-12-24', '2027-01-01T12:00', '')), text)
      case 'before': return fc.oneof(around(fc.constantFrom('2026-11-22', '2026-11-22T12:00', '2026-11-22T12:00:00.000Z')), text)
      default: return text
    }
  })()
  // A repeated form field, or a JSON array: the schemas take "anything" for some fields.
  return fc.oneof({ weight: 9, arbitrary: one }, { weight: 1, arbitrary: fc.array(one, { minLength: 1, maxLength: 3 }) })
}

// ---------------------------------------------------------------------------------------------
// Encodings

/** UTF-8, except that a lone surrogate becomes its three-byte form (ED A0 80): invalid UTF-8. */
function wtf8 (s: string): Buffer {
  const bytes: number[] = []
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++ }
    }
    if (c < 0x80) bytes.push(c)
    else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63))
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
  }
  return Buffer.from(bytes)
}

/** Percent-encoding of the WTF-8 bytes: encodeURIComponent, but a lone surrogate is %ED%A0%80 instead of an exception. */
function pct (s: string): string {
  let out = ''
  for (const byte of wtf8(s)) out += /[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  return out
}

/** What Node makes of a header sent as UTF-8 bytes: each byte one Latin-1 character. */
const wire = (s: string): string => wtf8(s).toString('latin1')

type BodyEncoding = 'json' | 'json-wtf8' | 'form' | 'form-wtf8'
type QueryEncoding = 'pct' | 'raw' | 'form'
type Pairs = Array<[string, Value]>

const flat = (pairs: Pairs): Array<[string, string]> => pairs.flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => [k, x] as [string, string]))

function bodyOf (pairs: Pairs, encoding: BodyEncoding): { type: string, payload: string | Buffer } {
  if (encoding === 'form') return { type: 'application/x-www-form-urlencoded', payload: new URLSearchParams(flat(pairs)).toString() }
  if (encoding === 'form-wtf8') return { type: 'application/x-www-form-urlencoded', payload: flat(pairs).map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&') }
  const object: Record<string, Value> = {}
  for (const [k, v] of pairs) Object.defineProperty(object, k, { value: v, enumerable: true, writable: true, configurable: true })
  const json = JSON.stringify(object)
  if (encoding === 'json') return { type: 'application/json', payload: json }
  // The escapes of lone surrogates undone: the raw code unit, sent as invalid UTF-8.
  const raw = json.replace(/(?<!\\)((?:\\\\)*)\\u(d[89a-f][0-9a-f]{2})/gi, (_m, slashes: string, hex: string) => slashes + String.fromCharCode(parseInt(hex, 16)))
  return { type: 'application/json', payload: wtf8(raw) }
}

function queryOf (pairs: Pairs, encoding: QueryEncoding): string {
  const list = flat(pairs)
  if (list.length === 0) return ''
  if (encoding === 'form') return `?${new URLSearchParams(list).toString()}`
  if (encoding === 'pct') return `?${list.map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&')}`
  // Raw: as typed; the URL parser of `inject` encodes what it must (a lone surrogate as U+FFFD).
  return `?${list.map(([k, v]) => `${k}=${v}`).join('&')}`
}

// ---------------------------------------------------------------------------------------------
// Reporting

function short (s: string): string {
  return s.length <= 240 ? s : `${s.slice(0, 160)}…(${s.length} code units)…${s.slice(-40)}`
}

/** JSON with every character outside printable ASCII as a \u escape, long strings cut. */
function escaped (value: unknown): string {
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string') return short(v)
    if (v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return `<bytes ${short(Buffer.from((v as { data: number[] }).data).toString('hex'))}>`
    }
    return v
  })
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** Which parts of the guarded state differ, and how. */
function stateDiff (before: string, after: string): string {
  const a = JSON.parse(before) as Record<string, unknown[] | null>
  const b = JSON.parse(after) as Record<string, unknown[] | null>
  const out: string[] = []
  for (const key of Object.keys(b)) {
    const was = new Set((a[key] ?? []).map((row) => JSON.stringify(row)))
    const is = new Set((b[key] ?? []).map((row) => JSON.stringify(row)))
    const gone = [...was].filter((row) => !is.has(row))
    const added = [...is].filter((row) => !was.has(row))
    if (gone.length + added.length > 0) out.push(`${key}: -${short(gone.join(' '))} +${short(added.join(' '))}`)
  }
  return out.join('; ')
}

/**
 * Failures of the deterministic phases, grouped by what went wrong (one bug met by many inputs
 * is listed once, with how often and the first few requests that met it).
 */
class Findings {
  private readonly groups = new Map<string, { count: number, examples: string[] }>()
  add (message: string): void {
    const key = message.split('\n')[0]!.replace(/"(time|pid|reqId|host|remoteAddress|hostname)":("[^"]*"|\d+),?/g, '').slice(0, 160)
    const group = this.groups.get(key) ?? { count: 0, examples: [] }
    group.count++
    if (group.examples.length < 3) group.examples.push(message)
    this.groups.set(key, group)
  }

  list (): string[] {
    return [...this.groups.values()].map(({ count, examples }) => `${count} request(s); e.g. ${examples.join('\n  and ')}`)
  }
}

// ---------------------------------------------------------------------------------------------
// The properties every answer is held to

/** A same-site path a header can carry: printable ASCII, one leading '/', not '//' or '/\'. */
const SAFE_PATH = /^\/(?![/\\])[\u0021-\u007e]*$/

function problemsWith (response: LightMyRequestResponse, newLogs: string[]): string[] {
  const problems: string[] = []
  if (response.statusCode >= 500) problems.push(`${response.statusCode} ${short(response.body)}`)
  for (const name of ['location', 'hx-redirect', 'hx-location']) {
    const value = response.headers[name]
    if (value !== undefined && !SAFE_PATH.test(String(value))) problems.push(`unsafe ${name} header ${escaped(String(value))}`)
  }
  if (String(response.headers['content-type'] ?? '').includes('application/json')) {
    let next: unknown
    try { next = (JSON.parse(response.body) as { next?: unknown }).next } catch {}
    if (typeof next === 'string' && !SAFE_PATH.test(next)) problems.push(`unsafe JSON next ${escaped(next)}`)
  }
  for (const line of newLogs) {
    if (/"level":(50|60)/.test(line)) problems.push(`logged as an error: ${short(line)}`)
    if (line.includes('already sent')) problems.push(`a reply sent twice: ${short(line)}`)
  }
  return problems
}

// ---------------------------------------------------------------------------------------------
// The world: users, sessions in each state, the guarded state

type State = 'anonymous' | 'pending' | 'pending-setup' | 'signed-in' | 'stale' | 'admin'
const STATES: State[] = ['anonymous', 'pending', 'pending-setup', 'signed-in', 'stale', 'admin']

// admin: enrolled admin (fresh code); alice: enrolled, at the code prompt; bob: required, in the
// forced wizard; carol: signed in without 2FA; erin: enrolled, signed in with a stale code (the
// step-up paths); dave, gina: what the admin's row actions act on; frank (required, may skip),
// lena (enrolled) and carol again: the login returnTo's three ways out.
const USER_IDS = ['admin', 'alice', 'bob', 'carol', 'erin', 'dave', 'gina', 'frank', 'lena']
const USERS: HostUser[] = USER_IDS.map((id) => ({ id, password: `${id}-password`, role: id === 'admin' ? 'admin' : 'user' }))
const passwordOf = (id: string): string => `${id}-password`
const ADMIN_TARGETS = ['dave', 'gina', 'admin', 'nobody']

const MINUTE = 60_000

interface RouteSpec {
  method: 'GET' | 'POST'
  url: string
  /** The body fields (POST) or query fields (GET) the route reads. */
  fields: string[]
  /** The states whose requests reach deepest; other states are drawn too, less often. */
  states: State[]
  runs?: number
  /** A host route (the plugin's gate, step-up and `request.twoFactor` are what it tests). */
  host?: boolean
}

const ROUTES: RouteSpec[] = [
  { method: 'POST', url: '/2fa/challenge', fields: ['code', 'recoveryCode'], states: ['pending'] },
  { method: 'POST', url: '/2fa/setup/confirm', fields: ['code', 'password', 'currentCode'], states: ['pending-setup', 'admin', 'signed-in'] },
  { method: 'POST', url: '/2fa/setup/finish', fields: [], states: ['pending-setup', 'admin'] },
  { method: 'POST', url: '/2fa/setup/skip', fields: [], states: ['pending-setup', 'pending'], runs: LIGHT_RUNS * 2 },
  { method: 'POST', url: '/2fa/step-up', fields: ['code', 'recoveryCode', 'returnTo'], states: ['stale', 'admin'] },
  { method: 'POST', url: '/2fa/disable', fields: ['password', 'currentCode'], states: ['admin', 'stale', 'signed-in'] },
  { method: 'POST', url: '/2fa/recovery-codes', fields: ['password', 'currentCode'], states: ['admin', 'stale'] },
  { method: 'POST', url: '/2fa/admin/policy', fields: ['requireAll', 'graceDays', 'requiredRoles', 'exemptRoles', 'allowSkip', 'returnTo'], states: ['admin'] },
  { method: 'POST', url: '/2fa/admin/users/:id/required', fields: ['required', 'returnTo'], states: ['admin'] },
  { method: 'POST', url: '/2fa/admin/users/:id/reset', fields: ['reason', 'returnTo'], states: ['admin'] },
  { method: 'POST', url: '/2fa/admin/users/:id/unlock', fields: ['returnTo'], states: ['admin'] },
  { method: 'POST', url: '/2fa/admin/users/:id/exempt', fields: ['until', 'reason', 'returnTo'], states: ['admin'] },
  { method: 'POST', url: '/2fa/sessions/:id/end', fields: [], states: ['admin', 'signed-in', 'stale'], runs: LIGHT_RUNS },
  { method: 'POST', url: '/2fa/sessions/end-others', fields: [], states: ['admin', 'signed-in', 'pending'], runs: LIGHT_RUNS },
  { method: 'POST', url: '/2fa/devices/:id/forget', fields: [], states: ['admin', 'signed-in', 'stale'], runs: LIGHT_RUNS },
  { method: 'POST', url: '/2fa/devices/forget-all', fields: [], states: ['admin', 'signed-in', 'pending'], runs: LIGHT_RUNS },
  { method: 'POST', url: '/2fa/logout', fields: [], states: ['anonymous', 'pending', 'pending-setup'], runs: LIGHT_RUNS },
  { method: 'POST', url: '/transfer', fields: ['returnTo'], states: ['stale', 'admin', 'signed-in'], host: true },
  { method: 'POST', url: '/logout', fields: [], states: ['anonymous', 'pending'], runs: LIGHT_RUNS, host: true },
  { method: 'GET', url: '/2fa/challenge', fields: ['method'], states: ['pending'] },
  { method: 'GET', url: '/2fa/setup', fields: [], states: ['pending-setup', 'signed-in', 'admin'] },
  { method: 'GET', url: '/2fa/setup/confirm', fields: [], states: ['pending-setup', 'signed-in', 'admin'] },
  { method: 'GET', url: '/2fa/step-up', fields: ['returnTo', 'method'], states: ['stale', 'admin'] },
  { method: 'GET', url: '/2fa/settings', fields: [], states: ['admin', 'stale', 'signed-in'] },
  { method: 'GET', url: '/2fa/sessions', fields: [], states: ['admin', 'stale', 'signed-in'], runs: LIGHT_RUNS },
  { method: 'GET', url: '/2fa/devices', fields: [], states: ['admin', 'stale', 'signed-in'], runs: LIGHT_RUNS },
  { method: 'GET', url: '/2fa/admin', fields: [], states: ['admin'], runs: LIGHT_RUNS },
  { method: 'GET', url: '/2fa/admin/users', fields: ['q', 'status', 'page', 'from'], states: ['admin'] },
  { method: 'GET', url: '/2fa/admin/users/:id', fields: [], states: ['admin'] },
  { method: 'GET', url: '/2fa/admin/policy', fields: [], states: ['admin'], runs: LIGHT_RUNS },
  { method: 'GET', url: '/2fa/admin/events', fields: ['user', 'type', 'before', 'beforeId'], states: ['admin'] },
  { method: 'GET', url: '/2fa/assets/htmx.min.js', fields: [], states: STATES, runs: LIGHT_RUNS },
  { method: 'GET', url: '/2fa/assets/two-factor.js', fields: [], states: STATES, runs: LIGHT_RUNS },
  { method: 'GET', url: '/2fa/assets/two-factor.css', fields: [], states: STATES, runs: LIGHT_RUNS },
  { method: 'GET', url: '/', fields: ['returnTo'], states: ['pending', 'pending-setup', 'stale'], host: true },
  { method: 'GET', url: '/export', fields: ['returnTo', 'q'], states: ['stale', 'admin', 'signed-in', 'anonymous'], host: true },
  { method: 'GET', url: '/banner', fields: ['returnTo'], states: ['signed-in', 'pending', 'anonymous'], host: true },
  { method: 'GET', url: '/login', fields: ['returnTo'], states: ['anonymous'], runs: LIGHT_RUNS, host: true }
]
/** Fuzzed in a phase of its own: each login makes a new session. */
const LOGIN_ROUTE = 'POST /login'

/** The routes the app has, from `printRoutes` (HEAD aside: Fastify adds it to every GET). */
function routesOf (app: FastifyInstance): string[] {
  const found: string[] = []
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([\s│├└─]*?)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line)
    if (match === null) continue
    const depth = match[1]!.length / 4
    stack.length = depth
    const parent = stack[depth - 1] ?? ''
    const path = (parent.endsWith('/') && match[2]!.startsWith('/') ? parent.slice(0, -1) : parent) + match[2]!
    stack[depth] = path
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '' && m !== 'HEAD')) found.push(`${method} ${path}`)
  }
  return found.sort()
}

t.test('Unicode in every input: no 5xx, no change from a refusal, always an answer', async (t) => {
  const started = Date.now()
  const cpuStarted = process.cpuUsage()
  t.comment(`seed ${SEED}, ${RUNS} runs per POST route, ${GET_RUNS} per GET route`)
  const host: Host = await createHost(t, { users: USERS, twoFactor: { lockoutThreshold: 100, pendingAttempts: 100 } })
  const { app, clock, database } = host
  const db = database.db

  t.same(routesOf(app), [...ROUTES.map((r) => `${r.method} ${r.url}`), LOGIN_ROUTE].sort(), 'every route the app has is fuzzed here')

  // Set-up requests (sign-ins, re-established sessions) are counted apart from the fuzzed ones.
  let setupRequests = 0
  const counting = { inject: async (options: InjectOptions) => { setupRequests++; return await app.inject(options) } } as unknown as FastifyInstance
  const newClient = (): Client => new Client(counting)

  const keys = new Map<string, string>()
  async function enrol (userId: string): Promise<void> {
    const client = newClient()
    await login(client, userId, passwordOf(userId))
    const setup = await client.get('/2fa/setup', { json: true })
    const { manualKey } = JSON.parse(setup.body) as { manualKey: string }
    const confirm = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, clock.ms) }, { json: true })
    if (confirm.statusCode !== 200) throw new Error(`enrolling ${userId}: ${confirm.statusCode} ${confirm.body}`)
    await client.post('/2fa/setup/finish', {}, { json: true })
    keys.set(userId, manualKey)
    clock.advance(30_000)
  }
  async function signInWithCode (client: Client, userId: string): Promise<void> {
    await login(client, userId, passwordOf(userId))
    clock.advance(30_000)
    const done = await client.post('/2fa/challenge', { code: codeFor(keys.get(userId)!, clock.ms) }, { json: true })
    if (done.statusCode !== 200) throw new Error(`signing ${userId} in: ${done.statusCode} ${done.body}`)
  }
  for (const id of ['admin', 'alice', 'erin', 'lena']) await enrol(id)
  for (const id of ['bob', 'frank']) await app.twoFactor.setRequired(id, true, { actor: 'test' })
  const defaultPolicy: PolicySettings = await app.twoFactor.policy()

  /** Puts back what accepted input may have changed that the sessions below depend on. */
  async function restoreWorld (): Promise<void> {
    if (JSON.stringify(await app.twoFactor.policy()) !== JSON.stringify(defaultPolicy)) await app.twoFactor.setPolicy(defaultPolicy, { actor: 'test' })
  }

  // One browser per state, re-established when an accepted input (a skip, a logout) or the
  // clock moved it out of that state.
  const browsers = new Map<State, Client>()
  const unchecked = new Map<State, number>()
  const recheckAll = (): void => { for (const state of STATES) unchecked.set(state, -1) }

  async function establish (state: State): Promise<Client> {
    await restoreWorld()
    const client = newClient()
    if (state === 'anonymous') await client.get('/login', { json: true })
    if (state === 'pending') await login(client, 'alice', passwordOf('alice'))
    if (state === 'pending-setup') {
      await app.twoFactor.setRequired('bob', true, { actor: 'test' })
      await login(client, 'bob', passwordOf('bob'))
      await client.get('/2fa/setup', { json: true })
    }
    if (state === 'signed-in') await login(client, 'carol', passwordOf('carol'))
    if (state === 'admin') await signInWithCode(client, 'admin')
    if (state === 'stale') {
      await signInWithCode(client, 'erin')
      // Older than any freshWithin (the host's 10m and 5m); the other sessions are looked at again.
      clock.advance(16 * MINUTE)
      recheckAll()
    }
    if (state === 'admin' || state === 'stale') await client.get('/2fa/settings', { json: true })
    browsers.set(state, client)
    unchecked.set(state, 0)
    return client
  }

  async function sessionState (client: Client): Promise<Record<string, unknown> | null> {
    const cookie = client.sessionCookie()
    if (cookie === undefined) return null
    const value = decodeURIComponent(cookie)
    const sid = value.slice(0, value.lastIndexOf('.'))
    const row = rowsOf<{ tf: Record<string, unknown> | null }>(await db.execute(
      sql`select data->'twoFactor' as tf from two_factor.sessions where sid_hash = ${hashSessionId(sid)}`))[0]
    return row?.tf ?? null
  }

  function inState (state: State, tf: Record<string, unknown> | null): boolean {
    const now = clock.ms
    const live = (tf?.expiresAt as number | undefined ?? 0) > now + MINUTE
    switch (state) {
      case 'anonymous': return tf === null
      case 'pending': return tf?.state === 'pending' && tf.userId === 'alice' && live
      case 'pending-setup': return tf?.state === 'pending-setup' && tf.userId === 'bob' && live
      case 'signed-in': return tf?.state === 'signed-in' && tf.userId === 'carol'
      case 'stale': return tf?.state === 'signed-in' && tf.userId === 'erin' && (tf.verifiedAt as number) < now - 10 * MINUTE
      case 'admin': return tf?.state === 'signed-in' && tf.userId === 'admin' && (tf.verifiedAt as number) > now - 4 * MINUTE
    }
  }

  /** The browser for a state; looked at again after an accepted input, and every 25 runs. */
  async function browser (state: State): Promise<Client> {
    const client = browsers.get(state)
    const runs = unchecked.get(state) ?? -1
    if (client !== undefined && runs >= 0 && runs < 25) return client
    if (client !== undefined && inState(state, await sessionState(client))) {
      unchecked.set(state, 0)
      return client
    }
    baseline = null
    return await establish(state)
  }

  const GUARDED_EVENTS_EXCLUDED = ['challenge.failed', 'lockout.started', 'admin.denied', 'enrolment.started', 'wizard.shown', 'sessions.ended']
  const excluded = sql.join(GUARDED_EVENTS_EXCLUDED.map((type) => sql`${type}`), sql`, `)
  /** What a refused input must leave alone. (Failure counters and pending secrets change by design.) */
  async function guardedState (): Promise<string> {
    const rows = rowsOf<{ state: unknown }>(await db.execute(sql`select json_build_object(
      'accounts', (select json_agg(json_build_array(user_id, secret, enabled_at, required, last_used_step, enrolment_id) order by user_id) from two_factor.accounts),
      'recovery', (select json_agg(json_build_array(user_id, digest, used_at) order by user_id, digest) from two_factor.recovery_codes),
      'settings', (select json_agg(json_build_array(key, value) order by key) from two_factor.settings),
      'events', (select json_agg(json_build_array(id, type, user_id) order by id) from two_factor.events where type not in (${excluded})),
      'signedIn', (select json_agg(json_build_array(sid_hash, user_id) order by sid_hash) from two_factor.sessions where data->'twoFactor'->>'state' = 'signed-in')
    ) as state`))
    return JSON.stringify(rows[0]!.state)
  }
  let baseline: string | null = null

  // Room for thousands of refused codes: counters are cleared between runs, so no refusal locks
  // an account or exhausts a prompt (the lockout itself is tested elsewhere).
  let sinceCleared = 0
  async function clearCounters (): Promise<void> {
    if (++sinceCleared < 20) return
    sinceCleared = 0
    await db.execute(sql`update two_factor.accounts set failed_attempts = 0, lockouts = 0, locked_until = null`)
    await db.execute(sql`update two_factor.challenges set attempts = 0`)
  }

  // ---------------------------------------------------------------------------------------------
  // One request

  let requests = 0
  const statuses = new Map<number, number>()

  interface Sent {
    method: 'GET' | 'POST'
    url: string
    headers: Record<string, string>
    payload?: string | Buffer
  }

  function describe (label: string, request: Sent): string {
    const { cookie: _cookie, 'x-csrf-token': _csrf, ...headers } = request.headers
    const payload = request.payload === undefined ? undefined : Buffer.isBuffer(request.payload) ? { bytes: request.payload.toString('hex').slice(0, 480) } : request.payload
    return `${label}: ${escaped({ method: request.method, url: request.url, headers, payload })}`
  }

  /** Sends one request, with a timeout; throws naming the request if the answer breaks a property. */
  async function exchange (label: string, request: Sent): Promise<LightMyRequestResponse> {
    const logMark = host.logs.length
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms (wedged): ${describe(label, request)} ${REPRODUCE}`)), TIMEOUT_MS)
    })
    let response: LightMyRequestResponse
    try {
      response = await Promise.race([app.inject({ method: request.method, url: request.url, headers: request.headers, payload: request.payload }), timeout])
    } catch (error) {
      throw new Error(`the request failed (${(error as Error).message}): ${describe(label, request)} ${REPRODUCE}`)
    } finally {
      clearTimeout(timer)
    }
    requests++
    statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
    const problems = problemsWith(response, host.logs.slice(logMark))
    if (problems.length > 0) throw new Error(`${problems.join('; ')}\n    after ${describe(label, request)} ${REPRODUCE}`)
    return response
  }

  /** Keeps the cookies and CSRF token an answer gives, as the shared client does. */
  function absorb (client: Client, response: LightMyRequestResponse): void {
    for (const cookie of response.cookies as Array<{ name: string, value: string, expires?: Date, maxAge?: number }>) {
      const expired = (cookie.expires !== undefined && cookie.expires.getTime() <= Date.now()) || cookie.maxAge === 0 || cookie.value === ''
      if (expired) client.cookies.delete(cookie.name)
      else client.cookies.set(cookie.name, cookie.value)
    }
    const type = String(response.headers['content-type'] ?? '')
    if (type.includes('text/html')) {
      const match = /<meta name="csrf-token" content="([^"]+)"/.exec(response.body) ?? /name="_csrf" value="([^"]+)"/.exec(response.body)
      if (match !== null) client.csrfToken = match[1]
    } else if (type.includes('application/json')) {
      try {
        const body = JSON.parse(response.body) as { csrfToken?: unknown }
        if (typeof body.csrfToken === 'string') client.csrfToken = body.csrfToken
      } catch {}
    }
  }

  const cookieOf = (client: Client): string => [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ')

  type HeaderName = 'user-agent' | 'referer' | 'hx-current-url' | 'hx-request' | 'accept' | 'sec-fetch-site' | 'host' | 'accept-language'
  type Headers = Partial<Record<HeaderName, string>>

  interface Input {
    state: State
    fields: Pairs
    body: BodyEncoding
    query: Pairs
    queryEncoding: QueryEncoding
    id: string
    idEncoding: 'pct' | 'raw'
    headers: Headers
    headerMode: 'raw' | 'wire'
  }

  /**
   * One fuzzed request from the browser of its state, held to every property: (a), (c) and the
   * header and log checks in `exchange`, (b) here. Returns the answer.
   */
  async function fuzzOne (label: string, route: RouteSpec, input: Input): Promise<LightMyRequestResponse> {
    const client = await browser(input.state)
    await clearCounters()
    baseline ??= await guardedState()
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(input.headers)) if (value !== undefined) headers[name] = input.headerMode === 'wire' ? wire(value) : value
    const cookie = cookieOf(client)
    if (cookie !== '') headers.cookie = cookie
    const id = input.idEncoding === 'pct' ? pct(input.id) : input.id
    let url = route.url.replace(':id', id)
    let payload: string | Buffer | undefined
    if (route.method === 'GET') {
      url += queryOf([...input.query, ...input.fields], input.queryEncoding)
    } else {
      url += queryOf(input.query, input.queryEncoding)
      headers['x-csrf-token'] = client.csrfToken ?? ''
      const body = bodyOf(input.fields, input.body)
      headers['content-type'] = body.type
      payload = body.payload
    }
    const request: Sent = { method: route.method, url, headers, payload }
    const response = await exchange(`${label} as ${input.state}`, request)
    absorb(client, response)
    // A lockout (423) is what refused codes are for: it may end sessions by design.
    const accepted = response.statusCode < 400 || response.statusCode === 423
    unchecked.set(input.state, accepted ? -1 : (unchecked.get(input.state) ?? 0) + 1)
    if (accepted && route.method === 'POST') {
      baseline = null
      await restoreWorld()
      return response
    }
    const after = await guardedState()
    if (after !== baseline) {
      const what = route.method === 'GET' ? `a GET (${response.statusCode})` : `a refused input (${response.statusCode})`
      const before = baseline
      baseline = null
      throw new Error(`${what} changed guarded state\n    ${stateDiff(before, after)}\n    after ${describe(`${label} as ${input.state}`, request)} ${REPRODUCE}`)
    }
    return response
  }

  // ---------------------------------------------------------------------------------------------
  // Arbitraries of whole requests

  const urlish = fc.oneof(
    text.map((s) => `http://localhost/${s}`),
    text.map((s) => `http://localhost:80/2fa/admin/users?q=${s}`),
    text.map((s) => `http://localhost/${s}#${s}`),
    text.map((s) => `http://${s}/`),
    text
  )
  const headersArb: fc.Arbitrary<Headers> = fc.record({
    'user-agent': fc.option(fc.oneof(text, text.map((s) => `Mozilla/5.0 ${s}`)), { nil: undefined }),
    referer: fc.option(urlish, { nil: undefined }),
    'hx-current-url': fc.option(urlish, { nil: undefined }),
    'hx-request': fc.option(fc.oneof(fc.constant('true'), fc.constant('true'), text), { nil: undefined }),
    accept: fc.option(fc.oneof(fc.constantFrom('application/json', 'text/html', 'text/html, application/json'), text.map((s) => `application/json${s}`), text), { nil: undefined, freq: 3 }),
    'sec-fetch-site': fc.option(fc.oneof(fc.constantFrom('same-origin', 'cross-site', 'none'), text), { nil: undefined, freq: 3 }),
    host: fc.option(fc.oneof(text, text.map((s) => `localhost${s}`)), { nil: undefined, freq: 10 }),
    'accept-language': fc.option(fc.oneof(text, text.map((s) => `de-DE,de;q=0.9,${s}`), text.map((s) => `${s};q=${s}`)), { nil: undefined, freq: 4 })
  })
  const junkField: fc.Arbitrary<[string, Value]> = fc.tuple(fc.oneof(text, fc.constantFrom('__proto__', 'constructor', '_csrf', '')), valueFor(''))

  function inputArb (route: RouteSpec): fc.Arbitrary<Input> {
    const fields = fc.tuple(...route.fields.map((field) => fc.option(valueFor(field).map((v) => [field, v] as [string, Value]), { nil: undefined, freq: 4 })))
      .map((list) => list.filter((pair): pair is [string, Value] => pair !== undefined))
    return fc.record({
      state: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...route.states) }, { weight: 1, arbitrary: fc.constantFrom(...STATES) }),
      fields: fc.tuple(fields, fc.option(junkField, { nil: undefined, freq: 3 })).map(([list, junk]) => junk === undefined ? list : [...list, junk]),
      body: fc.constantFrom<BodyEncoding>('json', 'json', 'json-wtf8', 'form', 'form-wtf8'),
      query: fc.oneof({ weight: 3, arbitrary: fc.constant<Pairs>([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.oneof(fc.constantFrom('method', 'returnTo', '_csrf'), text), valueFor('')), { maxLength: 3 }) }),
      queryEncoding: fc.constantFrom<QueryEncoding>('pct', 'pct', 'raw', 'form'),
      id: fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...ADMIN_TARGETS) }, { weight: 3, arbitrary: text }, { weight: 1, arbitrary: around(fc.constantFrom(...ADMIN_TARGETS)) }),
      idEncoding: fc.constantFrom<'pct' | 'raw'>('pct', 'pct', 'raw'),
      headers: headersArb,
      headerMode: fc.constantFrom<'raw' | 'wire'>('raw', 'wire')
    })
  }

  for (const state of ['stale', ...STATES.filter((s) => s !== 'stale')] as State[]) await establish(state)
  const setupDone = Date.now()

  // ---------------------------------------------------------------------------------------------
  // 1. Random requests to every route

  let index = 0
  for (const route of ROUTES) {
    const seed = SEED + index++
    const numRuns = route.runs ?? (route.method === 'POST' ? RUNS : GET_RUNS)
    await t.test(`${route.method} ${route.url}`, async (t) => {
      try {
        await fc.assert(fc.asyncProperty(inputArb(route), async (input) => { await fuzzOne(`${route.method} ${route.url}`, route, input) }),
          { numRuns, seed, endOnFailure: true })
        t.pass(`${numRuns} requests: no 5xx, no change from a refusal, safe redirects, nothing logged as an error`)
      } catch (error) {
        baseline = null
        const cause = (error as Error).cause
        t.fail(`${cause instanceof Error ? cause.message : ''}\n${(error as Error).message}\n(this route's seed ${seed}) ${REPRODUCE}`)
      }
    })
  }

  // ---------------------------------------------------------------------------------------------
  // 2. Each explicit case through each kind of input

  await t.test('explicit cases in every kind of input', async (t) => {
    const failures = new Findings()
    const attempt = async (run: () => Promise<unknown>) => {
      try { await run() } catch (error) { baseline = null; failures.add((error as Error).message) }
    }
    const none: Input = { state: 'anonymous', fields: [], body: 'json', query: [], queryEncoding: 'pct', id: 'dave', idEncoding: 'pct', headers: {}, headerMode: 'raw' }
    const posts = ROUTES.filter((r) => r.method === 'POST')
    const bodyTargets = posts.flatMap((route) => [...route.fields, 'junk'].map((field) => ({ route, field })))
    const gets = ROUTES.filter((r) => r.method === 'GET' && !r.url.includes('/assets/'))
    const queryTargets = gets.flatMap((route) => [...route.fields, 'junk'].map((field) => ({ route, field })))
    const idRoutes = ROUTES.filter((r) => r.url.includes(':id'))
    const headerRoutes = ['POST /transfer', 'GET /export', 'POST /2fa/step-up', 'POST /2fa/admin/users/:id/reset', 'GET /2fa/challenge', 'POST /2fa/setup/confirm', 'POST /2fa/logout', 'GET /2fa/admin/events']
      .map((name) => ROUTES.find((r) => `${r.method} ${r.url}` === name)!)
    const headerNames: HeaderName[] = ['user-agent', 'referer', 'hx-current-url', 'hx-request', 'accept', 'sec-fetch-site', 'host', 'accept-language']
    const shapes = [(v: string) => v, (v: string) => `/${v}`, (v: string) => `12${v}3456`, (v: string) => `a${v}b${v}`]
    const bodyEncodings: BodyEncoding[] = ['json', 'form-wtf8', 'json-wtf8', 'form']
    const queryEncodings: QueryEncoding[] = ['pct', 'raw', 'form']
    let sent = 0
    // Each case once in a body field, a query field, the path parameter and two headers; the
    // targets and encodings turn with the case, so every one is met by many cases.
    for (const [i, v] of EXPLICIT.entries()) {
      const shaped = shapes[i % shapes.length]!(v)
      const encoding = bodyEncodings[Math.floor(i / shapes.length) % bodyEncodings.length]!
      const body = bodyTargets[(i * 5) % bodyTargets.length]!
      await attempt(async () => { sent++; await fuzzOne(`${body.route.method} ${body.route.url} ${encoding} ${escaped(body.field)}`, body.route, { ...none, state: body.route.states[i % body.route.states.length]!, fields: [[body.field === 'junk' ? v : body.field, shaped]], body: encoding }) })
      const query = queryTargets[(i * 3) % queryTargets.length]!
      const queryEncoding = queryEncodings[i % queryEncodings.length]!
      await attempt(async () => { sent++; await fuzzOne(`${query.route.method} ${query.route.url} query ${queryEncoding} ${escaped(query.field)}`, query.route, { ...none, state: query.route.states[i % query.route.states.length]!, fields: [[query.field === 'junk' ? v : query.field, shaped]], queryEncoding }) })
      const idRoute = idRoutes[i % idRoutes.length]!
      const idEncoding = i % 2 === 0 ? 'pct' : 'raw'
      await attempt(async () => { sent++; await fuzzOne(`${idRoute.method} ${idRoute.url} :id ${idEncoding}`, idRoute, { ...none, state: 'admin', id: `dave${v}`, idEncoding, fields: idRoute.method === 'POST' ? [['required', 'true']] : [] }) })
      for (const j of [0, 1]) {
        const name = headerNames[(i * 2 + j) % headerNames.length]!
        const headerRoute = headerRoutes[(i + j) % headerRoutes.length]!
        const value = name === 'referer' || name === 'hx-current-url'
          ? `http://localhost/${v}`
          : name === 'hx-request' ? `true${v}` : name === 'accept' ? `${i % 3 === 0 ? 'text/html' : 'application/json'}${v}` : shaped
        const headerMode = (i + j) % 2 === 0 ? 'raw' : 'wire'
        const extra: Headers = name === 'hx-current-url' ? { 'hx-request': 'true' } : {}
        await attempt(async () => { sent++; await fuzzOne(`${headerRoute.method} ${headerRoute.url} header ${name} ${headerMode}`, headerRoute, { ...none, state: headerRoute.states[0]!, headers: { ...extra, [name]: value }, headerMode }) })
      }
    }
    t.same(failures.list(), [], `${EXPLICIT.length} explicit cases, ${sent} requests`)
  })

  // ---------------------------------------------------------------------------------------------
  // 3. The login returnTo, followed to the redirect that uses it

  await t.test('the returnTo a host hands to startLogin', async (t) => {
    const failures = new Findings()
    await restoreWorld()
    await app.twoFactor.setRequired('frank', true, { actor: 'test' })
    // Three ways out of the password step: signed in at once (carol), the code prompt (lena), the
    // forced wizard's "Skip for now" (frank). Each client keeps its session between logins.
    const clients = new Map<string, Client>()
    const historic: Array<{ returnTo: string, htmx?: boolean }> = [
      { returnTo: '/ā' }, { returnTo: '/ā', htmx: true }, { returnTo: '/\u2028', htmx: true }, { returnTo: '/\u2029x', htmx: true },
      { returnTo: '/\u007f' }, { returnTo: '/\u007f', htmx: true }, { returnTo: '/\ud800' }, { returnTo: '/\udc00x', htmx: true },
      { returnTo: '/\u0000' }, { returnTo: '/\t/evil.example' }, { returnTo: '/%ED%A0%80' }, { returnTo: '/😀', htmx: true }
    ]
    const random = fc.sample(fc.oneof(text.map((s) => `/${s}`), text, around(fc.constantFrom('/export', '/2fa/settings', '//evil.example'))), { numRuns: RUNS, seed: SEED })
    const cases = [
      ...historic.map((c) => ({ ...c, encoding: 'json' as BodyEncoding })),
      ...historic.map((c) => ({ ...c, encoding: 'form-wtf8' as BodyEncoding })),
      ...EXPLICIT.map((v, i) => ({ returnTo: i % 3 === 2 ? v : `/${v}`, htmx: i % 2 === 0, encoding: (['json', 'form', 'json-wtf8', 'form-wtf8'] as BodyEncoding[])[i % 4]! })),
      ...random.map((returnTo, i) => ({ returnTo, htmx: i % 3 === 0, encoding: (['json', 'form', 'json-wtf8', 'form-wtf8'] as BodyEncoding[])[i % 4]! }))
    ]
    const ways = ['lena', 'carol', 'frank'] as const
    for (const [i, c] of cases.entries()) {
      const userId = ways[i % ways.length]!
      const mode = c.htmx === true ? 'htmx' : (['page', 'json'] as const)[i % 2]!
      const label = `POST /login returnTo (${c.encoding}) for ${userId}, then ${mode}`
      try {
        let client = clients.get(userId)
        if (client === undefined) {
          client = newClient()
          await client.get('/login', { json: true })
          clients.set(userId, client)
        }
        const body = bodyOf([['username', userId], ['password', passwordOf(userId)], ['returnTo', c.returnTo]], c.encoding)
        const headers = { cookie: cookieOf(client), 'x-csrf-token': client.csrfToken ?? '', 'content-type': body.type, accept: 'application/json' }
        const request: Sent = { method: 'POST', url: '/login', headers, payload: body.payload }
        const started = await exchange(label, request)
        absorb(client, started)
        if (started.statusCode !== 200) throw new Error(`the login was refused (${started.statusCode} ${short(started.body)}): ${describe(label, request)}`)
        const { state } = JSON.parse(started.body) as { state: string, next: string }
        const expected = { lena: 'pending', carol: 'signed-in', frank: 'pending-setup' }[userId]
        if (state !== expected) throw new Error(`login as ${userId} gave ${state}, not ${expected}: ${describe(label, request)}`)
        // The step that sends the user on to returnTo.
        const wayOut: Record<string, string> = { cookie: cookieOf(client), 'x-csrf-token': client.csrfToken ?? '' }
        if (mode === 'json') wayOut.accept = 'application/json'
        if (mode === 'htmx') wayOut['hx-request'] = 'true'
        let onward: LightMyRequestResponse | undefined
        if (userId === 'lena') {
          clock.advance(30_000)
          const form = bodyOf([['code', codeFor(keys.get('lena')!, clock.ms)]], 'form')
          onward = await exchange(`${label}: the code`, { method: 'POST', url: '/2fa/challenge', headers: { ...wayOut, 'content-type': form.type }, payload: form.payload })
        } else if (userId === 'frank') {
          onward = await exchange(`${label}: skip`, { method: 'POST', url: '/2fa/setup/skip', headers: { ...wayOut, 'content-type': 'application/x-www-form-urlencoded' }, payload: '' })
        }
        if (onward !== undefined) {
          absorb(client, onward)
          const where = onward.headers.location ?? onward.headers['hx-redirect'] ?? (JSON.parse(onward.body || '{}') as { next?: string }).next
          if (onward.statusCode >= 400 || where === undefined) throw new Error(`no way on (${onward.statusCode} ${short(onward.body)}) after ${describe(label, request)}`)
        }
        if (userId === 'lena') {
          // The same text as the step-up's returnTo, with a right code: the redirect after it.
          const page = await exchange(`${label}: the step-up page`, { method: 'GET', url: '/2fa/step-up', headers: { cookie: cookieOf(client), accept: 'application/json' } })
          absorb(client, page)
          clock.advance(30_000)
          const form = bodyOf([['code', codeFor(keys.get('lena')!, clock.ms)], ['returnTo', c.returnTo]], c.encoding)
          const stepUp: Sent = { method: 'POST', url: '/2fa/step-up', headers: { ...wayOut, cookie: cookieOf(client), 'x-csrf-token': client.csrfToken ?? '', 'content-type': form.type }, payload: form.payload }
          const back = await exchange(`${label}: a step-up with this returnTo`, stepUp)
          absorb(client, back)
          // A lone surrogate or a control in the body is refused before the code is looked at.
          if (back.statusCode >= 400 && back.statusCode !== 422) throw new Error(`the step-up was refused (${back.statusCode} ${short(back.body)}): ${describe(label, stepUp)}`)
        }
        // The session was stored: the next request is signed in.
        const now = await exchange(`${label}: the next page`, { method: 'GET', url: '/', headers: { cookie: cookieOf(client), accept: 'application/json' } })
        absorb(client, now)
        const after = JSON.parse(now.body) as { state?: string }
        if (now.statusCode !== 200 || after.state !== 'signed-in') throw new Error(`not signed in afterwards (${now.statusCode} ${short(now.body)}) after ${describe(label, request)}`)
      } catch (error) {
        failures.add(`${(error as Error).message} ${REPRODUCE}`)
        clients.delete(userId)
      }
    }
    recheckAll()
    t.same(failures.list(), [], `${cases.length} logins with a Unicode returnTo, each followed to its redirect`)
  })

  // ---------------------------------------------------------------------------------------------
  // 4. Raw bytes through Node's own HTTP parser

  await t.test('raw bytes over a real socket', async (t) => {
    await app.listen({ port: 0, host: '127.0.0.1' })
    const address = app.server.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    const authority = `127.0.0.1:${address.port}`
    const raw = async (head: Buffer, body: Buffer = Buffer.alloc(0)): Promise<{ status: number, head: string }> => {
      return await new Promise((resolve, reject) => {
        const socket = connect(address.port, '127.0.0.1')
        const chunks: Buffer[] = []
        const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer within ${TIMEOUT_MS} ms to ${escaped(head.toString('latin1'))}`)) }, TIMEOUT_MS)
        socket.on('data', (chunk) => chunks.push(chunk))
        socket.on('error', (error) => { clearTimeout(timer); reject(error) })
        socket.on('close', () => {
          clearTimeout(timer)
          const answer = Buffer.concat(chunks).toString('latin1')
          const match = /^HTTP\/1\.1 (\d{3})/.exec(answer)
          if (match === null) reject(new Error(`not an HTTP answer to ${escaped(head.toString('latin1'))}: ${escaped(answer.slice(0, 200))}`))
          else resolve({ status: Number(match[1]), head: answer.slice(0, answer.indexOf('\r\n\r\n')) })
        })
        // Not `end()`: a half-closed socket may be closed by the server before it answers.
        socket.write(Buffer.concat([head, body]))
      })
    }
    const request = (method: string, target: Buffer | string, headers: Array<[string, Buffer | string]>, client?: Client, body?: Buffer) => {
      const lines: Buffer[] = [Buffer.concat([Buffer.from(`${method} `), typeof target === 'string' ? Buffer.from(target, 'latin1') : target, Buffer.from(' HTTP/1.1\r\n')])]
      const all: Array<[string, Buffer | string]> = [['Host', authority], ['Connection', 'close'], ...headers]
      if (client !== undefined) all.push(['Cookie', cookieOf(client)], ['X-CSRF-Token', client.csrfToken ?? ''])
      if (body !== undefined) all.push(['Content-Length', String(body.length)])
      for (const [name, value] of all) lines.push(Buffer.concat([Buffer.from(`${name}: `), typeof value === 'string' ? Buffer.from(value, 'latin1') : value, Buffer.from('\r\n')]))
      lines.push(Buffer.from('\r\n'))
      return { head: Buffer.concat(lines), body }
    }
    const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p)))
    const stale = await browser('stale')
    const admin = await browser('admin')
    const pending = await browser('pending')
    const cases: Array<{ label: string, head: Buffer, body?: Buffer }> = []
    const add = (label: string, r: { head: Buffer, body?: Buffer }) => cases.push({ label, ...r })
    const SURROGATE = [0xed, 0xa0, 0x80]
    const LINE_SEP = [0xe2, 0x80, 0xa8]
    const A_MACRON = [0xc4, 0x81]
    for (const [name, seq] of [['lone surrogate', SURROGATE], ['U+2028', LINE_SEP], ['ā', A_MACRON], ['Latin-1 byte', [0xff]], ['DEL', [0x7f]], ['NUL', [0x00]]] as Array<[string, number[]]>) {
      add(`GET /export?x=<${name}> (stale: to the step-up)`, request('GET', bytes('/export?x=', seq), [], stale))
      add(`GET /export/<${name}> via htmx`, request('GET', bytes('/export?', seq, '=1'), [['HX-Request', 'true'], ['HX-Current-URL', bytes(`http://${authority}/`, seq)]], stale))
      add(`GET /2fa/step-up?returnTo=/<${name}>`, request('GET', bytes('/2fa/step-up?returnTo=/', seq), [], admin))
      add(`GET /2fa/admin/users/<${name}>`, request('GET', bytes('/2fa/admin/users/dave', seq), [['Accept', 'application/json']], admin))
      add(`GET /2fa/admin/users?q=<${name}>`, request('GET', bytes('/2fa/admin/users?q=', seq), [], admin))
      add(`GET /2fa/challenge?method=<${name}>`, request('GET', bytes('/2fa/challenge?method=', seq), [], pending))
      add(`POST /transfer, Referer /<${name}> (stale: the prompt)`, request('POST', '/transfer', [['Referer', bytes(`http://${authority}/`, seq)], ['Content-Type', 'application/x-www-form-urlencoded']], stale, Buffer.alloc(0)))
      add(`POST /transfer via htmx, HX-Current-URL /<${name}>`, request('POST', '/transfer', [['HX-Request', 'true'], ['HX-Current-URL', bytes(`http://${authority}/?a=`, seq)], ['Content-Type', 'application/x-www-form-urlencoded']], stale, Buffer.alloc(0)))
      add(`User-Agent <${name}> at the code prompt`, request('POST', '/2fa/challenge', [['User-Agent', bytes('UA ', seq)], ['Content-Type', 'application/json'], ['Accept', 'application/json']], pending, bytes('{"code":"1', seq, '"}')))
      add(`POST /2fa/step-up returnTo <${name}> as raw JSON`, request('POST', '/2fa/step-up', [['Content-Type', 'application/json']], admin, bytes('{"code":"000000","returnTo":"/', seq, '"}')))
    }
    const failures = new Findings()
    for (const c of cases) {
      try {
        const answer = await raw(c.head, c.body)
        requests++
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
        if (answer.status >= 500) throw new Error(`${answer.status} for ${c.label}: ${escaped(answer.head)}`)
        for (const line of answer.head.split('\r\n')) {
          const header = /^(location|hx-redirect|hx-location): (.*)$/i.exec(line)
          if (header !== null && !SAFE_PATH.test(header[2]!)) throw new Error(`unsafe ${header[1]} ${escaped(header[2])} for ${c.label}`)
        }
      } catch (error) {
        failures.add(`${c.label}: ${(error as Error).message}`)
      }
    }
    const alive = await raw(request('GET', '/', [['Accept', 'application/json']]).head).catch((error: Error) => ({ status: 0, head: error.message }))
    t.equal(alive.status, 200, `the server still answers over HTTP afterwards ${alive.status === 200 ? '' : alive.head}`)
    t.same(failures.list(), [], `${cases.length} requests with raw bytes: no 5xx, safe redirects, each answered`)
  })

  // ---------------------------------------------------------------------------------------------
  // 5. Afterwards

  await t.test('afterwards', async (t) => {
    const home = await app.inject({ method: 'GET', url: '/', headers: { accept: 'application/json' } })
    t.equal(home.statusCode, 200, 'a final GET is answered')
    const challenge = await app.inject({ method: 'GET', url: '/2fa/challenge', headers: { accept: 'application/json' } })
    t.equal(challenge.statusCode, 401, 'and a plugin page too')
    const admin = await browser('admin')
    const users = await app.inject({ method: 'GET', url: '/2fa/admin/users', headers: { accept: 'application/json', cookie: cookieOf(admin) } })
    t.equal(users.statusCode, 200, 'the admin list (the database) still answers')
    t.same(host.logs.filter((line) => /"level":(50|60)/.test(line)).map(short), [], 'nothing logged as an error or fatal')
    t.same(host.logs.filter((line) => line.includes('already sent')).map(short), [], 'no reply was sent twice')
    t.notOk([...statuses.keys()].some((status) => status >= 500), 'no 5xx at all')
    const seconds = (Date.now() - started) / 1000
    const cpu = process.cpuUsage(cpuStarted)
    t.comment(`${requests} fuzzed requests (+${setupRequests} to set sessions up) in ${seconds.toFixed(1)} s, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s of CPU (${((setupDone - started) / 1000).toFixed(1)} s of set-up); statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`)
  })
})
