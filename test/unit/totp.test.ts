// TOTP/HOTP against the RFC vectors, plus the behaviour adds on top: the window,
// strict input parsing, the clock-drift hint and the otpauth URI the QR code carries.
import t from 'tap'
import fc from 'fast-check'
import { HOTP, Secret, TOTP, URI } from 'otpauth'
import { base32Decode, base32Encode, groupBy4 } from '../../plugin/core/base32.ts'
import {
  DEFAULT_TOTP,
  findClockDrift,
  generateSecret,
  hotp,
  otpauthUri,
  URI_PART_MAX_BYTES,
  parseTotpInput,
  timeStep,
  verifyTotp,
  type TotpParams
} from '../../plugin/core/totp.ts'
import { RFC4226_SECRET, RFC4226_VECTORS } from '../fixtures/rfc4226.ts'
import { RFC6238_DIGITS, RFC6238_PERIOD, RFC6238_SECRETS, RFC6238_VECTORS } from '../fixtures/rfc6238.ts'

// A fixed moment well inside a step, so ±1 step arithmetic never straddles a boundary by accident.
const NOW_MS = 1_700_000_010_000
const SECRET = Buffer.from('00112233445566778899aabbccddeeff00112233', 'hex')

function codeAtStep (step: number, params: TotpParams = DEFAULT_TOTP): string {
  return hotp(SECRET, step, params.algorithm, params.digits)
}

t.test('RFC 4226 Appendix D', async (t) => {
  for (const { counter, code } of RFC4226_VECTORS) {
    t.equal(hotp(RFC4226_SECRET, counter, 'SHA1', 6), code, `counter ${counter}`)
  }
})

t.test('RFC 6238 Appendix B, every row for SHA1, SHA256 and SHA512', async (t) => {
  for (const { timeSeconds, step, algorithm, code } of RFC6238_VECTORS) {
    const nowMs = timeSeconds * 1000
    t.equal(timeStep(nowMs, RFC6238_PERIOD), step, `step at ${timeSeconds}`)
    t.equal(hotp(RFC6238_SECRETS[algorithm], step, algorithm, RFC6238_DIGITS), code, `${algorithm} at ${timeSeconds}`)
    const params: TotpParams = { algorithm, digits: RFC6238_DIGITS, period: RFC6238_PERIOD, window: 0 }
    t.same(verifyTotp(RFC6238_SECRETS[algorithm], code, nowMs, params), { step }, `${algorithm} verifies at ${timeSeconds}`)
  }
})

t.test('hotp takes counters past 2^32 and agrees with an independent implementation', async (t) => {
  const beyond32Bits = 2 ** 32 + 12_345
  const otpauthSecret = new Secret({ buffer: Uint8Array.from(SECRET).buffer })
  t.equal(hotp(SECRET, beyond32Bits, 'SHA1', 6), HOTP.generate({ secret: otpauthSecret, counter: beyond32Bits, digits: 6 }))
  t.equal(hotp(SECRET, BigInt(beyond32Bits), 'SHA1', 6), hotp(SECRET, beyond32Bits, 'SHA1', 6), 'bigint and number agree')
  t.not(hotp(SECRET, beyond32Bits, 'SHA1', 6), hotp(SECRET, 12_345, 'SHA1', 6), 'the high word is not dropped')
  t.throws(() => hotp(SECRET, -1, 'SHA1', 6), RangeError)
  t.throws(() => hotp(SECRET, 1.5, 'SHA1', 6), RangeError)
  t.throws(() => hotp(SECRET, 1n << 64n, 'SHA1', 6), RangeError)
  t.throws(() => hotp(SECRET, 0, 'MD5' as 'SHA1', 6), RangeError)
  t.throws(() => hotp(SECRET, 0, 'SHA1', 4), RangeError)
})

t.test('generateSecret gives 20 fresh bytes that encode to 32 base32 characters', async (t) => {
  const a = generateSecret()
  const b = generateSecret()
  t.equal(a.length, 20)
  t.equal(base32Encode(a).length, 32)
  t.not(a.toString('hex'), b.toString('hex'))
})

