// The gate: a root preHandler that keeps half-signed-in sessions away from every route of the
// host, and, where asked, anonymous ones and sessions without a fresh code. It reads only the
// session, never the database, so a signed-in request pays a property lookup or two. Each
// route's config (`config.twoFactor`) is checked once, when the route is added: a bad one stops
// startup.
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'
import { parseDuration } from './core/duration.ts'
import { safeLocation } from './core/location.ts'
import { isFresh } from './core/sign-in.ts'
import { OptionsError } from './validate-options.ts'
import { noteSeen, readState } from './sign-in-session.ts'
import { isHtmx, VARY, wantsJson } from './views/renderer.ts'
import type { Translate } from './views/messages.ts'

/** Per-route settings, in `config.twoFactor`. */
export type RouteTwoFactorConfig = false | {
  /** Also asks for a signed-in session (anonymous requests are sent to the login page). */
  signedIn?: boolean
  /** Asks for a code entered within this long ("30s", "10m", "1h"): step-up. Implies `signedIn`. */
  freshWithin?: string
  /** Where a plain form refused for want of a fresh code returns after the code. @default the Referer's path, else '/' */
  stepUpReturnTo?: string
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: not gated (public pages, API-key routes); `{ signedIn }`, `{ freshWithin: '10m' }`. */
    twoFactor?: RouteTwoFactorConfig
  }
}

/** What the gate asks of a route, worked out from its config once. */
interface RouteRule {
  exempt: boolean
  signedIn: boolean
  freshWithinMs: number | null
  stepUpReturnTo: string | undefined
}

const RULE = Symbol('two-factor route rule')

const OPEN: RouteRule = { exempt: true, signedIn: false, freshWithinMs: null, stepUpReturnTo: undefined }
const GATED: RouteRule = { exempt: false, signedIn: false, freshWithinMs: null, stepUpReturnTo: undefined }

/** Checks a route's `config.twoFactor`; throws naming the route and the problem. */
export function ruleOf (config: unknown, where: string): RouteRule {
  if (config === undefined) return GATED
  if (config === false) return OPEN
  const problem = (text: string): never => { throw new OptionsError(`config.twoFactor of ${where}`, text) }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) problem('must be false or an object')
  const c = config as Record<string, unknown>
  for (const key of Object.keys(c)) if (!['signedIn', 'freshWithin', 'stepUpReturnTo'].includes(key)) problem(`has an unknown setting "${key}"`)
  if (c.signedIn !== undefined && typeof c.signedIn !== 'boolean') problem('signedIn must be a boolean')
  let freshWithinMs: number | null = null
  if (c.freshWithin !== undefined) {
    freshWithinMs = parseDuration(c.freshWithin)
    if (freshWithinMs === null) problem(`freshWithin ${JSON.stringify(c.freshWithin)} must look like "30s", "10m" or "1h"`)
  }
  if (c.stepUpReturnTo !== undefined && (typeof c.stepUpReturnTo !== 'string' || safeLocation(c.stepUpReturnTo, '') === '')) problem('stepUpReturnTo must be a path on this site')
  return { exempt: false, signedIn: c.signedIn === true || freshWithinMs !== null, freshWithinMs, stepUpReturnTo: c.stepUpReturnTo as string | undefined }
}

export interface GateOptions {
  prefix: string
  loginPath: string
  requireSignIn: boolean
  clock: () => number
  t: (request: FastifyRequest) => Translate
  /** Whether the user has a second factor to step up with (asked only when a fresh code is missing). */
  isEnrolled: (userId: string) => Promise<boolean>
  /** Answers a request that needs a fresh code (set once the plugin's pages exist). */
  askForStepUp: (request: FastifyRequest, reply: FastifyReply, stepUpReturnTo: string | undefined) => Promise<unknown>
}

export function createGate (options: GateOptions) {
  const { prefix, loginPath, clock } = options
  const lateRules = new WeakMap<object, RouteRule>()
  const freshWithinByPath = new Map<string, number>()

  /** onRoute: every route's config is checked as it is added, and its rule kept with it. */
  function onRoute (route: RouteOptions): void {
    const rule = ruleOf(route.config?.twoFactor, `${[route.method].flat().join(',')} ${route.url}`)
    route.config = { ...route.config, [RULE]: rule } as typeof route.config
    for (const method of [route.method].flat()) {
      if (method === 'GET' && rule.freshWithinMs !== null) freshWithinByPath.set(route.url, rule.freshWithinMs)
    }
  }

  function ruleFor (request: FastifyRequest): RouteRule {
    const config = request.routeOptions.config as ({ [RULE]?: RouteRule, twoFactor?: unknown } | undefined)
    if (config === undefined) return GATED
    const rule = config[RULE]
    if (rule !== undefined) return rule
    // A route added before the plugin was registered: worked out on its first request.
    let late = lateRules.get(config)
    if (late === undefined) lateRules.set(config, late = ruleOf(config.twoFactor, request.routeOptions.url ?? request.url))
    return late
  }

  function send (request: FastifyRequest, reply: FastifyReply, status: 401 | 403, error: string, next: string, page: string): void {
    reply.header('Vary', VARY).header('Cache-Control', 'no-store')
    if (wantsJson(request)) void reply.code(status).send({ error, message: options.t(request)(`error.${error}`), next, csrfToken: reply.generateCsrf() })
    else if (isHtmx(request)) void reply.code(200).header('HX-Redirect', page).send('')
    else void reply.redirect(page, 303)
  }

  function toLogin (request: FastifyRequest, reply: FastifyReply): void {
    const back = safeLocation(request.url)
    send(request, reply, 401, 'sign_in_required', loginPath, `${loginPath}?returnTo=${encodeURIComponent(back)}`)
  }

  async function stepUp (request: FastifyRequest, reply: FastifyReply, userId: string, rule: RouteRule): Promise<void> {
    if (!await options.isEnrolled(userId)) {
      send(request, reply, 403, 'second_factor_not_enrolled', `${prefix}/settings`, `${prefix}/settings`)
      return
    }
    await options.askForStepUp(request, reply, rule.stepUpReturnTo)
  }

  // Callback style, so the signed-in path costs no promise. A refusal sends the reply and does
  // not call `done`: the chain stops there and the route's handler never runs.
  function twoFactorGate (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const rule = ruleFor(request)
    if (rule.exempt) return done()
    const state = readState(request, clock())
    if (state === null) {
      if (rule.signedIn || (options.requireSignIn && request.routeOptions.url !== loginPath)) return toLogin(request, reply)
      return done() // anonymous: the host's own authentication decides
    }
    if (state.state === 'pending') return send(request, reply, 401, 'second_factor_required', `${prefix}/challenge`, `${prefix}/challenge`)
    if (state.state === 'pending-setup') return send(request, reply, 401, 'second_factor_required', `${prefix}/setup`, `${prefix}/setup`)
    const now = clock()
    if (rule.freshWithinMs !== null && !isFresh(state, now, rule.freshWithinMs)) {
      stepUp(request, reply, state.userId, rule).catch((error: unknown) => { void reply.send(error) })
      return
    }
    noteSeen(request, now)
    done()
  }

  return {
    hook: twoFactorGate,
    onRoute,
    /** The `freshWithin` of the GET route at exactly this path. */
    freshWithinOf: (path: string) => freshWithinByPath.get(path)
  }
}
