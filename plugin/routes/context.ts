// What every route module is given, and the few helpers they share.
import type { FastifyReply, FastifyRequest, onRequestHookHandler, preHandlerHookHandler, RouteShorthandOptions } from 'fastify'
import { CsrfInvalid, InvalidInput } from '../errors.ts'
import type { ResolvedOptions } from '../options.ts'
import type { Renderer } from '../render.ts'
import { readState, type TwoFactorSessionData } from '../session-state.ts'
import type { TwoFactorService } from '../service.ts'

export interface RouteContext {
  options: ResolvedOptions
  service: TwoFactorService
  renderer: Renderer
  /** Route options for state-changing routes: CSRF check and the per-IP rate limit. */
  post: RouteShorthandOptions
  /** Route options for the allow-listed routes (challenge, setup, assets, logout). */
  open: RouteShorthandOptions
}

/** The parsed body as a record; anything else (a string, an array, null) reads as empty. */
export function bodyOf (request: FastifyRequest): Record<string, unknown> {
  const body = request.body
  return body !== null && typeof body === 'object' && !Array.isArray(body) ? body as Record<string, unknown> : {}
}

/** A single string field; arrays and objects are not strings (they become `undefined`). */
export function stringField (body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name]
  return typeof value === 'string' ? value : undefined
}

/**
 * Refuses cross-site requests before the token check: browsers say where a request came from
 * in `Sec-Fetch-Site`, which a forged form can't change.
 */
export function crossSiteGuard (): onRequestHookHandler {
  return function refuseCrossSite (request, _reply, done) {
    if (request.headers['sec-fetch-site'] === 'cross-site') {
      done(new CsrfInvalid())
      return
    }
    done()
  }
}

/**
 * Refuses text holding U+0000 anywhere in the path parameters, the query or the body. Postgres
 * text can't store it (PGlite can), so one that reached a query would be a database error, a
 * 503 on one database and not on the other; no field of the plugin's has a use for it.
 */
export const refuseNulCharacters: preHandlerHookHandler = function refuseNulCharacters (request, _reply, done) {
  if (holdsNul(request.params) || holdsNul(request.query) || holdsNul(request.body)) {
    done(new InvalidInput('Text can’t contain NUL characters.'))
    return
  }
  done()
}

function holdsNul (value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000')
  if (value === null || typeof value !== 'object' || depth > 8) return false
  for (const [key, item] of Object.entries(value)) {
    if (key.includes('\u0000') || holdsNul(item, depth + 1)) return true
  }
  return false
}

export function csrfGuard (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
  request.server.csrfProtection(request, reply, done)
}
export const csrfPreHandler = csrfGuard as preHandlerHookHandler

export function stateOf (request: FastifyRequest, options: ResolvedOptions): TwoFactorSessionData | null {
  return readState(request, options.clock())
}
