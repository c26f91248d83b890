// One-time codes: RFC 4226 (HOTP) and RFC 6238 (TOTP). Pure functions over node:crypto
// so the arithmetic can be checked against the RFC vectors without a database or a server.
// Replay protection (one use per time step) is NOT here: it needs an atomic compare-and-set on
// the account row, which the caller does with the step that verifyTotp returns.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { base32Encode } from './base32.ts'

export type TotpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512'

export interface TotpParams {
  algorithm: TotpAlgorithm
  digits: number
  period: number
  window: number
}

export const DEFAULT_TOTP: TotpParams = { algorithm: 'SHA1', digits: 6, period: 30, window: 1 }

const NODE_HASH_NAME: Record<TotpAlgorithm, string> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' }

/** 160 bits: the HMAC-SHA1 output size RFC 4226 §4 recommends, and 32 base32 chars exactly. */
export const SECRET_BYTES = 20

const MAX_COUNTER = (1n << 64n) - 1n

/**
 * Anything longer than this cannot be a code even with generous spacing; refusing it early
 * keeps a megabyte-long form field from costing more than a short one.
 */
const MAX_RAW_CODE_LENGTH = 64

export function generateSecret (): Buffer {
  return randomBytes(SECRET_BYTES)
}

/**
 * RFC 4226 §5.3. The counter is written as a full 64-bit big-endian integer: TOTP steps pass
 * 2^32 (year 4000 at 30 s, much sooner with short periods), and RFC 6238's own test vector at
 * T = 20000000000 s checks that the high word is not dropped.
 */
export function hotp (secret: Buffer, counter: bigint | number, algorithm: TotpAlgorithm, digits: number): string {
  assertDigits(digits)
  const counterBig = toCounter(counter)
  const message = Buffer.alloc(8)
  message.writeBigUInt64BE(counterBig)
  const mac = createHmac(hashNameOf(algorithm), secret).update(message).digest()
  // Dynamic truncation: the low nibble of the last byte picks where the 31-bit value starts.
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f
  const truncated = mac.readUInt32BE(offset) & 0x7fffffff
  return String(truncated % 10 ** digits).padStart(digits, '0')
}

/** The RFC 6238 time step T for a moment in milliseconds since the Unix epoch. */
export function timeStep (nowMs: number, period: number): number {
  assertPeriod(period)
  if (!Number.isFinite(nowMs) || nowMs < 0) {
    throw new RangeError('nowMs must be a non-negative finite number of milliseconds')
  }
  // Dividing by the period in ms in one go avoids the rounding of nowMs / 1000 / period.
  return Math.floor(nowMs / (period * 1000))
}

/**
 * Turns whatever arrived in the request body into a code, or null. Only a string is taken:
 * form parsers and JSON bodies can hand over arrays, objects or numbers (a number would also
 * have lost its leading zeros). Spaces and tabs are what people and password managers insert
 * ("123 456"); anything else, including full-width or other non-ASCII digits, is refused rather
 * than normalised, so what we verify is exactly what an authenticator can display.
 */
export function parseTotpInput (raw: unknown, digits: number): string | null {
  if (typeof raw !== 'string' || raw.length > MAX_RAW_CODE_LENGTH) return null
  const compact = raw.replace(/[ \t]/g, '')
  if (compact.length !== digits || !/^[0-9]+$/.test(compact)) return null
  return compact
}

/**
 * Checks the code against steps T-window..T+window. Every candidate is computed and compared,
 * with no early exit, so the time taken does not reveal whether (or at which step) it matched.
 * When more than one step matches (a 1-in-10^digits coincidence), the one nearest to T wins, so
 * a fresh code is not mistaken for the older step that the replay check may already have used.
 */
export function verifyTotp (secret: Buffer, code: string, nowMs: number, params: TotpParams): { step: number } | null {
  assertWindow(params.window)
  const current = timeStep(nowMs, params.period)
  const wellFormed = code.length === params.digits && /^[0-9]+$/.test(code)
  // A malformed code is still compared (against bytes no candidate can contain), so it costs
  // the same as a wrong one.
  const submitted = Buffer.from(wellFormed ? code : '\0'.repeat(params.digits), 'latin1')

  let matchedStep: number | null = null
  for (const offset of offsetsNearestFirst(params.window)) {
    const step = current + offset
    if (step < 0) continue
    const candidate = Buffer.from(hotp(secret, step, params.algorithm, params.digits), 'latin1')
    const equal = timingSafeEqual(candidate, submitted)
    if (equal && matchedStep === null) matchedStep = step
  }
  return matchedStep === null ? null : { step: matchedStep }
}

/**
 * Which steps the drift hint may look at. At sign-in and step-up only `past` ones: saying that a
 * code belongs to a step still to come would tell a guesser a code that will work soon. At the
 * enrolment confirm step the secret is the session's own, and `both` helps a user whose clock
 * runs ahead.
 */
export type DriftDirection = 'past' | 'both'

/**
 * For the "your device clock seems to be off by about N minutes" hint, after a code has
 * failed. Looks outside the accepted window, up to ±maxDriftMs, and reports the nearest
 * matching step as whole minutes, never 0 (a hint of "0 minutes" would make no sense).
 *
 * Sign convention: positive means the device clock is AHEAD of the server (the code belongs to
 * a future step), negative means it is behind.
 *
 * Returns null when the code is in the window (a replayed code is not a clock problem) or
 * matches nothing nearby. This never makes a code acceptable; the caller still counts a failure.
 */
