// Encryption of TOTP secrets at rest. A database dump alone must not yield working
// secrets, so each one is sealed with AES-256-GCM under a key that lives only in configuration.
// The key id travels with the ciphertext so keys can rotate: old keys stay in the ring for
// reading until `rotate-keys` has re-sealed everything under the current one.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

const FORMAT_VERSION = 'v1'
const KEY_BYTES = 32
const IV_BYTES = 12 // the GCM nonce size that needs no extra hashing
const TAG_BYTES = 16
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/
// Standard or URL-safe alphabet, optional padding. Buffer.from(…, 'base64') skips junk
// silently, so without this check a mangled key could still decode to 32 bytes.
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2})$/
const PEPPER_INFO = 'two-factor:recovery-pepper:v1'
const PEPPER_BYTES = 32

const GENERATE_HINT = 'Generate a key with: node -e "console.log(\'k1:\'+require(\'crypto\').randomBytes(32).toString(\'base64\'))"'

export type KeyringErrorReason = 'configuration' | 'malformed' | 'unknown-key' | 'authentication'

/**
 * Raised for bad configuration (startup must stop) and for sealed data that will not open.
 * Messages never contain key material or ciphertext; `reason` lets callers such as the CLI's
 * rotate-keys tell "key no longer in the ring" from "tampered" without parsing the message.
 */
export class KeyringError extends Error {
  readonly reason: KeyringErrorReason

  constructor (message: string, reason: KeyringErrorReason) {
    super(message)
    this.name = 'KeyringError'
    this.reason = reason
  }
}

interface KeyEntry {
  id: string
  key: Buffer
}

export class Keyring {
  // Private fields (not TypeScript `private`): they are invisible to util.inspect, JSON and
  // Object.keys, so a stray log of the keyring cannot print keys.
  readonly #keys: ReadonlyMap<string, Buffer>
  readonly #currentKeyId: string
  readonly #peppers: ReadonlyArray<{ keyId: string, pepper: Buffer }>

