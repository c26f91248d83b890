// At startup: are the configured keys the ones the stored secrets were sealed with?
//
// Started with another key, nothing would look wrong until users tried to sign in: every code
// would fail to open (503s), and every recovery code would simply not match (its digest uses a
// pepper derived from the key), counting towards a lockout. Rather than that silent garbage,
// startup stops with a message saying which key id is missing or wrong.
import type { FastifyBaseLogger } from 'fastify'
import { KeyringError, type Keyring } from './core/keyring.ts'
import { sampleSealedSecrets } from './db/accounts-store.ts'
import type { TwoFactorDatabase } from './db/database.ts'
import { RecoveryStore } from './db/recovery-store.ts'

/** Secrets tried per key id: one that opens proves the key; a damaged row alone proves nothing. */
const SAMPLES_PER_KEY = 5
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/

export async function checkKeysOpenStoredSecrets (db: TwoFactorDatabase, keyring: Keyring, log: FastifyBaseLogger, variableName = 'TWO_FACTOR_KEYS'): Promise<void> {
  let samples: Array<{ user_id: string, secret: string, key_id: string }>
  let orphanCodes: Array<{ keyId: string, count: number }>
  try {
    samples = await sampleSealedSecrets(db, SAMPLES_PER_KEY)
    orphanCodes = await new RecoveryStore(db).unusedByKey()
  } catch (error) {
    // The check is about keys; a database that can't answer yet is the requests' business (503).
    log.warn({ errorName: (error as Error)?.name }, 'two-factor: could not check the keys against the stored secrets')
    return
  }

  const byKey = new Map<string, Array<{ user_id: string, secret: string }>>()
  for (const row of samples) {
    if (!KEY_ID.test(row.key_id)) continue // not a sealed value at all: nothing to learn about the keys
    byKey.set(row.key_id, [...(byKey.get(row.key_id) ?? []), row])
  }
  for (const [keyId, rows] of byKey) {
    if (!keyring.keyIds.includes(keyId)) {
      throw new KeyringError(
        `${variableName} does not hold key "${keyId}", which seals stored two-factor secrets, so those users could not sign in. ` +
        'Add that key back after the current one; run rotate-keys before removing an old key.', 'configuration')
    }
    if (!rows.some((row) => opens(keyring, row.secret, row.user_id))) {
      throw new KeyringError(
        `${variableName}: the key with id "${keyId}" does not open the two-factor secrets sealed under that id; it is not the key they were sealed with. ` +
        'Start with the original key. To change keys, put the new key first and keep the old one after it, then run rotate-keys.', 'configuration')
    }
  }
  for (const { keyId, count } of orphanCodes) {
    if (!keyring.keyIds.includes(keyId) && KEY_ID.test(keyId)) {
      log.warn({ keyId, unusedRecoveryCodes: count }, `two-factor: unused recovery codes were made under a key ${variableName} no longer holds; they no longer work, and their users should generate new ones`)
    }
  }
}

function opens (keyring: Keyring, sealed: string, userId: string): boolean {
  try {
    keyring.open(sealed, userId)
    return true
  } catch {
    return false
  }
}
