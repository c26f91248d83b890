// What the pages depend on, registered unless the host has done it already, so the plugin can
// join an existing app without "decorator already present" errors.
import cookie from '@fastify/cookie'
import csrf from '@fastify/csrf-protection'
import formbody from '@fastify/formbody'
import rateLimit from '@fastify/rate-limit'
import session from '@fastify/session'
import type { FastifyInstance } from 'fastify'
import type { TwoFactorSessionStore } from './db/session-store.ts'
import type { ResolvedOptions } from './options.ts'
import { securityHeadersHook } from './security-headers.ts'

export async function registerWebPlumbing (fastify: FastifyInstance, options: ResolvedOptions, store: TwoFactorSessionStore): Promise<void> {
  if (!fastify.hasRequestDecorator('cookies')) await fastify.register(cookie)
  const { secure } = options.session
  await fastify.register(session, {
    secret: options.session.secret,
    cookieName: secure ? `__Host-${options.session.cookieName}` : options.session.cookieName,
    cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure, maxAge: options.session.maxAgeMs },
    saveUninitialized: false,
    // Saving only changed sessions keeps the gate free of database writes.
    rolling: false,
    store: store as never
  })
  if (!fastify.hasContentTypeParser('application/x-www-form-urlencoded')) await fastify.register(formbody)
  if (!fastify.hasDecorator('csrfProtection')) await fastify.register(csrf, { sessionPlugin: '@fastify/session' })
  // App-wide only when asked: the plugin's CSP allows no inline script, which would break a
  // host page that has one, and the host's routes are the host's to decide. A host that has
  // registered @fastify/helmet keeps its own.
  if (options.helmet === 'app' && !fastify.hasReplyDecorator('helmet')) {
    fastify.addHook('onRequest', securityHeadersHook(options.session.secure))
  }
  if (options.rateLimit !== false && !fastify.hasDecorator('rateLimit')) {
    await fastify.register(rateLimit, {
      global: false,
      ...(options.rateLimit.redis !== undefined ? { redis: options.rateLimit.redis as never } : {})
    })
  }
}
