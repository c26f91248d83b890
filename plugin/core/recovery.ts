// Recovery codes: the way back in when the authenticator is lost. Generated here,
// shown once, and from then on known to the server only as peppered HMAC digests, so neither a
// database dump nor a look at the session store reveals a usable code.
import { createHmac, randomBytes } from 'node:crypto'

/** Crockford base32: no I, L, O (confusable with 1 and 0) and no U. */
const CROCKFORD_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

export const RECOVERY_CODE_COUNT = 10
/** 80 bits from the CSPRNG: out of reach of online guessing and of offline search without the pepper. */
const RECOVERY_CODE_BYTES = 10
/** 80 bits / 5 bits per character. */
export const RECOVERY_CODE_LENGTH = 16
/** Long enough for any spacing a person adds; anything longer is refused before any work. */
const MAX_RAW_RECOVERY_CODE_LENGTH = 64

/**
 * What lookups digest when the input was malformed, so that such input costs the same HMACs
 * and the same database query as a real code and the response time does not tell the two apart.
 * It has the shape of a normalised code but contains `U`, which is outside the
 * alphabet: generateRecoveryCodes can never produce it and normaliseRecoveryCode never returns
 * it, so it cannot match a stored digest.
 */
export const UNMATCHABLE_CODE = 'UUUUUUUUUUUUUUUU'

export function generateRecoveryCodes (count = RECOVERY_CODE_COUNT): string[] {
  if (!Number.isInteger(count) || count < 1 || count > 100) throw new RangeError('count must be a whole number from 1 to 100')
  // A repeat has a 2^-80 chance; the set still makes "ten distinct codes" a guarantee rather than a likelihood.
  const codes = new Set<string>()
  while (codes.size < count) {
    const code = encodeCrockford(randomBytes(RECOVERY_CODE_BYTES))
    codes.add(code.match(/.{4}/g)?.join('-') ?? code)
  }
  return [...codes]
}

/**
 * Accepts what a person types or pastes: any case, spaces and dashes anywhere, and Crockford's
 * read-alikes (O for 0, I and L for 1). Returns the 16-character canonical form that digests
 * are computed over, or null. Only plain ASCII letters and digits are considered, so Unicode
 * case mapping (e.g. dotless ı → I) cannot turn foreign characters into a valid-looking code.
 */
export function normaliseRecoveryCode (raw: unknown): string | null {
  if (typeof raw !== 'string' || raw.length > MAX_RAW_RECOVERY_CODE_LENGTH) return null
  const compact = raw.replace(/[\s\-\u2010-\u2015\u2212]/g, '') // ASCII and typographic dashes from copy-paste
  if (compact.length !== RECOVERY_CODE_LENGTH || !/^[0-9A-Za-z]+$/.test(compact)) return null
  const canonical = compact.toUpperCase().replace(/O/g, '0').replace(/[IL]/g, '1')
  for (const char of canonical) {
    if (!CROCKFORD_ALPHABET.includes(char)) return null // only U remains possible here
  }
  return canonical
}

/**
 * Hex HMAC-SHA-256 under a server-side pepper. The user id is part of the message so a digest
 * is only valid for its owner; the newline cannot be ambiguous because a normalised code never
 * contains one.
 */
export function recoveryDigest (pepper: Buffer, userId: string, normalisedCode: string): string {
  return createHmac('sha256', pepper).update(`${userId}\n${normalisedCode}`, 'utf8').digest('hex')
}

function encodeCrockford (bytes: Buffer): string {
  let out = ''
  let buffered = 0
  let bufferedBits = 0
  for (const byte of bytes) {
    buffered = ((buffered << 8) | byte) & 0xfff
    bufferedBits += 8
    while (bufferedBits >= 5) {
      bufferedBits -= 5
      out += CROCKFORD_ALPHABET[(buffered >>> bufferedBits) & 31]
    }
  }
  return out // 80 bits is a multiple of 5: nothing is left over
}
