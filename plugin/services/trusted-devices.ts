// "Don't ask again on this browser": a browser that proved a code may skip the code at later
// sign-ins (never the password, never a step-up) until a date fixed when the trust was given.
//
// The browser holds `<id>.<token>`, a 256-bit random token; the database holds only the token's
// HMAC digest (under the key ring's pepper), the account, a label, the dates and the enrolment the
// trust was given under. Each use replaces the token: a copied cookie works at most once, and
// presenting the token it replaced (a copy used after the original) revokes that browser.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Keyring } from '../core/keyring.ts'
import { describeUserAgent } from '../core/user-agent.ts'
import type { TrustedDeviceRow, TrustedDevicesStore } from '../db/trusted-devices-store.ts'
import type { Audit } from './audit.ts'
import type { AuditContext } from './context.ts'

export interface TrustedDevice {
  id: string
  label: string
  createdAt: Date
  lastUsedAt: Date | null
  expiresAt: Date
}

/** What the browser keeps: the cookie's value and how long it lasts (the same as the record). */
export interface DeviceCookie {
  value: string
  expiresAt: Date
}

export type UseOutcome =
  | { ok: true, cookie: DeviceCookie, deviceId: string }
  /** Nothing usable; `revoked` when the cookie was an old token of a trusted browser (now forgotten). */
  | { ok: false, revoked: boolean }

const TOKEN_BYTES = 32
const ID = /^[A-Za-z0-9_-]{22}$/
const TOKEN = /^[A-Za-z0-9_-]{43}$/

export class TrustedDevices {
  constructor (private readonly deps: {
    keyring: Keyring
    store: TrustedDevicesStore
    audit: Audit
    days: number
    clock: () => number
  }) {}

  private digest (token: string): string {
    const [current] = this.deps.keyring.recoveryPeppers()
    return this.digestUnder(current!.pepper, token)
  }

  private digestUnder (pepper: Buffer, token: string): string {
    return createHmac('sha256', pepper).update(`trusted-device:v1:${token}`).digest('base64url')
  }

  /** Whether `token` is the one behind `digest`, under any key of the ring (trust outlives a key rotation). */
  private matches (digest: string | null, token: string): boolean {
    if (digest === null) return false
    const stored = Buffer.from(digest)
    return this.deps.keyring.recoveryPeppers().some(({ pepper }) => {
      const candidate = Buffer.from(this.digestUnder(pepper, token))
      return candidate.length === stored.length && timingSafeEqual(candidate, stored)
    })
  }

  /** Trusts this browser for the account's current enrolment; returns the cookie to set. */
  async trust (userId: string, enrolmentId: string | null, context: AuditContext): Promise<DeviceCookie> {
    const now = new Date(this.deps.clock())
    const id = randomBytes(16).toString('base64url')
    const token = randomBytes(TOKEN_BYTES).toString('base64url')
    const { browser, os } = describeUserAgent(context.userAgent)
    const label = [browser, os].filter((part) => part !== null).join(' · ')
    const expiresAt = new Date(now.getTime() + this.deps.days * 24 * 60 * 60_000)
    await this.deps.store.create({ id, userId, digest: this.digest(token), previousDigest: null, enrolmentId, label, createdAt: now, lastUsedAt: null, expiresAt })
    await this.deps.audit.record('device.trusted', { userId, details: { device: id, label, expiresAt: expiresAt.toISOString() }, context })
    return { value: `${id}.${token}`, expiresAt }
  }

  /**
   * The cookie of a browser presented at sign-in: usable when it is this account's, unexpired,
   * given under the account's current enrolment, and its token is the latest. Then the token is
   * replaced (the new cookie keeps the first expiry).
   */
  async use (userId: string, cookie: unknown, enrolmentId: string | null, context: AuditContext): Promise<UseOutcome> {
    const parsed = parseCookie(cookie)
    if (parsed === null) return { ok: false, revoked: false }
    const now = new Date(this.deps.clock())
    const row = await this.deps.store.find(parsed.id)
    if (row === undefined || row.userId !== userId) return { ok: false, revoked: false }
    if (!this.matches(row.digest, parsed.token)) {
      if (this.matches(row.previousDigest, parsed.token)) {
        // The token this browser's was replaced by has been used already: a copy is about.
        await this.revoke(row, 'reused', context)
        return { ok: false, revoked: true }
      }
      return { ok: false, revoked: false }
    }
    if (row.expiresAt <= now || row.enrolmentId !== enrolmentId || enrolmentId === null) return { ok: false, revoked: false }
    const token = randomBytes(TOKEN_BYTES).toString('base64url')
    if (!await this.deps.store.rotate(row.id, row.digest, this.digest(token), now)) {
      // Another request replaced this very token in between: two uses of one token, so a copy
      // is about, the same as when they come one after the other.
      const after = await this.deps.store.find(row.id)
      if (after !== undefined && this.matches(after.previousDigest, parsed.token)) {
        await this.revoke(after, 'reused', context)
        return { ok: false, revoked: true }
      }
      return { ok: false, revoked: false }
    }
    await this.deps.audit.record('device.used', { userId, details: { device: row.id }, context })
    return { ok: true, cookie: { value: `${row.id}.${token}`, expiresAt: row.expiresAt }, deviceId: row.id }
  }

  async list (userId: string): Promise<TrustedDevice[]> {
    const rows = await this.deps.store.list(userId, new Date(this.deps.clock()))
    return rows.map((row) => ({ id: row.id, label: row.label, createdAt: row.createdAt, lastUsedAt: row.lastUsedAt, expiresAt: row.expiresAt }))
  }

  async forget (userId: string, id: string, context: AuditContext): Promise<boolean> {
    const forgotten = await this.deps.store.forget(userId, id)
    if (forgotten) await this.deps.audit.record('device.revoked', { userId, details: { device: id, reason: 'forgotten' }, context })
    return forgotten
  }

  async forgetAll (userId: string, context: AuditContext): Promise<number> {
    const forgotten = await this.deps.store.forgetAll(userId)
    if (forgotten > 0) await this.deps.audit.record('device.revoked', { userId, details: { count: forgotten, reason: 'forgotten' }, context })
    return forgotten
  }

  private async revoke (row: TrustedDeviceRow, reason: string, context: AuditContext): Promise<void> {
    if (await this.deps.store.forget(row.userId, row.id)) {
      await this.deps.audit.record('device.revoked', { userId: row.userId, details: { device: row.id, reason }, context })
    }
  }
}

function parseCookie (value: unknown): { id: string, token: string } | null {
  if (typeof value !== 'string' || value.length > 100) return null
  const [id, token, extra] = value.split('.')
  if (extra !== undefined || id === undefined || token === undefined || !ID.test(id) || !TOKEN.test(token)) return null
  return { id, token }
}
