// RFC 4648 base32, the alphabet every authenticator app expects when a user types the secret by
// hand instead of scanning the QR code. Kept here (rather than borrowed from otpauth) so that
// decoding can be strict: a typo in a key should be an error, not a silently different secret.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

const VALUE_OF_CHAR = new Map<string, number>(Array.from(ALPHABET, (char, value) => [char, value]))

/**
 * Lengths (mod 8) that no whole number of bytes encodes to. Accepting them would mean
 * dropping bits, which hides a truncated key instead of reporting it.
 */
const IMPOSSIBLE_LENGTHS_MOD_8 = new Set([1, 3, 6])

/** Encodes without `=` padding: authenticators accept it, and it keeps the manual key short. */
export function base32Encode (bytes: Uint8Array): string {
  let out = ''
  let buffered = 0
  let bufferedBits = 0
  for (const byte of bytes) {
    buffered = ((buffered << 8) | byte) & 0xfff // 12 bits are enough: never more than 4 + 8 pending
    bufferedBits += 8
    while (bufferedBits >= 5) {
      bufferedBits -= 5
      out += ALPHABET[(buffered >>> bufferedBits) & 31]
    }
  }
  if (bufferedBits > 0) {
    out += ALPHABET[(buffered << (5 - bufferedBits)) & 31]
  }
  return out
}

/**
 * Decodes what a person may have copied: any case, with spaces (our own grouped display)
 * and `=` padding ignored. Anything else outside the alphabet throws, as does a length that
 * cannot come from whole bytes.
 */
export function base32Decode (text: string): Buffer {
  const cleaned = text.replace(/[ =]/g, '').toUpperCase()
  if (IMPOSSIBLE_LENGTHS_MOD_8.has(cleaned.length % 8)) {
    throw new TypeError('Invalid base32: length does not correspond to whole bytes')
  }
  const out = Buffer.alloc(Math.floor((cleaned.length * 5) / 8))
  let buffered = 0
  let bufferedBits = 0
  let written = 0
  for (let i = 0; i < cleaned.length; i++) {
    const value = VALUE_OF_CHAR.get(cleaned.charAt(i))
    if (value === undefined) {
      // The position, not the character: this text may be a secret.
      throw new TypeError(`Invalid base32: unexpected character at position ${i + 1}`)
    }
    buffered = ((buffered << 5) | value) & 0xfff
    bufferedBits += 5
    if (bufferedBits >= 8) {
      bufferedBits -= 8
      out[written++] = (buffered >>> bufferedBits) & 0xff
    }
  }
  return out
}

/** "ABCDEFGH..." → "ABCD EFGH ...": people copy a long key more reliably in short groups. */
export function groupBy4 (s: string): string {
  return (s.match(/.{1,4}/g) ?? []).join(' ')
}
