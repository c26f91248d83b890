// The domain logic of two-factor sign-in, shared by the routes, the CLI and the host's
// `fastify.twoFactor` API. Routes stay thin: they parse, call one method here, and render.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import QRCode from 'qrcode'
import { base32Encode, groupBy4 } from './core/base32.ts'
import type { Keyring } from './core/keyring.ts'
import { DEFAULT_POLICY, describeRequirement, evaluatePolicy, normalisePolicy, signInStep, type PolicySettings, type Requirement } from './core/policy.ts'
import { generateRecoveryCodes, normaliseRecoveryCode, recoveryDigest, UNMATCHABLE_CODE } from './core/recovery.ts'
import { findClockDrift, generateSecret, otpauthUri, parseTotpInput, verifyTotp, type TotpParams } from './core/totp.ts'
import type { AccountRow, AccountsStore, LockoutRule } from './db/accounts-store.ts'
import type { TwoFactorDatabase } from './db/database.ts'
import type { RecoveryStore } from './db/recovery-store.ts'
import type { PgSessionStore } from './db/session-store.ts'
import type { SettingsStore } from './db/settings-store.ts'
import type { Audit } from './audit.ts'
import type { AccountsAdapter, ResolvedOptions } from './options.ts'

export type SignInState = 'pending' | 'pending-setup' | 'signed-in'

export interface UserProfile {
  userId: string
  label: string
  isAdmin: boolean
  roles: readonly string[]
  createdAt: Date | null
}

export interface TwoFactorStatus {
  userId: string
  enabled: boolean
  enabledAt: Date | null
  recoveryCodesLeft: number
  required: boolean
  requiredBy: string
  canSkip: boolean
  graceDaysLeft: number | null
  lockedUntil: Date | null
}

/** The outcome of one second-factor attempt, as the challenge route needs it. */
export type ChallengeOutcome =
  | { ok: true, method: 'totp' | 'recovery', recoveryCodesLeft: number | null }
  | { ok: false, reason: 'invalid_code' | 'invalid_input', driftMinutes: number | null, lockedUntil: null }
  | { ok: false, reason: 'locked', lockedUntil: Date, driftMinutes: null }

export interface EnrolmentView {
  issuer: string
  account: string
  manualKey: string
  otpauthUri: string
  qrSvg: string
  expiresAt: Date
}

export type ConfirmOutcome =
  | { ok: true, recoveryCodes: string[] }
  | { ok: false, reason: 'invalid_code' | 'invalid_input' | 'expired', driftMinutes: number | null }

export interface ActorContext {
  /** Who acts: a user id, or `cli`. */
  actor: string
  request?: FastifyRequest | null
}

/** The options the service reads: a plugin's resolved options, or the CLI's defaults. */
export type ServiceOptions = Pick<ResolvedOptions,
  'accounts' | 'algorithm' | 'digits' | 'period' | 'window' | 'lockoutThreshold' | 'lockoutBaseMs' |
  'lockoutMaxMs' | 'allowSkip' | 'clock' | 'issuer' | 'enrolmentTtlMs'>

export interface ServiceDeps {
  options: ServiceOptions
  db: TwoFactorDatabase
  keyring: Keyring
  accounts: AccountsStore
  recovery: RecoveryStore
  settings: SettingsStore
  sessions: PgSessionStore | null
  audit: Audit
  log: FastifyBaseLogger
}

export class UnknownUserError extends Error {
  constructor () {
    super('No such user.')
    this.name = 'UnknownUserError'
  }
}

const POLICY_KEY = 'policy'

export class TwoFactorService {
  private readonly options: ServiceOptions
  private readonly adapter: AccountsAdapter
  readonly totp: TotpParams
  private readonly lockout: LockoutRule

  constructor (private readonly deps: ServiceDeps) {
    this.options = deps.options
    this.adapter = deps.options.accounts
    this.totp = { algorithm: deps.options.algorithm, digits: deps.options.digits, period: deps.options.period, window: deps.options.window }
    this.lockout = { threshold: deps.options.lockoutThreshold, baseMs: deps.options.lockoutBaseMs, maxMs: deps.options.lockoutMaxMs }
  }

  private now (): Date {
    return new Date(this.options.clock())
  }

  // ── Users and policy ────────────────────────────────────────────────────────────────────

  async profile (userId: string): Promise<UserProfile | null> {
    const user = await this.adapter.findUser(userId)
    if (user === null || user === undefined) return null
    return this.profileOf(user)
  }

  profileOf (user: unknown): UserProfile {
    const a = this.adapter
    return {
      userId: String(a.userId(user)),
      label: String(a.label(user)),
      isAdmin: a.isAdmin?.(user) === true,
      roles: a.roles?.(user) ?? [],
      createdAt: a.createdAt?.(user) ?? null
    }
  }

