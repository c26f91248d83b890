// Who may use the admin panel: a signed-in admin (the host's `isAdmin`) whose session proved a
// second factor, unless their own account is not required to have one. Changes need more: a code
// entered in the last `adminFreshWithin` (admin mode, as GitLab's), so a stolen admin cookie alone
// can't strip another account's second factor. Refusals are audited, once per actor per ten minutes.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { isFresh } from '../../core/sign-in.ts'
import { fail } from '../../errors.ts'
import type { UserProfile } from '../../services/profiles.ts'
import type { AccountReading } from '../../services/sign-in.ts'
import { readState } from '../../sign-in-session.ts'
import { auditContextOf, type RouteContext } from '../context.ts'
import { askForStepUp, type StepUpPrompt } from '../step-up.ts'

export interface AdminActor {
  profile: UserProfile
}

const actors = new WeakMap<FastifyRequest, AdminActor>()

/** The admin acting in this request (set by the guard). */
export function actorOf (request: FastifyRequest): AdminActor {
  return actors.get(request)!
}

export function adminGuard (ctx: RouteContext, options: { prompt: StepUpPrompt, returnTo: (request: FastifyRequest) => string }) {
  const { core } = ctx
  const { prefix, loginPath, adminFreshWithinMs, clock } = ctx.options

  return async function guardAdminPanel (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const state = readState(request, clock())
    // Nobody to attribute it to, so no audit event: the log can't be filled without an account.
    if (state?.state !== 'signed-in') throw fail('forbidden', { message: 'admin.sign_in', link: { href: loginPath, text: 'link.sign_in' } })
    const profile = await core.services.profiles.find(state.userId)
    const denied = async (why: string) => {
      await core.services.admin.denied(state.userId, { why, method: request.method, route: request.routeOptions.url ?? request.url.split('?')[0] }, auditContextOf(request))
    }
    if (profile === null || !profile.isAdmin) {
      await denied('not_admin')
      throw fail('forbidden', { message: 'admin.not_admin' })
    }
    // The account is read only when the session alone can't decide: a session that proved a
    // factor recently (the common case) costs no read here.
    let reading: AccountReading | undefined
    const account = async () => (reading ??= await core.services.signIn.read(state.userId))
    // Signed in by "Skip for now" (or with a password only) while a second factor is required.
    if (state.verifiedAt === undefined && (await account()).requirement.required) {
      // A trusted browser let the session in without a code: the account has a factor, so the
      // way on is to prove it now (the step-up prompt), not a refusal.
      if ((await account()).now.enrolled) {
        return await askForStepUp(request, reply, { prefix, prompt: options.prompt, stepUpReturnTo: options.returnTo(request), message: ctx.t(request)('error.step_up_required') })
      }
      await denied('no_second_factor')
      throw fail('second_factor_required', { status: 403, message: 'admin.second_factor_first', next: `${prefix}/setup`, link: { href: `${prefix}/setup`, text: 'link.set_up_now' } })
    }
    const changes = request.method !== 'GET' && request.method !== 'HEAD'
    if (changes && !isFresh(state, clock(), adminFreshWithinMs) && (await account()).now.enrolled) {
      return await askForStepUp(request, reply, { prefix, prompt: options.prompt, stepUpReturnTo: options.returnTo(request), message: ctx.t(request)('error.step_up_required') })
    }
    actors.set(request, { profile })
    return undefined
  }
}
