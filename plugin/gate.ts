// The gate (SPEC §11): a root preHandler that keeps half-signed-in sessions away from every
// route of the host. It reads only the session, never the database, so a signed-in request
// pays nothing but a property lookup.
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { readState } from './session-state.ts'
import { isHtmx, wantsJson } from './render.ts'

/** Per-route settings, read from `config.twoFactor`. */
export type RouteTwoFactorConfig = false | { freshWithin?: string }

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: not gated (public pages, API-key routes); `{ freshWithin: '10m' }`: step-up. */
    twoFactor?: RouteTwoFactorConfig
  }
}

export interface GateOptions {
  prefix: string
  clock: () => number
}

const DURATION = /^(\d+)\s*(s|m|h)$/
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const

/** Parses `'10m'`-style durations; throws at the first request of a misconfigured route. */
export function parseDuration (value: string): number {
  const match = DURATION.exec(value.trim())
  if (match === null) throw new Error(`twoFactor.freshWithin "${value}" must look like "30s", "10m" or "1h"`)
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
}

export function createGate ({ prefix, clock }: GateOptions) {
  const durations = new Map<string, number>()
  const freshWithinMs = (value: string): number => {
    let ms = durations.get(value)
    if (ms === undefined) durations.set(value, ms = parseDuration(value))
    return ms
  }

  function refuse (request: FastifyRequest, reply: FastifyReply, next: string): void {
    reply.header('Vary', 'Accept, HX-Request, HX-Request-Type')
    reply.header('Cache-Control', 'no-store')
    if (wantsJson(request)) void reply.code(401).send({ error: 'second_factor_required', message: 'Enter your second factor to continue.', next })
    else if (isHtmx(request)) void reply.code(200).header('HX-Redirect', next).send('')
    else void reply.redirect(next, 303)
  }

  // Callback style, so the signed-in path costs no promise. A refusal sends the reply and does
  // not call `done`: the chain stops there and the route's handler never runs (an async hook
  // that resolved would let it run while the refusal is still being sent).
  return function twoFactorGate (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const config = request.routeOptions.config?.twoFactor
    if (config === false) return done()
    const state = readState(request, clock())
    if (state === null) return done() // anonymous: the host's own authentication decides
    if (state.state === 'pending') return refuse(request, reply, `${prefix}/challenge`)
    if (state.state === 'pending-setup') return refuse(request, reply, `${prefix}/setup`)

    // Signed in. Step-up routes want a code entered recently.
    if (config?.freshWithin !== undefined) {
      const fresh = state.verifiedAt !== undefined && clock() - state.verifiedAt <= freshWithinMs(config.freshWithin)
      if (!fresh) {
        state.stepUpReturnTo = request.method === 'GET' ? request.url : undefined
        request.session.twoFactor = state
        return refuse(request, reply, `${prefix}/challenge`)
      }
    }
    done()
  }
}
