// How the demo host refuses and fails on its own routes (login, logout, password, admin):
// forged cross-site writes are refused before anything runs, and anything that breaks (above
// all the database) answers 503 and signs nobody in. The driver's message can quote SQL and its
// parameters, so it is neither sent nor logged.
import createError from '@fastify/error'
import type { FastifyError, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { page } from './views.ts'

// The code @fastify/csrf-protection uses for a bad token: the plugin's pages, which this hook
// also guards, answer it as their own CSRF refusal.
const CrossSite = createError('FST_CSRF_INVALID_TOKEN', 'Cross-site request refused', 403)

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Browsers say where a request came from in `Sec-Fetch-Site`, which a forged form can't
 * change: a write from another site is refused even if it carries a token.
 */
export const refuseCrossSiteWrites: onRequestHookHandler = (request, _reply, done) => {
  if (!SAFE_METHODS.has(request.method) && request.headers['sec-fetch-site'] === 'cross-site') {
    done(new CrossSite())
    return
  }
  done()
}

interface PublicError { status: number, error: string, message: string }

function publicErrorOf (error: FastifyError): PublicError {
  if (typeof error.code === 'string' && error.code.startsWith('FST_CSRF')) {
    return { status: 403, error: 'csrf', message: 'The form has expired or came from another site. Reload the page and try again.' }
  }
  const status = error.statusCode ?? 500
  if (status === 429) return { status, error: 'rate_limited', message: 'Too many requests. Wait a moment and try again.' }
  if (status >= 400 && status < 500) return { status, error: 'invalid_input', message: 'The request could not be read.' }
  return { status: 503, error: 'unavailable', message: 'Sign-in is unavailable right now. Try again shortly.' }
}

export function answerDemoError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const answer = publicErrorOf(error)
  if (answer.status >= 500) {
    request.log.error({ errorName: error.name, errorCode: error.code, dbCode: (error as { dbCode?: string }).dbCode }, 'demo request failed')
  }
  reply.code(answer.status)
  const accept = request.headers.accept
  if (typeof accept === 'string' && accept.includes('application/json') && !accept.startsWith('text/html')) {
    return reply.send({ error: answer.error, message: answer.message })
  }
  // No CSRF token on an error page: the session may be what failed.
  return reply.type('text/html').send(page({ title: 'Something went wrong', csrfToken: '', body: `<section class="tf-card"><h1>Something went wrong</h1><p role="alert">${answer.message}</p><p><a class="tf-button" href="/login">Sign in</a></p></section>` }))
}
