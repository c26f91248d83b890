// Recovery codes: their shape and entropy, lenient-but-strict input, and digests
// bound to the user and the pepper.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { generateRecoveryCodes, normaliseRecoveryCode, recoveryDigest, UNMATCHABLE_CODE } from '../../plugin/core/recovery.ts'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const FORMAT = /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/

t.test('ten unique codes in XXXX-XXXX-XXXX-XXXX form', async (t) => {
  const codes = generateRecoveryCodes()
  t.equal(codes.length, 10)
  t.equal(new Set(codes).size, 10)
  for (const code of codes) {
    t.match(code, FORMAT)
    t.notMatch(code, /[ILOU]/, 'no I, L, O or U')
  }
  t.equal(generateRecoveryCodes(3).length, 3)
  t.throws(() => generateRecoveryCodes(0), RangeError)
})

t.test('80 bits each: 16 characters of a 32-letter alphabet, all of it in use', async (t) => {
  t.equal(CROCKFORD.length, 32)
  t.equal(16 * Math.log2(CROCKFORD.length), 80)
  const seen = new Set<string>()
  const firstChars = new Set<string>()
  for (let i = 0; i < 50; i++) {
    for (const code of generateRecoveryCodes()) {
      const compact = code.replace(/-/g, '')
      t.equal(compact.length, 16)
      for (const char of compact) seen.add(char)
      firstChars.add(compact.charAt(0))
    }
  }
  // 500 codes x 16 chars: missing any of 32 letters by chance is astronomically unlikely.
  t.same([...seen].sort().join(''), [...CROCKFORD].sort().join(''), 'every letter of the alphabet appears')
  t.ok(firstChars.size > 16, 'the first character is not biased to half the alphabet')
})

t.test('normalisation: case, spaces, dashes and Crockford aliases', async (t) => {
  const [code] = generateRecoveryCodes(1)
  const canonical = (code ?? '').replace(/-/g, '')
  t.equal(normaliseRecoveryCode(code), canonical)
  t.equal(normaliseRecoveryCode(code?.toLowerCase()), canonical, 'lower case')
  t.equal(normaliseRecoveryCode(` ${canonical.slice(0, 8)} ${canonical.slice(8)} `), canonical, 'spaces')
  t.equal(normaliseRecoveryCode(canonical.split('').join('-')), canonical, 'dashes anywhere')
  t.equal(normaliseRecoveryCode(code?.replace(/-/g, '\u2013')), canonical, 'typographic dashes from copy-paste')
  t.equal(normaliseRecoveryCode('ABCD-EFGH-JKMN-PQRS'), 'ABCDEFGHJKMNPQRS')
  t.equal(normaliseRecoveryCode('oOiI-lL00-1111-abcd'), '00111100' + '1111ABCD', 'O→0, I→1, L→1')
})

t.test('malformed input gives null', async (t) => {
  t.equal(normaliseRecoveryCode(['ABCD-EFGH-JKMN-PQRS']), null, 'array')
  t.equal(normaliseRecoveryCode({ code: 'ABCD-EFGH-JKMN-PQRS' }), null, 'object')
  t.equal(normaliseRecoveryCode(1234567890123456), null, 'number')
  t.equal(normaliseRecoveryCode(null), null)
  t.equal(normaliseRecoveryCode(undefined), null)
  t.equal(normaliseRecoveryCode(''), null)
  t.equal(normaliseRecoveryCode('ABCD-EFGH-JKMN-PQR'), null, '15 characters')
  t.equal(normaliseRecoveryCode('ABCD-EFGH-JKMN-PQRST'), null, '17 characters')
  t.equal(normaliseRecoveryCode('ABCD-EFGH-JKMN-PQRU'), null, 'U is not in the alphabet')
  t.equal(normaliseRecoveryCode('ABCD_EFGH_JKMN_PQRS'), null, 'other punctuation')
  t.equal(normaliseRecoveryCode('ＡＢＣＤＥＦＧＨＪＫＭＮＰＱＲＳ'), null, 'full-width letters')
  t.equal(normaliseRecoveryCode('ıııı-EFGH-JKMN-PQRS'), null, 'dotless i is not an I')
  t.equal(normaliseRecoveryCode(' '.repeat(60) + 'ABCDEFGHJKMNPQRS'), null, 'too long')
  t.equal(normaliseRecoveryCode(UNMATCHABLE_CODE), null, 'the placeholder is not a code')
})

t.test('UNMATCHABLE_CODE looks like a normalised code but can never be one', async (t) => {
  t.equal(UNMATCHABLE_CODE.length, 16)
  t.match(UNMATCHABLE_CODE, /^[0-9A-Z]{16}$/)
  t.ok([...UNMATCHABLE_CODE].some((c) => !CROCKFORD.includes(c)))
})

t.test('digest: hex HMAC-SHA-256, stable, bound to user and pepper', async (t) => {
  const pepper = randomBytes(32)
  const code = 'ABCDEFGHJKMNPQRS'
  const digest = recoveryDigest(pepper, 'user-1', code)
  t.match(digest, /^[0-9a-f]{64}$/)
  t.equal(recoveryDigest(pepper, 'user-1', code), digest, 'stable')
  t.equal(recoveryDigest(Buffer.from(pepper), 'user-1', code), digest, 'depends on the pepper bytes only')
  t.not(recoveryDigest(pepper, 'user-2', code), digest, 'differs per user')
  t.not(recoveryDigest(randomBytes(32), 'user-1', code), digest, 'differs per pepper')
  t.not(recoveryDigest(pepper, 'user-1', 'ABCDEFGHJKMNPQRT'), digest, 'differs per code')
  t.not(recoveryDigest(pepper, 'user-1', UNMATCHABLE_CODE), digest)
})
