// The admin panel: users, policy, audit log, in a scope of their own so the admins-only guard
// covers these routes and nothing else.
import type { FastifyRequest } from 'fastify'
import { safeLocation } from '../../core/location.ts'
import { typed, type RouteContext } from '../context.ts'
import type { StepUpPrompt } from '../step-up.ts'
import { adminEventsRoutes } from './events.ts'
import { adminGuard } from './guard.ts'
import { adminPolicyRoutes } from './policy.ts'
import { adminUserActionRoutes } from './user-actions.ts'
import { adminUsersRoutes } from './users.ts'

export async function adminRoutes (app: ReturnType<typeof typed>, ctx: RouteContext & { prompt: StepUpPrompt }): Promise<void> {
  const base = `${ctx.options.prefix}/admin`
  /** Where an admin change refused for want of a fresh code returns: the list (or page) it came from. */
  const returnTo = (request: FastifyRequest): string => {
    const given = safeLocation((request.body as { returnTo?: unknown } | undefined)?.returnTo, '')
    if (given.startsWith(`${base}/`)) return given
    return request.routeOptions.url?.startsWith(`${base}/policy`) === true ? `${base}/policy` : `${base}/users`
  }
  await app.register(async (panel) => {
    panel.addHook('preHandler', adminGuard(ctx, { prompt: ctx.prompt, returnTo }))
    const routes = typed(panel)
    const adminCtx = { ...ctx, base }
    await adminUsersRoutes(routes, adminCtx)
    await adminUserActionRoutes(routes, adminCtx)
    await adminPolicyRoutes(routes, adminCtx)
    await adminEventsRoutes(routes, adminCtx)
  })
}
