// The trusted-browser cookie: its own cookie (not the session's, which sign-out ends), HttpOnly,
// SameSite=Lax, and Secure with the __Host- prefix when the session cookie is. It lives exactly as
// long as the trust it holds.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ResolvedOptions } from '../options.ts'
import type { DeviceCookie } from '../services/trusted-devices.ts'

export function trustedCookieName (options: ResolvedOptions): string {
  return options.session.secure ? '__Host-tf.trust' : 'tf.trust'
}

export function readTrustedCookie (request: FastifyRequest, options: ResolvedOptions): string | undefined {
  return request.cookies?.[trustedCookieName(options)]
}

export function setTrustedCookie (reply: FastifyReply, options: ResolvedOptions, cookie: DeviceCookie): void {
  reply.setCookie(trustedCookieName(options), cookie.value, {
    path: '/', httpOnly: true, sameSite: 'lax', secure: options.session.secure, expires: cookie.expiresAt
  })
}

export function clearTrustedCookie (reply: FastifyReply, options: ResolvedOptions): void {
  reply.clearCookie(trustedCookieName(options), { path: '/', httpOnly: true, sameSite: 'lax', secure: options.session.secure })
}

/**
 * The cookie a request's sign-in decided on, set when its answer goes (the host's route sends
 * that answer, and `startLogin` has no reply to set it on); null clears it.
 */
export const trustedCookieToSend = new WeakMap<FastifyRequest, DeviceCookie | null>()

/** onSend: sets or clears what `trustedCookieToSend` holds for this request. */
export function sendTrustedCookie (options: ResolvedOptions, request: FastifyRequest, reply: FastifyReply): void {
  const cookie = trustedCookieToSend.get(request)
  if (cookie === undefined) return
  trustedCookieToSend.delete(request)
  if (cookie === null) clearTrustedCookie(reply, options)
  else setTrustedCookie(reply, options, cookie)
}