t.test('window: T-1, T, T+1 accepted with the matched step; T±2 rejected', async (t) => {
  const current = timeStep(NOW_MS, 30)
  for (const offset of [-1, 0, 1]) {
    t.same(verifyTotp(SECRET, codeAtStep(current + offset), NOW_MS, DEFAULT_TOTP), { step: current + offset }, `offset ${offset}`)
  }
  for (const offset of [-2, 2]) {
    t.equal(verifyTotp(SECRET, codeAtStep(current + offset), NOW_MS, DEFAULT_TOTP), null, `offset ${offset}`)
  }
  t.equal(verifyTotp(SECRET, codeAtStep(current + 1), NOW_MS, { ...DEFAULT_TOTP, window: 0 }), null, 'window 0 takes only T')
  t.same(verifyTotp(SECRET, codeAtStep(current - 2), NOW_MS, { ...DEFAULT_TOTP, window: 2 }), { step: current - 2 }, 'window 2 takes T-2')
})

t.test('verifyTotp refuses malformed codes without throwing', async (t) => {
  const valid = codeAtStep(timeStep(NOW_MS, 30))
  t.equal(verifyTotp(SECRET, valid.slice(1), NOW_MS, DEFAULT_TOTP), null, 'too short')
  t.equal(verifyTotp(SECRET, `${valid}0`, NOW_MS, DEFAULT_TOTP), null, 'too long')
  t.equal(verifyTotp(SECRET, 'abcdef', NOW_MS, DEFAULT_TOTP), null, 'letters')
  t.equal(verifyTotp(SECRET, '', NOW_MS, DEFAULT_TOTP), null, 'empty')
  t.equal(verifyTotp(Buffer.from('another secret'), valid, NOW_MS, DEFAULT_TOTP), null, 'another secret')
})

t.test('parseTotpInput takes only a string of exactly `digits` ASCII digits after removing spaces', async (t) => {
  t.equal(parseTotpInput('123456', 6), '123456')
  t.equal(parseTotpInput(' 123 456 ', 6), '123456')
  t.equal(parseTotpInput('123\t456', 6), '123456')
  t.equal(parseTotpInput('012345', 6), '012345', 'leading zero kept')
  t.equal(parseTotpInput('12345678', 8), '12345678')
  t.equal(parseTotpInput('12345', 6), null, '5 digits')
  t.equal(parseTotpInput('1234567', 6), null, '7 digits')
  t.equal(parseTotpInput('１２３４５６', 6), null, 'full-width digits')
  t.equal(parseTotpInput('١٢٣٤٥٦', 6), null, 'Arabic-Indic digits')
  t.equal(parseTotpInput('123-456', 6), null, 'dash')
  t.equal(parseTotpInput('12345a', 6), null, 'letter')
  t.equal(parseTotpInput('123456\n', 6), null, 'newline is not a space')
  t.equal(parseTotpInput('', 6), null)
  t.equal(parseTotpInput(' '.repeat(100) + '123456', 6), null, 'absurdly long input')
  t.equal(parseTotpInput(['123456'], 6), null, 'array')
  t.equal(parseTotpInput({ code: '123456' }, 6), null, 'object')
  t.equal(parseTotpInput(123456, 6), null, 'number')
  t.equal(parseTotpInput(null, 6), null)
  t.equal(parseTotpInput(undefined, 6), null)
})

t.test('findClockDrift: signed minutes, positive = device clock ahead of the server', async (t) => {
  const current = timeStep(NOW_MS, 30)
  t.equal(findClockDrift(SECRET, codeAtStep(current - 8), NOW_MS, DEFAULT_TOTP), -4, 'code from 4 minutes ago: device 4 minutes behind')
  t.equal(findClockDrift(SECRET, codeAtStep(current + 8), NOW_MS, DEFAULT_TOTP), 4, 'code from 4 minutes ahead')
  t.equal(findClockDrift(SECRET, codeAtStep(current + 2), NOW_MS, DEFAULT_TOTP), 1, 'just outside the window: 1 minute, never 0')
  t.equal(findClockDrift(SECRET, codeAtStep(current - 20), NOW_MS, DEFAULT_TOTP), -10, 'exactly 10 minutes')
  t.equal(findClockDrift(SECRET, codeAtStep(current - 22), NOW_MS, DEFAULT_TOTP), null, 'beyond 10 minutes')
  t.equal(findClockDrift(SECRET, codeAtStep(current + 40), NOW_MS, DEFAULT_TOTP), null, '20 minutes ahead')
  t.equal(findClockDrift(SECRET, codeAtStep(current), NOW_MS, DEFAULT_TOTP), null, 'a code inside the window is no drift')
  t.equal(findClockDrift(SECRET, codeAtStep(current - 8), NOW_MS, DEFAULT_TOTP, { maxDriftMs: 60_000 }), null, 'custom maxDrift')
  t.equal(findClockDrift(SECRET, 'abcdef', NOW_MS, DEFAULT_TOTP), null, 'malformed')
})