export function findClockDrift (secret: Buffer, code: string, nowMs: number, params: TotpParams, options: { direction?: DriftDirection, maxDriftMs?: number } = {}): number | null {
  if (verifyTotp(secret, code, nowMs, params) !== null) return null
  if (code.length !== params.digits || !/^[0-9]+$/.test(code)) return null
  const current = timeStep(nowMs, params.period)
  const maxOffset = Math.floor((options.maxDriftMs ?? 10 * 60 * 1000) / (params.period * 1000))
  const submitted = Buffer.from(code, 'latin1')
  const pastOnly = (options.direction ?? 'both') === 'past'

  for (const offset of offsetsNearestFirst(maxOffset)) {
    if (Math.abs(offset) <= params.window || (pastOnly && offset > 0)) continue
    const step = current + offset
    if (step < 0) continue
    const candidate = Buffer.from(hotp(secret, step, params.algorithm, params.digits), 'latin1')
    if (timingSafeEqual(candidate, submitted)) {
      const minutes = Math.round((offset * params.period) / 60)
      return minutes === 0 ? Math.sign(offset) : minutes
    }
  }
  return null
}

export interface OtpauthUriInput {
  issuer: string
  account: string
  secret: Buffer
  params: TotpParams
}

/**
 * The Key URI that the QR code carries, in Google's Key URI format that authenticators parse:
 * the issuer both as the label's prefix and as a parameter, every part percent-encoded with
 * encodeURIComponent, the secret in base32 without padding, then algorithm, digits and period
 * spelled out even at their defaults. The unit tests parse it with the otpauth package.
 *
 * A colon inside the issuer or account would be read as the issuer/account separator by
 * authenticators (the Key URI format forbids it), so it is replaced with a space; a lone
 * surrogate (which encodeURIComponent refuses with a URIError) becomes U+FFFD. Each part keeps
 * at most URI_PART_MAX_BYTES of UTF-8 (cut between characters): the issuer is written twice and
 * every byte of a non-ASCII character becomes three characters, so an uncapped account name of a
 * few hundred characters would not fit the largest QR code at all.
 */
export function otpauthUri ({ issuer, account, secret, params }: OtpauthUriInput): string {
  const issuerText = encodeURIComponent(withoutLabelSeparator(issuer))
  const accountText = encodeURIComponent(withoutLabelSeparator(account))
  // An empty part would leave a label like "Acme:" that some apps refuse: the other one stands alone.
  const label = [issuerText, accountText].filter((part) => part !== '').join(':') || 'TOTP'
  const issuerParameter = issuerText === '' ? '' : `issuer=${issuerText}&`
  return `otpauth://totp/${label}?${issuerParameter}secret=${base32Encode(secret)}&algorithm=${params.algorithm}&digits=${params.digits}&period=${params.period}`
}

/**
 * With both parts at this cap in 4-byte characters, the longest URI (1 300 characters or so)
 * still fits a QR code a phone reads off a screen; an authenticator shows far less of a label.
 */
export const URI_PART_MAX_BYTES = 128

function withoutLabelSeparator (text: string): string {
  return withinBytes(text.toWellFormed().replace(/:/g, ' ').trim(), URI_PART_MAX_BYTES).trimEnd()
}

/** The longest start of `text` (whole characters) of at most `limit` bytes of UTF-8. */
function withinBytes (text: string, limit: number): string {
  let bytes = 0
  let end = 0
  for (const character of text) {
    const codePoint = character.codePointAt(0)!
    bytes += codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4
    if (bytes > limit) return text.slice(0, end)
    end += character.length
  }
  return text
}

/** 0, -1, +1, -2, +2, …: the order in which "nearest to now" is decided. */
function offsetsNearestFirst (reach: number): number[] {
  const offsets = [0]
  for (let distance = 1; distance <= reach; distance++) offsets.push(-distance, distance)
  return offsets
}

function hashNameOf (algorithm: TotpAlgorithm): string {
  const name = NODE_HASH_NAME[algorithm]
  // Options may come from untyped configuration; an unknown name must not fall through to
  // whatever createHmac happens to accept.
  if (name === undefined) throw new RangeError(`Unsupported TOTP algorithm: ${String(algorithm)}`)
  return name
}

function toCounter (counter: bigint | number): bigint {
  if (typeof counter === 'number' && !Number.isSafeInteger(counter)) {
    throw new RangeError('HOTP counter must be an integer')
  }
  const value = BigInt(counter)
  if (value < 0n || value > MAX_COUNTER) throw new RangeError('HOTP counter must fit in 64 unsigned bits')
  return value
}

function assertDigits (digits: number): void {
  // RFC 4226 asks for at least 6; beyond 8 the 31-bit truncated value no longer fills the
  // leading digit evenly, and common authenticators only offer 6 or 8.
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) {
    throw new RangeError('TOTP digits must be 6, 7 or 8')
  }
}

function assertPeriod (period: number): void {
  if (!Number.isInteger(period) || period < 1) throw new RangeError('TOTP period must be a positive whole number of seconds')
}

function assertWindow (window: number): void {
  // A wide window multiplies what an online guesser gets per attempt; 10 steps is already generous.
  if (!Number.isInteger(window) || window < 0 || window > 10) throw new RangeError('TOTP window must be a whole number from 0 to 10')
}