  private async requireProfile (userId: string): Promise<UserProfile> {
    const profile = await this.profile(userId)
    if (profile === null) throw new UnknownUserError()
    return profile
  }

  async policy (): Promise<PolicySettings> {
    const stored = await this.deps.settings.get<unknown>(POLICY_KEY)
    return normalisePolicy(stored, { ...DEFAULT_POLICY, allowSkip: this.options.allowSkip })
  }

  async setPolicy (input: PolicySettings, context: ActorContext): Promise<PolicySettings> {
    const previous = await this.policy()
    // When the grace period started is the server's to say, never the form's.
    const next = normalisePolicy({ ...input, requireAllSince: previous.requireAllSince }, previous)
    // The grace period counts from the moment "require for everyone" is switched on.
    if (next.requireAll && !previous.requireAll) next.requireAllSince = this.now().toISOString()
    if (!next.requireAll) next.requireAllSince = null
    await this.deps.settings.put(POLICY_KEY, next, this.now())
    await this.deps.audit.record(context.request ?? null, 'policy.changed', { actor: context.actor, details: { before: previous, after: next } })
    return next
  }

  requirementFor (profile: UserProfile, account: AccountRow | undefined, policy: PolicySettings): Requirement {
    return evaluatePolicy({
      requiredFlag: account?.required ?? null,
      isAdmin: profile.isAdmin,
      roles: profile.roles,
      createdAt: profile.createdAt ?? account?.createdAt ?? null
    }, policy, this.now())
  }

  async status (userId: string): Promise<TwoFactorStatus> {
    const profile = await this.requireProfile(userId)
    const [account, policy, recoveryCodesLeft] = await Promise.all([
      this.deps.accounts.find(userId), this.policy(), this.deps.recovery.remaining(userId)
    ])
    const requirement = this.requirementFor(profile, account, policy)
    const now = this.now()
    return {
      userId,
      enabled: isEnrolled(account),
      enabledAt: account?.enabledAt ?? null,
      recoveryCodesLeft,
      required: requirement.required,
      requiredBy: describeRequirement(requirement, now),
      canSkip: requirement.canSkip,
      graceDaysLeft: requirement.graceDaysLeft,
      lockedUntil: account?.lockedUntil !== null && account?.lockedUntil !== undefined && account.lockedUntil > now ? account.lockedUntil : null
    }
  }

  /** SPEC §8: new admin accounts are required by default. Safe to call more than once. */
  async onUserCreated (userId: string): Promise<void> {
    const profile = await this.requireProfile(userId)
    await this.deps.accounts.ensure(userId)
    if (profile.isAdmin) await this.deps.accounts.applyDefaultRequired(userId, true, this.now())
  }

  /** Turning a requirement off also clears the user's 2FA (how an admin rescues a user). */
  async setRequired (userId: string, required: boolean, context: ActorContext): Promise<TwoFactorStatus> {
    await this.requireProfile(userId)
    await this.deps.accounts.setRequired(userId, required, this.now())
    if (!required) await this.clearEnrolment(userId)
    await this.deps.audit.record(context.request ?? null, required ? 'required.on' : 'required.off', { userId, actor: context.actor })
    return await this.status(userId)
  }

  /** Emergency reset: clears secret and codes; the user enrols again at next sign-in if required. */
  async reset (userId: string, context: ActorContext & { reason: string }): Promise<TwoFactorStatus> {
    await this.requireProfile(userId)
    await this.clearEnrolment(userId)
    await this.deps.audit.record(context.request ?? null, 'disabled.by_admin', { userId, actor: context.actor, details: { reason: context.reason } })
    return await this.status(userId)
  }

  async unlock (userId: string, context: ActorContext): Promise<TwoFactorStatus> {
    await this.requireProfile(userId)
    if (await this.deps.accounts.unlock(userId, this.now())) {
      await this.deps.audit.record(context.request ?? null, 'lockout.cleared', { userId, actor: context.actor })
    }
    return await this.status(userId)
  }

  private async clearEnrolment (userId: string, exceptSessionId?: string): Promise<void> {
    await this.deps.accounts.clearEnrolment(userId, this.now())
    // Whoever held the old factor must not stay signed in elsewhere.
    await this.deps.sessions?.destroyUserSessions(userId, exceptSessionId)
  }

  // ── Sign-in ─────────────────────────────────────────────────────────────────────────────

  /** What happens after the password (SPEC §5). Applies the admin default lazily. */
  async decideSignIn (userId: string): Promise<{ state: SignInState, requirement: Requirement }> {
    const profile = await this.requireProfile(userId)
    let account = await this.deps.accounts.ensure(userId)
    if (account.required === null && profile.isAdmin) {
      await this.deps.accounts.applyDefaultRequired(userId, true, this.now())
      account = { ...account, required: true }
    }
    const requirement = this.requirementFor(profile, account, await this.policy())
    return { state: signInStep(requirement, isEnrolled(account)), requirement }
  }

