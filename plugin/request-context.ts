// `request.twoFactor`: what the host sees of the sign-in on each request (SPEC §11), and the
// two calls it makes: `startLogin` after the password, `logout`.
import type { FastifyRequest } from 'fastify'
import type { ResolvedOptions } from './options.ts'
import { readState, safeReturnTo, type SessionStateName, type TwoFactorSessionData } from './session-state.ts'
import { unavailable } from './db/session-store.ts'
import { UnknownUserError, type TwoFactorService } from './service.ts'

export type RequestState = SessionStateName | 'anonymous'

export interface StartLoginResult {
  state: SessionStateName
  /** Where to send the user now: the challenge, the wizard, or `returnTo`. */
  next: string
}

export class RequestTwoFactor {
  constructor (
    private readonly request: FastifyRequest,
    private readonly service: TwoFactorService,
    private readonly options: ResolvedOptions
  ) {}

  private get data (): TwoFactorSessionData | null {
    return readState(this.request, this.options.clock())
  }

  get state (): RequestState {
    return this.data?.state ?? 'anonymous'
  }

  /** The signed-in user's id; null unless sign-in is complete. */
  get userId (): string | null {
    const data = this.data
    return data?.state === 'signed-in' ? data.userId : null
  }

  /** The user a pending sign-in is for (the challenge and wizard use it). */
  get pendingUserId (): string | null {
    const data = this.data
    return data !== null && data.state !== 'signed-in' ? data.userId : null
  }

  /**
   * Call once the password is right. Decides between signed in, pending (ask for a code) and
   * pending-setup (the wizard), with a fresh session id either way.
   */
  async startLogin (userId: string, options: { returnTo?: string } = {}): Promise<StartLoginResult> {
    try {
      return await this.begin(userId, options)
    } catch (error) {
      // The host's route called us: a database failure must reach its error handler as a 503
      // (fail closed), never as a 500 whose message quotes the driver's SQL and parameters.
      if (error instanceof UnknownUserError) throw error
      throw unavailable(error)
    }
  }

  private async begin (userId: string, options: { returnTo?: string }): Promise<StartLoginResult> {
    const returnTo = safeReturnTo(options.returnTo, this.options.signedInRedirect)
    const { state } = await this.service.decideSignIn(String(userId))
    if (state === 'signed-in') {
      await completeSignIn(this.request, this.service, String(userId), { verified: false })
      return { state, next: returnTo }
    }
    await this.request.session.regenerate()
    this.request.session.twoFactor = {
      state,
      userId: String(userId),
      expiresAt: this.options.clock() + (state === 'pending' ? this.options.pendingTtlMs : this.options.enrolmentTtlMs),
      attempts: 0,
      returnTo
    }
    if (state === 'pending-setup') await this.service.recordWizardShown(String(userId), this.request)
    return { state, next: `${this.options.prefix}/${state === 'pending' ? 'challenge' : 'setup'}` }
  }

  /** Drops pending and signed-in state and the session itself. */
  async logout (): Promise<void> {
    const session = this.request.session as FastifyRequest['session'] | undefined
    if (session === undefined || typeof session.destroy !== 'function') return
    await session.destroy()
  }
}

/**
 * Finishes sign-in: a new session id (so nothing from the half-signed-in session carries
 * over), the signed-in state, then the host's `onSignedIn` (which clears its password lockout).
 * If that hook fails the answer is an error, and the session must not be signed in by it: the
 * state is dropped before the error goes on (the response would otherwise save it).
 */
export async function completeSignIn (request: FastifyRequest, service: TwoFactorService, userId: string, how: { verified: boolean, now?: number }): Promise<void> {
  await request.session.regenerate()
  request.session.twoFactor = { state: 'signed-in', userId, ...(how.verified ? { verifiedAt: how.now ?? Date.now() } : {}) }
  try {
    await service.signedIn(userId, request)
  } catch (error) {
    request.session.twoFactor = undefined
    throw error
  }
}
