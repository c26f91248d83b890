// Sealing of TOTP secrets: the round trip, the user binding, rotation, and that bad
// configuration stops startup with a message that helps without leaking key material.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { Keyring, KeyringError } from '../../plugin/core/keyring.ts'

const KEY_A = randomBytes(32).toString('base64')
const KEY_B = randomBytes(32).toString('base64')
const SECRET = Buffer.from('0123456789abcdef0123', 'ascii')

t.test('seal then open gives the secret back', async (t) => {
  const ring = Keyring.parse(`k1:${KEY_A}`, 'TWO_FACTOR_KEYS')
  const sealed = ring.seal(SECRET, 'user-1')
  t.match(sealed, /^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/, 'v1.<keyId>.<iv>.<ciphertext>.<tag>')
  t.same(ring.open(sealed, 'user-1'), SECRET)
  t.notMatch(sealed, SECRET.toString('base64url'), 'plaintext is not visible')
})

t.test('every seal uses a fresh IV', async (t) => {
  const ring = Keyring.parse(`k1:${KEY_A}`, 'TWO_FACTOR_KEYS')
  const first = ring.seal(SECRET, 'user-1')
  const second = ring.seal(SECRET, 'user-1')
  t.not(first, second)
  t.not(first.split('.')[2], second.split('.')[2], 'IVs differ')
  t.same(ring.open(second, 'user-1'), SECRET)
})

t.test('ciphertext moved to another user does not open', async (t) => {
  const ring = Keyring.parse(`k1:${KEY_A}`, 'TWO_FACTOR_KEYS')
  const sealed = ring.seal(SECRET, 'user-1')
  t.throws(() => ring.open(sealed, 'user-2'), KeyringError)
  t.throws(() => ring.open(sealed, 'user-10'), KeyringError, 'not a prefix match either')
})

t.test('tampering is detected', async (t) => {
  const ring = Keyring.parse(`k1:${KEY_A}`, 'TWO_FACTOR_KEYS')
  const sealed = ring.seal(SECRET, 'user-1')
  const parts = sealed.split('.')
  const flip = (b64: string): string => {
    const bytes = Buffer.from(b64, 'base64url')
    bytes[0] = (bytes[0] ?? 0) ^ 1
    return bytes.toString('base64url')
  }
  for (const index of [2, 3, 4]) {
    const tampered = parts.map((p, i) => (i === index ? flip(p) : p)).join('.')
    t.throws(() => ring.open(tampered, 'user-1'), KeyringError, `part ${index} flipped`)
  }
  const truncatedTag = [...parts.slice(0, 4), Buffer.from(parts[4] ?? '', 'base64url').subarray(0, 12).toString('base64url')].join('.')
  t.throws(() => ring.open(truncatedTag, 'user-1'), KeyringError, 'short tag refused')
  for (const junk of ['', 'v1', 'v2' + sealed.slice(2), `${sealed}.extra`, 'v1.k1.!!.!!.!!']) {
    t.throws(() => ring.open(junk, 'user-1'), KeyringError, `malformed: ${junk.slice(0, 12)}`)
  }
  try {
    ring.open(parts.map((p, i) => (i === 3 ? flip(p) : p)).join('.'), 'user-1')
  } catch (error) {
    t.equal((error as KeyringError).reason, 'authentication')
    t.notMatch((error as Error).message, parts[3] ?? '', 'no ciphertext in the message')
  }
})

t.test('rotation: a new key in front, the old one still opens, and needsReseal says so', async (t) => {
  const oldRing = Keyring.parse(`k1:${KEY_A}`, 'TWO_FACTOR_KEYS')
  const sealedOld = oldRing.seal(SECRET, 'user-1')
  t.equal(oldRing.needsReseal(sealedOld), false)

  const rotated = Keyring.parse(`k2:${KEY_B},k1:${KEY_A}`, 'TWO_FACTOR_KEYS')
  t.equal(rotated.currentKeyId, 'k2')
  t.same(rotated.keyIds, ['k2', 'k1'])
  t.same(rotated.open(sealedOld, 'user-1'), SECRET)
  t.equal(rotated.needsReseal(sealedOld), true)
  const resealed = rotated.seal(rotated.open(sealedOld, 'user-1'), 'user-1')
  t.match(resealed, /^v1\.k2\./)
  t.equal(rotated.needsReseal(resealed), false)
  t.equal(rotated.needsReseal('not a sealed value'), true)

  const withoutOld = Keyring.parse(`k2:${KEY_B}`, 'TWO_FACTOR_KEYS')
  try {
    withoutOld.open(sealedOld, 'user-1')
    t.fail('should not open')
  } catch (error) {
    t.ok(error instanceof KeyringError)
    t.equal((error as KeyringError).reason, 'unknown-key')
  }
})