  private constructor (entries: KeyEntry[]) {
    const first = entries[0]
    if (first === undefined) throw new KeyringError('A keyring needs at least one key.', 'configuration')
    this.#keys = new Map(entries.map((e) => [e.id, e.key]))
    this.#currentKeyId = first.id
    this.#peppers = entries.map((e) => ({
      keyId: e.id,
      pepper: Buffer.from(hkdfSync('sha256', e.key, Buffer.alloc(0), PEPPER_INFO, PEPPER_BYTES))
    }))
  }

  /** Reads the ring from an environment value; unset and empty are configuration errors. */
  static fromEnv (value: string | undefined, variableName = 'TWO_FACTOR_KEYS'): Keyring {
    if (value === undefined || value.trim() === '') {
      throw new KeyringError(
        `${variableName} is not set. It must hold one or more comma-separated "id:base64key" entries ` +
        `(the first is used for new secrets), each key being 32 random bytes. ${GENERATE_HINT}`,
        'configuration'
      )
    }
    return Keyring.parse(value, variableName)
  }

  /**
   * Parses `id:base64key[,id:base64key…]`, first entry current. Errors name the variable and
   * the entry's position but quote nothing from the value, not even ids: with a misplaced
   * colon, what sits in the id position may be part of a key.
   */
  static parse (spec: string, variableName = 'TWO_FACTOR_KEYS'): Keyring {
    const fail = (problem: string): never => {
      throw new KeyringError(`${variableName} is invalid: ${problem}. ${GENERATE_HINT}`, 'configuration')
    }
    if (spec.trim() === '') fail('it is empty')

    const entries: KeyEntry[] = []
    spec.split(',').forEach((rawEntry, index) => {
      const position = `entry ${index + 1}`
      const entry = rawEntry.trim()
      if (entry === '') fail(`${position} is empty (check for a stray comma)`)
      const colon = entry.indexOf(':')
      if (colon === -1) fail(`${position} has no "id:" prefix; expected "id:base64key"`)
      const id = entry.slice(0, colon)
      const encodedKey = entry.slice(colon + 1)
      if (!KEY_ID_PATTERN.test(id)) fail(`${position} has an invalid key id; ids are 1-32 characters of A-Z a-z 0-9 _ -`)
      const earlier = entries.findIndex((e) => e.id === id)
      if (earlier !== -1) fail(`entries ${earlier + 1} and ${index + 1} use the same key id; ids must be unique`)
      if (!BASE64_PATTERN.test(encodedKey)) fail(`the key in ${position} is not valid base64`)
      const key = Buffer.from(encodedKey, encodedKey.includes('-') || encodedKey.includes('_') ? 'base64url' : 'base64')
      if (key.length !== KEY_BYTES) fail(`the key in ${position} decodes to ${key.length} bytes; AES-256 needs exactly ${KEY_BYTES}`)
      entries.push({ id, key })
    })
    return new Keyring(entries)
  }

  /** A fresh `id:base64` entry, for first-run setups (the demo app) that have no key yet. */
  static generateSpec (id = 'k1'): string {
    if (!KEY_ID_PATTERN.test(id)) throw new KeyringError('Key ids are 1-32 characters of A-Z a-z 0-9 _ -.', 'configuration')
    return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`
  }

  get currentKeyId (): string {
    return this.#currentKeyId
  }

  get keyIds (): string[] {
    return [...this.#keys.keys()]
  }

  /**
   * `v1.<keyId>.<iv>.<ciphertext>.<tag>` (base64url parts). The user id is authenticated data,
   * so a sealed secret copied onto another user's row fails to open instead of letting that
   * user sign in with someone else's authenticator.
   */
  seal (plaintext: Buffer, userId: string): string {
    const key = this.#keys.get(this.#currentKeyId)
    if (key === undefined) throw new KeyringError('The current key is missing from the keyring.', 'configuration')
    const iv = randomBytes(IV_BYTES) // never reused under one key: GCM loses confidentiality and integrity if it is
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(associatedData(userId))
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
    const tag = cipher.getAuthTag()
    return [FORMAT_VERSION, this.#currentKeyId, b64url(iv), b64url(ciphertext), b64url(tag)].join('.')
  }

  /** Opens what seal produced for the same user; every failure is one generic KeyringError. */
  open (sealed: string, userId: string): Buffer {
    const parts = parseSealed(sealed)
    if (parts === null) throw cannotOpen('malformed')
    const key = this.#keys.get(parts.keyId)
    if (key === undefined) throw cannotOpen('unknown-key')
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, parts.iv, { authTagLength: TAG_BYTES })
      decipher.setAAD(associatedData(userId))
      decipher.setAuthTag(parts.tag)
      return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()])
    } catch {
      // Node's own message is harmless, but one message for every cause gives nothing away.
      throw cannotOpen('authentication')
    }
  }

  /**
   * True when the value is not sealed under the current key, including when it is not a
   * sealed value at all: either way rotate-keys has something to look at.
   */
  needsReseal (sealed: string): boolean {
    return parseSealed(sealed)?.keyId !== this.#currentKeyId
  }

  /**
   * One pepper per key, current first. Recovery codes are stored as HMACs under the pepper of
   * the key current when they were issued; lookups try every pepper so that adding a new key
   * does not invalidate codes users already hold, for as long as the old key stays in the ring.
   */
  recoveryPeppers (): Array<{ keyId: string, pepper: Buffer }> {
    // Copies, so a caller cannot alter the ring's peppers by writing into a returned Buffer.
    return this.#peppers.map((p) => ({ keyId: p.keyId, pepper: Buffer.from(p.pepper) }))
  }

  toString (): string {
    return `Keyring(current: ${this.#currentKeyId}, keys: ${this.keyIds.join(', ')})`
  }

  toJSON (): { currentKeyId: string, keyIds: string[] } {
    return { currentKeyId: this.#currentKeyId, keyIds: this.keyIds }
  }

  [Symbol.for('nodejs.util.inspect.custom')] (): string {
    return this.toString()
  }
}

interface SealedParts {
  keyId: string
  iv: Buffer
  ciphertext: Buffer
  tag: Buffer
}

function parseSealed (sealed: unknown): SealedParts | null {
  if (typeof sealed !== 'string') return null
  const parts = sealed.split('.')
  if (parts.length !== 5) return null
  const [version, keyId, iv, ciphertext, tag] = parts
  if (version !== FORMAT_VERSION || keyId === undefined || !KEY_ID_PATTERN.test(keyId)) return null
  if (iv === undefined || ciphertext === undefined || tag === undefined) return null
  if (![iv, ciphertext, tag].every((p) => /^[A-Za-z0-9_-]*$/.test(p))) return null
  const parsed = {
    keyId,
    iv: Buffer.from(iv, 'base64url'),
    ciphertext: Buffer.from(ciphertext, 'base64url'),
    tag: Buffer.from(tag, 'base64url')
  }
  // A short tag would weaken authentication; Node would accept some lengths, so insist here.
  if (parsed.iv.length !== IV_BYTES || parsed.tag.length !== TAG_BYTES) return null
  return parsed
}

function associatedData (userId: string): Buffer {
  if (typeof userId !== 'string' || userId === '') throw new TypeError('userId must be a non-empty string')
  return Buffer.from(`two-factor:${FORMAT_VERSION}:${userId}`, 'utf8')
}

function cannotOpen (reason: KeyringErrorReason): KeyringError {
  return new KeyringError('The stored two-factor secret could not be decrypted with the configured keys.', reason)
}

function b64url (bytes: Buffer): string {
  return bytes.toString('base64url')
}
