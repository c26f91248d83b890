// The plugin's pages, in a scope of their own under the prefix: @fastify/view with the plugin's
// Eta, the security headers, the input checks, one error handler, and the routes.
import view from '@fastify/view'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { ResolvedOptions } from '../options.ts'
import { securityHeadersHook } from '../security-headers.ts'
import { createEta } from '../views/eta.ts'
import { errorAnswerer } from '../views/error-handler.ts'
import type { RenderTemplate } from '../views/renderer.ts'
import { PLUGIN_TEMPLATES_DIR } from '../views/templates-dir.ts'
import { adminRoutes } from './admin/index.ts'
import { assetRoutes, type Assets } from './assets.ts'
import { challengeRoutes } from './challenge.ts'
import { csrfCheck, emptyBodyIsEmptyObject, refuseCrossSite, refuseUnsafeText, typed, type RouteContext } from './context.ts'
import { logoutRoutes } from './logout.ts'
import { devicesRoutes } from './devices.ts'
import { sessionsRoutes } from './sessions.ts'
import { settingsRoutes } from './settings.ts'
import { setupRoutes } from './setup.ts'
import { askForStepUp, stepUpRoutes } from './step-up.ts'

declare module 'fastify' {
  interface FastifyInstance {
    twoFactorView?: (page: string, data: Record<string, unknown>) => Promise<string>
  }
}

/** Route options for the plugin's POSTs: cross-site refusal, CSRF, the per-IP rate limit. */
export function csrfPostOptions (options: ResolvedOptions): Pick<RouteContext, 'post' | 'signInStep' | 'signInPost'> {
  const rateLimit = options.rateLimit === false ? {} : { rateLimit: { max: options.rateLimit.max, timeWindow: options.rateLimit.timeWindowMs } }
  const post: RouteShorthandOptions = { onRequest: refuseCrossSite, preHandler: csrfCheck, config: rateLimit }
  return {
    post,
    // The allow-list: the sign-in steps a half-signed-in session must reach.
    signInStep: { config: { twoFactor: false } },
    signInPost: { ...post, config: { ...rateLimit, twoFactor: false } }
  }
}

export interface PagesOptions {
  ctx: RouteContext
  assets: Assets
  onReady: (render: RenderTemplate, askForStepUp: (request: FastifyRequest, reply: FastifyReply, stepUpReturnTo: string | undefined) => Promise<unknown>) => void
}

async function pages (pages: FastifyInstance, { ctx, assets, onReady }: PagesOptions): Promise<void> {
  const { options, renderer } = ctx
  await pages.register(view, {
    engine: { eta: createEta(options.templatesDir) },
    templates: PLUGIN_TEMPLATES_DIR,
    propertyName: 'twoFactorView',
    // Compiled once and cached, whatever NODE_ENV says.
    production: true
  })
  // The plugin's own pages always carry its headers (unless `helmet: false`): it knows they need
  // no inline script. With `helmet: 'app'` the root hook has set them already.
  if (options.helmet === true) pages.addHook('onRequest', securityHeadersHook(options.session.secure))
  pages.setErrorHandler(errorAnswerer(renderer, ctx.t))
  pages.addHook('preValidation', emptyBodyIsEmptyObject)
  // After the gate (a root hook), so a half-signed-in session is still sent on its way first.
  pages.addHook('preHandler', refuseUnsafeText)

  const routes = typed(pages)
  await challengeRoutes(routes, ctx)
  await setupRoutes(routes, ctx)
  const { prompt } = await stepUpRoutes(routes, ctx)
  await settingsRoutes(routes, ctx)
  await sessionsRoutes(routes, ctx)
  await devicesRoutes(routes, ctx)
  await adminRoutes(routes, { ...ctx, prompt })
  await logoutRoutes(routes, ctx)
  await assetRoutes(pages, { assets, open: ctx.signInStep })
  // A 404 under the prefix is answered by the plugin, as a page or JSON.
  pages.setNotFoundHandler(async (request, reply) => await renderer.message(request, reply, { title: 'title.error.not_found', status: 404, error: 'not_found', message: 'error.not_found' }))

  onReady(
    async (_reply, template, data) => await pages.twoFactorView!(template, data),
    async (request, reply, stepUpReturnTo) => await askForStepUp(request, reply, { prefix: options.prefix, prompt, stepUpReturnTo, message: ctx.t(request)('error.step_up_required') })
  )
}

/**
 * Encapsulated (its hooks, error handler and view stay under the prefix), and checked to come
 * after the web plumbing it needs.
 */
export const pagesPlugin = fp(pages, {
  name: 'fastify-two-factor-pages',
  fastify: '5.x',
  encapsulate: true,
  dependencies: ['@fastify/cookie', '@fastify/session', '@fastify/csrf-protection']
})
