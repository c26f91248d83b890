// `request.twoFactor`: what the host sees of the sign-in on each request, and the calls it
// makes: `startLogin` once the password is right, `logout`, `endOtherSessions`.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { safeLocation } from './core/location.ts'
import type { RequestStateName, SignInStateName } from './core/sign-in.ts'
import { TwoFactorError } from './errors.ts'
import { unavailable } from './db/session-store.ts'
import { UnknownUserError } from './services/context.ts'
import { endSession, graceOf, readState } from './sign-in-session.ts'
import { auditContextOf, lifetimesOf, newChallengeId, step, type RouteContext } from './routes/context.ts'
import { readTrustedCookie, trustedCookieToSend } from './routes/trusted-cookie.ts'

export interface StartLoginResult {
  state: SignInStateName
  /** Where to send the user now: the code prompt, the wizard, or `returnTo`. */
  next: string
}

/** Something the host's layout should tell the signed-in user (today: setup is due soon). */
export interface TwoFactorNotice {
  kind: 'grace'
  /** Whole days until setup can no longer be skipped (rounded up: 1 on the last day). */
  daysLeft: number
  /** Where to set it up. */
  setupPath: string
}

const DAY_MS = 24 * 60 * 60_000

export class RequestTwoFactor {
  constructor (private readonly request: FastifyRequest, private readonly ctx: RouteContext) {}

  private get data () {
    return readState(this.request, this.ctx.options.clock())
  }

  get state (): RequestStateName {
    return this.data?.state ?? 'anonymous'
  }

  /** The signed-in user's id; null unless sign-in is complete. */
  get userId (): string | null {
    const data = this.data
    return data?.state === 'signed-in' ? data.userId : null
  }

  /** The user a half-finished sign-in is for (the code prompt or the wizard), else null. */
  get pendingUserId (): string | null {
    const data = this.data
    return data !== null && data.state !== 'signed-in' ? data.userId : null
  }

  /**
   * While this session was let in by "Skip for now" and a requirement is in its grace period:
   * how long is left and where to set it up. Null otherwise. Read from the session alone.
   */
  get notice (): TwoFactorNotice | null {
    const now = this.ctx.options.clock()
    const grace = graceOf(this.request, now)
    if (grace === null) return null
    return { kind: 'grace', daysLeft: Math.ceil((grace.graceEndsAt - now) / DAY_MS), setupPath: `${this.ctx.options.prefix}/setup` }
  }

  /** The `notice` as the plugin's banner partial (HTML, in the request's language), or '' when there is none. */
  async banner (reply: FastifyReply): Promise<string> {
    const notice = this.notice
    if (notice === null) return ''
    return await this.ctx.renderer.fragment(this.request, reply, 'partials/banner', { notice })
  }

  /**
   * Call once the password is right. Decides between signed in, a code prompt and the wizard,
   * with a new session id. `returnTo` (a path on this site) is where a completed sign-in goes.
   */
  async startLogin (userId: string, options: { returnTo?: string } = {}): Promise<StartLoginResult> {
    try {
      return await this.begin(String(userId), options)
    } catch (error) {
      // The host's route called us: a database failure must reach its error handler as a 503
      // (fail closed), never as a 500 whose message quotes the driver's SQL and parameters.
      if (error instanceof UnknownUserError || error instanceof TwoFactorError) throw error
      throw unavailable(error)
    }
  }

  private async begin (userId: string, options: { returnTo?: string }): Promise<StartLoginResult> {
    const { options: resolved, core } = this.ctx
    const returnTo = safeLocation(options.returnTo, resolved.signedInRedirect)
    const { transition } = await step(this.ctx, this.request, userId, {
      type: 'password', userId, returnTo, now: resolved.clock(), challengeId: newChallengeId(), lifetimes: lifetimesOf(resolved)
    })
    let state = transition.next!.state
    if (state === 'pending' && resolved.trustedDevice !== false) state = await this.tryTrustedBrowser(userId)
    if (state === 'pending-setup') await core.services.signIn.wizardShown(userId, auditContextOf(this.request))
    const next = state === 'signed-in' ? returnTo : `${resolved.prefix}/${state === 'pending' ? 'challenge' : 'setup'}`
    return { state, next }
  }

  /** A browser the user trusted skips the code (never the password): its cookie is checked and replaced. */
  private async tryTrustedBrowser (userId: string): Promise<SignInStateName> {
    const cookie = readTrustedCookie(this.request, this.ctx.options)
    if (cookie === undefined) return 'pending'
    const { core, options } = this.ctx
    const reading = await core.services.signIn.read(userId)
    // A locked account is locked for every way in: the browser waits at the prompt, which says
    // so, and its token stays good for after the lockout.
    const lockedUntil = reading.account?.lockedUntil
    if (lockedUntil != null && lockedUntil.getTime() > options.clock()) return 'pending'
    const used = await core.services.trustedDevices.use(userId, cookie, reading.now.enrolmentId, auditContextOf(this.request))
    if (!used.ok) {
      if (used.revoked) trustedCookieToSend.set(this.request, null)
      return 'pending'
    }
    trustedCookieToSend.set(this.request, used.cookie)
    const { transition } = await step(this.ctx, this.request, userId, { type: 'trusted-device', now: options.clock() }, reading)
    return transition.next?.state ?? 'pending'
  }

  /**
   * Ends this session, half-finished and signed-in state alike: the old id is deleted from the
   * store and the browser gets a fresh, empty one (so the answer can still carry a CSRF token).
   */
  async logout (): Promise<void> {
    const session = this.request.session as FastifyRequest['session'] | undefined
    if (session === undefined || typeof session.regenerate !== 'function') return
    await endSession(this.request)
  }

  /** Ends every other session of the signed-in user (after a password change, say); returns how many. */
  async endOtherSessions (): Promise<number> {
    const data = this.data
    if (data === null) return 0
    return await this.ctx.core.services.sessions.endOthers(data.userId, this.request.session.sessionId, auditContextOf(this.request), 'host')
  }
}