  /**
   * Checks one code or recovery code for a pending sign-in. Every way of failing (wrong,
   * replayed, malformed, missing) counts against the account; while the account is locked
   * the code is not even looked at, so a right code and a wrong one get the same answer.
   */
  async verifyChallenge (userId: string, input: { code?: unknown, recoveryCode?: unknown }, request: FastifyRequest): Promise<ChallengeOutcome> {
    const now = this.now()
    const account = await this.deps.accounts.find(userId)
    if (!isEnrolled(account)) return await this.fail(userId, 'invalid_code', null, request)
    if (account.lockedUntil !== null && account.lockedUntil > now) {
      return { ok: false, reason: 'locked', lockedUntil: account.lockedUntil, driftMinutes: null }
    }

    if (input.recoveryCode !== undefined && input.code === undefined) {
      return await this.verifyRecoveryCode(userId, input.recoveryCode, request)
    }

    const code = parseTotpInput(input.code, this.totp.digits)
    if (code === null) return await this.fail(userId, 'invalid_input', null, request)
    const secret = this.deps.keyring.open(account.secret, userId)
    const match = verifyTotp(secret, code, now.getTime(), this.totp)
    if (match !== null && await this.deps.accounts.consumeStep(userId, match.step, now)) {
      await this.deps.audit.record(request, 'challenge.succeeded', { userId, details: { method: 'totp' } })
      return { ok: true, method: 'totp', recoveryCodesLeft: null }
    }
    const drift = match === null ? findClockDrift(secret, code, now.getTime(), this.totp) : null
    return await this.fail(userId, 'invalid_code', drift, request)
  }

  private async verifyRecoveryCode (userId: string, raw: unknown, request: FastifyRequest): Promise<ChallengeOutcome> {
    const now = this.now()
    // Malformed input still costs one digest per key and one query: same answer, same time.
    const normalised = normaliseRecoveryCode(raw) ?? UNMATCHABLE_CODE
    const digests = this.deps.keyring.recoveryPeppers().map(({ pepper }) => recoveryDigest(pepper, userId, normalised))
    if (await this.deps.recovery.consume(userId, digests, now)) {
      await this.deps.accounts.clearFailures(userId, now)
      const recoveryCodesLeft = await this.deps.recovery.remaining(userId)
      await this.deps.audit.record(request, 'recovery.used', { userId, details: { remaining: recoveryCodesLeft } })
      await this.deps.audit.record(request, 'challenge.succeeded', { userId, details: { method: 'recovery' } })
      return { ok: true, method: 'recovery', recoveryCodesLeft }
    }
    return await this.fail(userId, 'invalid_code', null, request)
  }

  private async fail (userId: string, reason: 'invalid_code' | 'invalid_input', driftMinutes: number | null, request: FastifyRequest): Promise<ChallengeOutcome> {
    const outcome = await this.deps.accounts.recordFailure(userId, this.lockout, this.now())
    await this.deps.audit.record(request, 'challenge.failed', { userId, details: { reason } })
    if (outcome.lockStarted && outcome.lockedUntil !== null) {
      await this.deps.audit.record(request, 'lockout.started', { userId, details: { until: outcome.lockedUntil.toISOString() } })
      // Someone with the password is guessing codes: end the user's other sessions (signed-in
      // and pending), as disable and reset do, so none outlasts the lock unnoticed.
      await this.deps.sessions?.destroyUserSessions(userId, request.session?.sessionId)
      return { ok: false, reason: 'locked', lockedUntil: outcome.lockedUntil, driftMinutes: null }
    }
    if (outcome.lockedUntil !== null && outcome.lockedUntil > this.now()) {
      return { ok: false, reason: 'locked', lockedUntil: outcome.lockedUntil, driftMinutes: null }
    }
    return { ok: false, reason, driftMinutes, lockedUntil: null }
  }

  async signedIn (userId: string, request: FastifyRequest): Promise<void> {
    await this.adapter.onSignedIn?.(userId, request)
  }

  async recordSkip (userId: string, requirement: Requirement, request: FastifyRequest): Promise<void> {
    await this.deps.audit.record(request, 'wizard.skipped', { userId, details: { graceDaysLeft: requirement.graceDaysLeft } })
  }

  async recordWizardShown (userId: string, request: FastifyRequest): Promise<void> {
    await this.deps.audit.record(request, 'wizard.shown', { userId })
  }

  // ── Enrolment ───────────────────────────────────────────────────────────────────────────