t.test('bad configuration throws KeyringError naming the variable, never echoing the key', async (t) => {
  const shortKey = randomBytes(16).toString('base64')
  const cases: Array<[string, string | undefined, string[]]> = [
    ['missing', undefined, []],
    ['empty', '', []],
    ['blank', '   ', []],
    ['short (16-byte) key', `k1:${shortKey}`, [shortKey]],
    ['no id', KEY_A, [KEY_A]],
    ['bad id', `bad id!:${KEY_A}`, [KEY_A]],
    ['not base64', `k1:${KEY_A.slice(0, 20)}#${KEY_A.slice(21)}`, [KEY_A.slice(0, 20)]],
    ['long key', `k1:${randomBytes(48).toString('base64')}`, []],
    ['duplicate id', `k1:${KEY_A},k1:${KEY_B}`, [KEY_A, KEY_B]],
    ['stray comma', `k1:${KEY_A},`, [KEY_A]],
    ['key where the id should be', `${KEY_A.slice(0, 10)}:${KEY_A.slice(10)}`, [KEY_A.slice(0, 10), KEY_A.slice(10)]]
  ]
  for (const [name, spec, secrets] of cases) {
    try {
      Keyring.fromEnv(spec)
      t.fail(`${name}: should throw`)
    } catch (error) {
      t.ok(error instanceof KeyringError, `${name}: KeyringError`)
      const message = (error as Error).message
      t.match(message, 'TWO_FACTOR_KEYS', `${name}: names the variable`)
      t.match(message, 'randomBytes(32)', `${name}: says how to generate a key`)
      for (const secret of secrets) t.notMatch(message, secret, `${name}: does not echo key text`)
    }
  }
  t.throws(() => Keyring.fromEnv(undefined, 'MY_KEYS'), { message: /MY_KEYS/ }, 'custom variable name')
})

t.test('accepts whitespace around entries and base64url keys', async (t) => {
  const url = randomBytes(32).toString('base64url')
  const ring = Keyring.fromEnv(` k1:${KEY_A} , k0:${url} `)
  t.same(ring.keyIds, ['k1', 'k0'])
})

t.test('inspect, JSON and toString of a Keyring show no key material', async (t) => {
  const ring = Keyring.parse(`k2:${KEY_B},k1:${KEY_A}`, 'TWO_FACTOR_KEYS')
  const hexA = Buffer.from(KEY_A, 'base64').toString('hex')
  const pepperHex = ring.recoveryPeppers()[0]?.pepper.toString('hex') ?? ''
  for (const [name, text] of [
    ['inspect', inspect(ring, { showHidden: true, depth: 10 })],
    ['inspect nested', inspect({ ring })],
    ['JSON', JSON.stringify({ ring })],
    ['toString', String(ring)],
    ['template', `${ring}`]
  ] as const) {
    for (const material of [KEY_A, KEY_B, hexA, pepperHex]) {
      t.notMatch(text, material, `${name} has no key material`)
    }
    t.match(text, 'k2', `${name} still says which key is current`)
  }
  t.same(JSON.parse(JSON.stringify(ring)), { currentKeyId: 'k2', keyIds: ['k2', 'k1'] })
})

t.test('recoveryPeppers: one per key, current first, stable, distinct from the key', async (t) => {
  const ring = Keyring.parse(`k2:${KEY_B},k1:${KEY_A}`, 'TWO_FACTOR_KEYS')
  const peppers = ring.recoveryPeppers()
  t.same(peppers.map((p) => p.keyId), ['k2', 'k1'])
  t.equal(peppers[0]?.pepper.length, 32)
  t.not(peppers[0]?.pepper.toString('hex'), peppers[1]?.pepper.toString('hex'))
  t.not(peppers[1]?.pepper.toString('base64'), KEY_A, 'derived, not the key itself')
  const again = Keyring.parse(`k1:${KEY_A}`, 'TWO_FACTOR_KEYS').recoveryPeppers()
  t.same(again[0]?.pepper, peppers[1]?.pepper, 'same key, same pepper, whatever its position')
  peppers[0]?.pepper.fill(0)
  t.not(ring.recoveryPeppers()[0]?.pepper.toString('hex'), Buffer.alloc(32).toString('hex'), 'callers get copies')
})

t.test('generateSpec makes a usable entry', async (t) => {
  const spec = Keyring.generateSpec()
  t.match(spec, /^k1:[A-Za-z0-9+/]{43}=$/)
  t.not(Keyring.generateSpec(), spec)
  const ring = Keyring.fromEnv(Keyring.generateSpec('demo-2024'))
  t.equal(ring.currentKeyId, 'demo-2024')
  t.same(ring.open(ring.seal(SECRET, 'u'), 'u'), SECRET)
  t.throws(() => Keyring.generateSpec('no.dots'), KeyringError)
})
