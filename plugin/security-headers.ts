// Security headers: helmet's headers for the plugin's CSP, worked out once at startup.
//
// @fastify/helmet builds a new helmet middleware on every request (options checked again, the
// CSP serialised again, two onRequest hooks). The headers depend only on the configuration, and
// they go on every request of the host app, so helmet runs once here and one hook copies the
// result. Measured in bench/ on a signed-in request: the plugin's own CPU cost went from about
// 90 µs to about 16 µs a request (bench/README.md).
import { createRequire } from 'node:module'
import type { onRequestHookHandler } from 'fastify'

interface HeaderSink {
  setHeader (name: string, value: unknown): void
  removeHeader (name: string): void
}
type HelmetMiddleware = (request: unknown, response: HeaderSink, next: (error?: unknown) => void) => void

// helmet is @fastify/helmet's own dependency: resolving it from there keeps both in step.
const requireFromFastifyHelmet = createRequire(createRequire(import.meta.url).resolve('@fastify/helmet'))
const helmet = requireFromFastifyHelmet('helmet') as (options: object) => HelmetMiddleware

/** The headers helmet sets for these options (helmet's own option format). */
export function securityHeaders (options: object): Record<string, string> {
  const headers: Record<string, string> = {}
  helmet(options)({}, {
    setHeader: (name, value) => { headers[name] = String(value) },
    removeHeader: (name) => { delete headers[name] }
  }, (error) => { if (error !== undefined && error !== null) throw error })
  if (headers['Content-Security-Policy'] === undefined) throw new Error('helmet set no Content-Security-Policy')
  return headers
}

/** The plugin's helmet options: a CSP with no inline script, HSTS only over HTTPS. */
export function helmetOptions (secure: boolean): object {
  return {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        // Over plain HTTP (local development) upgrading would break every form post.
        upgradeInsecureRequests: secure ? [] : null
      }
    },
    hsts: secure
  }
}

/** Sets the headers on the raw response, as @fastify/helmet did: a route's own reply.header() still wins. */
export function securityHeadersHook (secure: boolean): onRequestHookHandler {
  const headers = Object.entries(securityHeaders(helmetOptions(secure)))
  return function setSecurityHeaders (_request, reply, done) {
    for (const [name, value] of headers) reply.raw.setHeader(name, value)
    done()
  }
}
