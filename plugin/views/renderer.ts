// One place decides how an answer is shaped: JSON for API clients, an htmx partial for htmx
// swaps, a full page otherwise. Every answer depends on the session, so none may be cached
// (`no-store`), and `Vary` keeps the three shapes apart. Every JSON answer carries the CSRF
// token of the session as it is after the request, so a client can post its next step at once.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { safeLocation } from '../core/location.ts'
import type { MessageKey, MessageParams, Translate } from './messages.ts'

export const VARY = 'Accept, Accept-Language, HX-Request, HX-Request-Type'

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

export interface Answer {
  /** Page template, e.g. `pages/challenge`; it includes its partial. */
  page: string
  /** Partial template answered to htmx swaps; defaults to the page. */
  partial?: string
  title: MessageKey
  titleParams?: MessageParams
  /** What JSON clients get (the CSRF token is added). */
  json: Record<string, unknown>
  data?: Record<string, unknown>
  status?: number
}

export interface MessageAnswer {
  title: MessageKey
  status: number
  /** The catalogue's code, for JSON clients (`error`), when this is a refusal. */
  error?: string
  message: MessageKey
  params?: MessageParams
  /** The message already in words (instead of the key). */
  text?: string
  link?: { href: string, text: MessageKey }
  /** Where a JSON client should go next. */
  next?: string
  json?: Record<string, unknown>
}

export interface PageContext {
  prefix: string
  assets: { htmx: string, script: string, styles: string }
  /** The language of the page, and its messages. */
  lang: string
  t: Translate
}

export type RenderTemplate = (reply: FastifyReply, template: string, data: Record<string, unknown>) => Promise<string>

export class Renderer {
  constructor (
    private readonly render: RenderTemplate,
    private readonly context: (request: FastifyRequest) => PageContext
  ) {}

  async send (request: FastifyRequest, reply: FastifyReply, answer: Answer): Promise<FastifyReply> {
    reply.header('Vary', VARY).header('Cache-Control', 'no-store').code(answer.status ?? 200)
    if (wantsJson(request)) return this.sendJson(reply, answer.json, answer.status)
    const context = this.context(request)
    const data = { ...context, csrfToken: reply.generateCsrf(), title: context.t(answer.title, answer.titleParams), ...answer.data }
    const template = wantsPartial(request) ? (answer.partial ?? answer.page) : answer.page
    const html = await this.render(reply, template, data)
    return reply.type('text/html; charset=utf-8').send(html)
  }

  /** A partial for the host's own pages (the grace banner), in the request's language. */
  async fragment (request: FastifyRequest, reply: FastifyReply, template: string, data: Record<string, unknown>): Promise<string> {
    return await this.render(reply, template, { ...this.context(request), ...data })
  }

  /** JSON with the session's CSRF token, except after a failure that may be the session store's own. */
  sendJson (reply: FastifyReply, json: Record<string, unknown>, status = 200): FastifyReply {
    const body = status === 503 ? json : { ...json, csrfToken: reply.generateCsrf() }
    return reply.header('Vary', VARY).header('Cache-Control', 'no-store').code(status).type('application/json; charset=utf-8').send(body)
  }

  /** A short message in place of a page or step: why something can't go on, and where to go. */
  async message (request: FastifyRequest, reply: FastifyReply, input: MessageAnswer): Promise<FastifyReply> {
    const t = this.context(request).t
    const message = input.text ?? t(input.message, input.params)
    const next = input.next === undefined ? undefined : safeLocation(input.next)
    return await this.send(request, reply, {
      page: 'pages/message',
      partial: 'partials/message',
      title: input.title,
      status: input.status,
      json: {
        ...(input.error !== undefined ? { error: input.error } : {}),
        message,
        ...(next !== undefined ? { next } : {}),
        ...input.json
      },
      data: { message, error: input.status >= 400, link: input.link === undefined ? undefined : { href: safeLocation(input.link.href), text: t(input.link.text) } }
    })
  }

  /**
   * Sends the client on, in the shape each one follows: 303 for a page, `HX-Redirect` for htmx
   * (fetch would follow a 303 silently), JSON with `next`. The location passes `safeLocation`.
   */
  redirect (request: FastifyRequest, reply: FastifyReply, location: string, json: Record<string, unknown> = {}): FastifyReply {
    const next = safeLocation(location)
    reply.header('Vary', VARY).header('Cache-Control', 'no-store')
    if (wantsJson(request)) return this.sendJson(reply, { ...json, next })
    if (isHtmx(request)) return reply.code(200).header('HX-Redirect', next).send('')
    return reply.redirect(next, 303)
  }
}
