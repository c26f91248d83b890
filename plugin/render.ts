// One place decides how an answer is shaped: JSON for API clients, an htmx partial for htmx
// swaps, a full page otherwise. It always sets `Vary` so caches keep the three apart.
import { existsSync } from 'node:fs'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Eta } from 'eta'
import type { FastifyReply, FastifyRequest } from 'fastify'

export const PLUGIN_TEMPLATES_DIR = fileURLToPath(new URL('../templates', import.meta.url))

/** True when the client asked for JSON (`Accept: application/json` before any HTML). */
export function wantsJson (request: FastifyRequest): boolean {
  const accept = request.headers.accept
  if (typeof accept !== 'string') return false
  const json = accept.indexOf('application/json')
  if (json === -1) return false
  const html = accept.indexOf('text/html')
  return html === -1 || json < html
}

/** True for an htmx request that will swap part of the page (htmx 4: not `HX-Request-Type: full`). */
export function wantsPartial (request: FastifyRequest): boolean {
  return request.headers['hx-request'] === 'true' && request.headers['hx-request-type'] !== 'full'
}

export function isHtmx (request: FastifyRequest): boolean {
  return request.headers['hx-request'] === 'true'
}

export interface RenderSpec {
  /** Page template, e.g. `pages/challenge`; it includes its partial. */
  page: string
  /** Partial template answered to htmx swaps; defaults to the page. */
  partial?: string
  title: string
  data?: Record<string, unknown>
  /** What JSON clients get. */
  json: unknown
  status?: number
  /** For pages that show a secret or recovery codes. */
  noStore?: boolean
}

export interface MessageInput {
  title: string
  status: number
  /** The catalogue's short name, e.g. `second_factor_required`. */
  error: string
  message: string
  link?: { href: string, text: string }
  /** Where a JSON client should go next. */
  next?: string
}

export interface PageContext {
  prefix: string
  csrfToken: string
  assets: { htmx: string, script: string, styles: string }
}

/**
 * Eta with template overrides: a template in the host's folder replaces the plugin's of the same
 * name. Templates are compiled once and cached.
 */
export function createEta (overrideDir: string | undefined): Eta {
  const eta = new Eta({ views: PLUGIN_TEMPLATES_DIR, cache: true, autoEscape: true, autoTrim: false })
  const resolved = new Map<string, string>()
  eta.resolvePath = function resolvePath (template: string): string {
    const cached = resolved.get(template)
    if (cached !== undefined) return cached
    const name = normalize(template.replace(/^[/\\]+/, '') + (extname(template) === '' ? '.eta' : ''))
    if (name.startsWith('..')) throw new Error(`Template "${template}" is outside the templates folder`)
    const candidates = overrideDir === undefined ? [PLUGIN_TEMPLATES_DIR] : [overrideDir, PLUGIN_TEMPLATES_DIR]
    for (const dir of candidates) {
      const path = join(dir, name)
      if (existsSync(path)) {
        resolved.set(template, path)
        return path
      }
    }
    throw new Error(`Template "${template}" not found`)
  }
  return eta
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

export class Renderer {
  constructor (private readonly eta: Eta, private readonly context: (request: FastifyRequest, reply: FastifyReply) => PageContext) {}

  send (request: FastifyRequest, reply: FastifyReply, spec: RenderSpec): FastifyReply {
    reply.header('Vary', 'Accept, HX-Request, HX-Request-Type')
    if (spec.noStore === true) reply.header('Cache-Control', 'no-store')
    reply.code(spec.status ?? 200)
    const context = this.context(request, reply)
    if (wantsJson(request)) {
      // SPEC §16: every JSON answer to a GET carries the session's CSRF token.
      const json = request.method === 'GET' && isPlainObject(spec.json) ? { ...spec.json, csrfToken: context.csrfToken } : spec.json
      return reply.type('application/json; charset=utf-8').send(json)
    }
    const data = { ...context, title: spec.title, ...spec.data }
    const template = wantsPartial(request) ? (spec.partial ?? spec.page) : spec.page
    return reply.type('text/html; charset=utf-8').send(this.eta.render(template, data))
  }

  /**
   * A short message in place of a page or step: why something can't go on, and where to go.
   * JSON clients get `{ error, message }` (plus `next` when there is somewhere to go).
   */
  message (request: FastifyRequest, reply: FastifyReply, input: MessageInput): FastifyReply {
    return this.send(request, reply, {
      page: 'pages/message',
      partial: 'partials/message',
      title: input.title,
      status: input.status,
      json: { error: input.error, message: input.message, ...(input.next !== undefined ? { next: input.next } : {}) },
      data: { message: input.message, error: input.status >= 400, link: input.link }
    })
  }

  /** Redirect in the shape each client follows: 303, `HX-Redirect`, or JSON. */
  redirect (request: FastifyRequest, reply: FastifyReply, location: string, json: Record<string, unknown>): FastifyReply {
    reply.header('Vary', 'Accept, HX-Request, HX-Request-Type')
    if (wantsJson(request)) return reply.code(200).send({ ...json, redirect: location })
    if (isHtmx(request)) return reply.code(200).header('HX-Redirect', location).send('')
    return reply.redirect(location, 303)
  }

  renderString (template: string, data: Record<string, unknown>): string {
    return this.eta.render(template, data)
  }
}
