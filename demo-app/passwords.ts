// scrypt password hashes, as a careful host would store them: `scrypt$N$r$p$salt$hash`.
import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

const scrypt = promisify(scryptCallback) as (password: string, salt: Buffer, keylen: number, options: { N: number, r: number, p: number, maxmem: number }) => Promise<Buffer>
/** scrypt's CPU/memory cost N for new hashes (OWASP's minimum is 2^17 with r=8, p=1 would be slower still). */
export const DEFAULT_COST = 16384
const PARAMS = { r: 8, p: 1 }
const KEY_LENGTH = 32

/**
 * Hashes with cost `cost`; the cost is stored in the hash, so verification always uses the
 * cost the hash was made with. (The test suite creates its users with a small cost: it signs
 * in hundreds of times, and the hash's strength is not what those tests are about.)
 */
export async function hashPassword (password: string, cost = DEFAULT_COST): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scrypt(password, salt, KEY_LENGTH, { N: cost, ...PARAMS, maxmem: 64 * 1024 * 1024 })
  return ['scrypt', cost, PARAMS.r, PARAMS.p, salt.toString('base64'), hash.toString('base64')].join('$')
}

export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false
  const expected = Buffer.from(hash, 'base64')
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 64 * 1024 * 1024 })
  return timingSafeEqual(actual, expected)
}