t.test('otpauthUri: the format authenticators expect, round-tripping through otpauth', async (t) => {
  const secret = generateSecret()
  const uri = otpauthUri({ issuer: 'Acme', account: 'alice', secret, params: DEFAULT_TOTP })
  t.match(uri, /^otpauth:\/\/totp\/Acme:alice\?/)
  const query = new URLSearchParams(uri.slice(uri.indexOf('?') + 1))
  t.equal(query.get('secret'), base32Encode(secret))
  t.equal(query.get('issuer'), 'Acme')
  t.equal(query.get('algorithm'), 'SHA1')
  t.equal(query.get('digits'), '6')
  t.equal(query.get('period'), '30')

  const parsed = URI.parse(uri)
  t.ok(parsed instanceof TOTP)
  t.equal(parsed.issuer, 'Acme')
  t.equal(parsed.label, 'alice')
  t.equal(Buffer.from(parsed.secret.bytes).toString('hex'), secret.toString('hex'))
  const code = (parsed as TOTP).generate({ timestamp: NOW_MS })
  t.ok(verifyTotp(secret, code, NOW_MS, DEFAULT_TOTP), 'a code from the parsed URI verifies')
})

t.test('otpauthUri percent-encodes issuer and account', async (t) => {
  const secret = generateSecret()
  const uri = otpauthUri({ issuer: 'Acme & Co', account: 'a@b.c', secret, params: DEFAULT_TOTP })
  t.match(uri, /^otpauth:\/\/totp\/Acme%20%26%20Co:a%40b\.c\?/)
  t.match(uri, /[?&]issuer=Acme%20%26%20Co(&|$)/)
  t.notMatch(uri, / /, 'no raw spaces')
  const query = new URLSearchParams(uri.slice(uri.indexOf('?') + 1))
  t.same(query.getAll('issuer'), ['Acme & Co'], 'the & in the issuer did not split the query')
  t.same([...query.keys()].sort(), ['algorithm', 'digits', 'issuer', 'period', 'secret'])
  const parsed = URI.parse(uri)
  t.equal(parsed.issuer, 'Acme & Co')
  t.equal(parsed.label, 'a@b.c')

  const awkward = otpauthUri({ issuer: 'Café #1?', account: 'bob+2fa@example.com', secret, params: DEFAULT_TOTP })
  const parsedAwkward = URI.parse(awkward)
  t.equal(parsedAwkward.issuer, 'Café #1?')
  t.equal(parsedAwkward.label, 'bob+2fa@example.com')

  const colon = URI.parse(otpauthUri({ issuer: 'Acme:EU', account: 'x:y', secret, params: DEFAULT_TOTP }))
  t.equal(colon.issuer, 'Acme EU', 'a colon cannot fake the issuer/account separator')
  t.equal(colon.label, 'x y')
})

t.test('otpauthUri: any Unicode issuer and account (lone surrogates, C0, DEL, empty) parse back as otpauth reads them', async (t) => {
  const text = fc.string({ unit: 'binary', maxLength: 24 })
  const shown = (value: string): string => value.toWellFormed().replace(/:/g, ' ').trim()
  fc.assert(fc.property(text, text, fc.uint8Array({ minLength: 1, maxLength: 40 }), (issuer, account, bytes) => {
    const uri = otpauthUri({ issuer, account, secret: Buffer.from(bytes), params: DEFAULT_TOTP })
    const parsed = URI.parse(uri) as TOTP
    // An empty account leaves the issuer as the whole label; with neither, the label says TOTP.
    const label = shown(account) !== '' ? shown(account) : shown(issuer) !== '' ? shown(issuer) : 'TOTP'
    return parsed.issuer === shown(issuer) && parsed.label === label && Buffer.from(parsed.secret.bytes).equals(Buffer.from(bytes))
  }), { numRuns: 2000 })
  t.pass('2000 issuer/account/secret triples round-trip')
})