  issuerFor (request: FastifyRequest): string {
    const issuer = this.options.issuer
    return typeof issuer === 'function' ? issuer(request) : issuer
  }

  /** Resumes the pending secret while it is fresh, else starts a new one (SPEC §6 step 1). */
  async beginEnrolment (userId: string, request: FastifyRequest): Promise<EnrolmentView> {
    const profile = await this.requireProfile(userId)
    const now = this.now()
    const account = await this.deps.accounts.find(userId)
    let secret: Buffer
    let createdAt: Date
    if (account?.pendingSecret != null && account.pendingCreatedAt !== null && !this.pendingExpired(account.pendingCreatedAt)) {
      secret = this.deps.keyring.open(account.pendingSecret, userId)
      createdAt = account.pendingCreatedAt
    } else {
      secret = generateSecret()
      createdAt = now
      await this.deps.accounts.setPendingSecret(userId, this.deps.keyring.seal(secret, userId), now)
      await this.deps.audit.record(request, 'enrolment.started', { userId })
    }
    const issuer = this.issuerFor(request)
    const uri = otpauthUri({ issuer, account: profile.label, secret, params: this.totp })
    return {
      issuer,
      account: profile.label,
      manualKey: groupBy4(base32Encode(secret)),
      otpauthUri: uri,
      qrSvg: await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 }),
      expiresAt: new Date(createdAt.getTime() + this.options.enrolmentTtlMs)
    }
  }

  private pendingExpired (createdAt: Date): boolean {
    return this.options.clock() - createdAt.getTime() >= this.options.enrolmentTtlMs
  }

  /**
   * Confirms the pending secret with a current code (SPEC §6 step 2). The switch from pending
   * to active, the code's step and the new recovery codes are one transaction.
   */
  async confirmEnrolment (userId: string, rawCode: unknown, request: FastifyRequest): Promise<ConfirmOutcome> {
    const now = this.now()
    const account = await this.deps.accounts.find(userId)
    if (account?.pendingSecret == null || account.pendingCreatedAt === null || this.pendingExpired(account.pendingCreatedAt)) {
      return { ok: false, reason: 'expired', driftMinutes: null }
    }
    const code = parseTotpInput(rawCode, this.totp.digits)
    if (code === null) return { ok: false, reason: 'invalid_input', driftMinutes: null }
    const secret = this.deps.keyring.open(account.pendingSecret, userId)
    const match = verifyTotp(secret, code, now.getTime(), this.totp)
    if (match === null) {
      return { ok: false, reason: 'invalid_code', driftMinutes: findClockDrift(secret, code, now.getTime(), this.totp) }
    }
    const pendingSecret = account.pendingSecret
    const recoveryCodes = generateRecoveryCodes()
    const confirmed = await this.deps.db.transaction(async (tx) => {
      if (!await this.deps.accounts.confirmPendingSecret(tx, userId, pendingSecret, match.step, now)) return false
      await this.deps.recovery.replace(tx, userId, this.digestsOf(userId, recoveryCodes), now)
      return true
    })
    if (!confirmed) return { ok: false, reason: 'invalid_code', driftMinutes: null }
    await this.deps.audit.record(request, 'enrolment.completed', { userId })
    return { ok: true, recoveryCodes }
  }

  private digestsOf (userId: string, codes: string[]): Array<{ digest: string, keyId: string }> {
    const [current] = this.deps.keyring.recoveryPeppers()
    return codes.map((code) => ({ digest: recoveryDigest(current!.pepper, userId, normaliseRecoveryCode(code)!), keyId: current!.keyId }))
  }

  // ── Self-service ────────────────────────────────────────────────────────────────────────

  async checkPassword (userId: string, password: unknown): Promise<boolean> {
    if (typeof password !== 'string' || password.length === 0 || password.length > 1024) return false
    return await this.adapter.verifyPassword(userId, password) === true
  }

  /** Turns 2FA off for the user themself; the caller has checked the password and the policy. */
  async disable (userId: string, request: FastifyRequest, currentSessionId?: string): Promise<void> {
    await this.clearEnrolment(userId, currentSessionId)
    await this.deps.audit.record(request, 'disabled', { userId })
  }

  /** A fresh ten; the old set stops working in the same transaction. */
  async regenerateRecoveryCodes (userId: string, request: FastifyRequest): Promise<string[]> {
    const codes = generateRecoveryCodes()
    await this.deps.db.transaction(async (tx) => {
      await this.deps.recovery.replace(tx, userId, this.digestsOf(userId, codes), this.now())
    })
    await this.deps.audit.record(request, 'recovery.regenerated', { userId })
    return codes
  }
}

export function isEnrolled (account: AccountRow | undefined): account is AccountRow & { secret: string, enabledAt: Date } {
  return account !== undefined && account.secret !== null && account.enabledAt !== null
}
