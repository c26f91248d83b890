// The one catalogue of errors the plugin answers with. Each has a stable code, an HTTP status
// and a message safe to show: nothing secret is ever interpolated into one.
import createError from '@fastify/error'

export const SecondFactorRequired = createError('FST_TWO_FACTOR_REQUIRED', 'Enter your second factor to continue.', 401)
export const Forbidden = createError('FST_TWO_FACTOR_FORBIDDEN', 'You are not allowed to do this.', 403)
export const CsrfInvalid = createError('FST_TWO_FACTOR_CSRF', 'The form has expired or came from another site. Reload the page and try again.', 403)
export const NotFound = createError('FST_TWO_FACTOR_NOT_FOUND', 'Not found.', 404)
export const NotAllowedByPolicy = createError('FST_TWO_FACTOR_NOT_ALLOWED_BY_POLICY', '%s', 409)
export const InvalidCode = createError('FST_TWO_FACTOR_INVALID_CODE', '%s', 422)
export const InvalidInput = createError('FST_TWO_FACTOR_INVALID_INPUT', '%s', 422)
export const WrongPassword = createError('FST_TWO_FACTOR_WRONG_PASSWORD', 'That password is not right.', 422)
export const Locked = createError('FST_TWO_FACTOR_LOCKED', 'Too many failed attempts. Try again later.', 423)
export const RateLimited = createError('FST_TWO_FACTOR_RATE_LIMITED', 'Too many requests. Wait a moment and try again.', 429)
export const Unavailable = createError('FST_TWO_FACTOR_UNAVAILABLE', 'Sign-in is unavailable right now. Try again shortly.', 503)

/** The short names JSON clients see in `{ error }`, per SPEC §16. */
export const ERROR_NAMES: Record<string, string> = {
  FST_TWO_FACTOR_REQUIRED: 'second_factor_required',
  FST_TWO_FACTOR_FORBIDDEN: 'forbidden',
  FST_TWO_FACTOR_CSRF: 'csrf',
  FST_CSRF_INVALID_TOKEN: 'csrf',
  FST_CSRF_MISSING_SECRET: 'csrf',
  FST_TWO_FACTOR_NOT_FOUND: 'not_found',
  FST_TWO_FACTOR_NOT_ALLOWED_BY_POLICY: 'not_allowed_by_policy',
  FST_TWO_FACTOR_INVALID_CODE: 'invalid_code',
  FST_TWO_FACTOR_INVALID_INPUT: 'invalid_input',
  FST_TWO_FACTOR_WRONG_PASSWORD: 'wrong_password',
  FST_TWO_FACTOR_LOCKED: 'locked',
  FST_TWO_FACTOR_RATE_LIMITED: 'rate_limited',
  FST_TWO_FACTOR_UNAVAILABLE: 'unavailable'
}

export interface PublicError {
  statusCode: number
  error: string
  message: string
}

/**
 * Turns anything thrown into what the client may see. Our own errors keep their message;
 * Fastify's 4xx (bad JSON, body too large, unsupported media type) become `invalid_input`;
 * database and unexpected failures become 503 so sign-in fails closed without detail.
 */
export function toPublicError (error: unknown): PublicError {
  const e = error as { code?: string, statusCode?: number, message?: string }
  const name = e.code !== undefined ? ERROR_NAMES[e.code] : undefined
  if (name === 'csrf') return { statusCode: 403, error: 'csrf', message: new CsrfInvalid().message }
  if (name !== undefined && e.statusCode !== undefined) {
    return { statusCode: e.statusCode, error: name, message: e.message ?? '' }
  }
  if (e.statusCode === 429) {
    return { statusCode: 429, error: 'rate_limited', message: new RateLimited().message }
  }
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 404) return { statusCode: 404, error: 'not_found', message: 'Not found.' }
    return { statusCode: e.statusCode, error: 'invalid_input', message: 'The request could not be read.' }
  }
  return { statusCode: 503, error: 'unavailable', message: new Unavailable().message }
}