t.test('otpauthUri keeps at most URI_PART_MAX_BYTES of each part, cut between characters', async (t) => {
  const secret = generateSecret()
  const utf8 = (text: string): number => Buffer.byteLength(text)
  for (const character of ['a', 'é', '漢', '😀']) {
    const long = character.repeat(400)
    const parsed = URI.parse(otpauthUri({ issuer: long, account: `${long}@x`, secret, params: DEFAULT_TOTP })) as TOTP
    for (const [name, part] of [['issuer', parsed.issuer], ['account', parsed.label]] as const) {
      t.ok(utf8(part) <= URI_PART_MAX_BYTES && utf8(part) > URI_PART_MAX_BYTES - 4, `${character}: the ${name} is cut to ${utf8(part)} bytes`)
      t.ok(long.startsWith(part), `${character}: the ${name} is a start of what was given, no character split`)
    }
  }
  const short = URI.parse(otpauthUri({ issuer: 'Acme', account: 'x'.repeat(URI_PART_MAX_BYTES), secret, params: DEFAULT_TOTP }))
  t.equal(short.label, 'x'.repeat(URI_PART_MAX_BYTES), 'a part of exactly the cap is kept whole')
  const spaced = URI.parse(otpauthUri({ issuer: 'Acme', account: `${'x'.repeat(URI_PART_MAX_BYTES - 1)} tail`, secret, params: DEFAULT_TOTP }))
  t.equal(spaced.label, 'x'.repeat(URI_PART_MAX_BYTES - 1), 'no trailing space is left where the cut fell')
})

t.test('otpauthUri carries non-default parameters', async (t) => {
  const secret = Buffer.from(RFC6238_SECRETS.SHA256)
  const params: TotpParams = { algorithm: 'SHA256', digits: 8, period: 60, window: 1 }
  const parsed = URI.parse(otpauthUri({ issuer: 'Acme', account: 'alice', secret, params })) as TOTP
  t.equal(parsed.algorithm, 'SHA256')
  t.equal(parsed.digits, 8)
  t.equal(parsed.period, 60)
  t.same(verifyTotp(secret, parsed.generate({ timestamp: NOW_MS }), NOW_MS, params), { step: timeStep(NOW_MS, 60) })
})

t.test('base32', async (t) => {
  // RFC 4648 §10 test vectors, without padding.
  const vectors: Array<[string, string]> = [['', ''], ['f', 'MY'], ['fo', 'MZXQ'], ['foo', 'MZXW6'], ['foob', 'MZXW6YQ'], ['fooba', 'MZXW6YTB'], ['foobar', 'MZXW6YTBOI']]
  for (const [plain, encoded] of vectors) {
    t.equal(base32Encode(Buffer.from(plain)), encoded, `encode "${plain}"`)
    t.equal(base32Decode(encoded).toString(), plain, `decode ${encoded}`)
  }
  t.equal(base32Decode('mzxw 6ytb oi======').toString(), 'foobar', 'lower case, spaces and padding ignored')
  t.throws(() => base32Decode('MZXW1'), TypeError, '1 is not in the alphabet')
  t.throws(() => base32Decode('MZXW-6YTB'), TypeError)
  t.throws(() => base32Decode('MZXW6YTBO'), TypeError, 'a length no byte string encodes to')
  const secret = generateSecret()
  t.same(base32Decode(base32Encode(secret)), secret)
  t.equal(groupBy4('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'), 'ABCD EFGH IJKL MNOP QRST UVWX YZ23 4567')
  t.equal(groupBy4('ABCDEF'), 'ABCD EF')
  t.equal(groupBy4(''), '')
})
