// The one place an error becomes an answer: the catalogue's code and status, its message in the
// request's language, as JSON, as the form again (when the route gave a view) or as a message
// page. Failures of our own (5xx) are logged once, by name and code: a driver's message may quote
// SQL parameters, so it is never logged or shown.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { toTwoFactorError, type TwoFactorError } from '../errors.ts'
import type { Translate } from './messages.ts'
import { wantsJson, type Renderer } from './renderer.ts'

export function errorAnswerer (renderer: Renderer, t: (request: FastifyRequest) => Translate) {
  return async function answerError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const failure = toTwoFactorError(error)
    logFailure(request, error, failure)
    return await answer(renderer, t(request), request, reply, failure)
  }
}

export async function answer (renderer: Renderer, t: Translate, request: FastifyRequest, reply: FastifyReply, failure: TwoFactorError): Promise<FastifyReply> {
  const { options } = failure
  const message = options.text ?? t(failure.messageKey, options.params)
  for (const [name, value] of Object.entries(options.headers ?? {})) reply.header(name, value)
  const json = { error: failure.error, message, ...(options.next !== undefined ? { next: options.next } : {}), ...options.json }
  if (wantsJson(request)) return renderer.sendJson(reply, json, failure.statusCode)
  if (options.view !== undefined) {
    const { view } = options
    return await renderer.send(request, reply, { page: view.page, partial: view.partial, title: view.title, titleParams: view.titleParams, status: failure.statusCode, json, data: view.data(message) })
  }
  return await renderer.message(request, reply, {
    title: `title.error.${failure.error}`,
    status: failure.statusCode,
    error: failure.error,
    message: failure.messageKey,
    params: options.params,
    text: options.text,
    link: options.link,
    next: options.next
  })
}

function logFailure (request: FastifyRequest, error: unknown, failure: TwoFactorError): void {
  const e = error as { name?: string, code?: unknown, reason?: unknown, dbCode?: unknown, statusCode?: unknown }
  if (failure.statusCode < 500) {
    if (typeof e.statusCode === 'number' && e.statusCode < 500 && failure !== error) request.log.info({ errorCode: e.code }, 'two-factor request rejected')
    return
  }
  if (e.name === 'KeyringError') {
    // A stored secret that won't open: a damaged row, or a key removed from the ring.
    request.log.error({ errorName: e.name, reason: e.reason }, 'two-factor request failed: a stored secret could not be decrypted with TWO_FACTOR_KEYS')
  } else {
    request.log.error({ errorName: e.name, errorCode: e.code, dbCode: e.dbCode }, 'two-factor request failed')
  }
}
