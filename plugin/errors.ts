// The one catalogue of errors the plugin answers with: a stable code (what JSON clients see in
// `{ error }`), its HTTP status and the key of its default message. Routes and services throw
// `TwoFactorError`; one handler renders it as a page, an htmx fragment or JSON. Nothing secret
// is ever interpolated into a message.
import { DEFAULT_LOCALE, format, loadCatalogue, type MessageKey, type MessageParams } from './views/messages.ts'

export const ERROR_CODES = {
  second_factor_required: 401,
  sign_in_required: 401,
  step_up_required: 401,
  second_factor_not_enrolled: 403,
  forbidden: 403,
  csrf: 403,
  not_found: 404,
  not_allowed_by_policy: 409,
  invalid_code: 422,
  invalid_input: 422,
  wrong_password: 422,
  locked: 423,
  rate_limited: 429,
  unavailable: 503
} as const

export type ErrorCode = keyof typeof ERROR_CODES

/** A page to show instead of the generic message page: the form again, with the error in it. */
export interface ErrorView {
  page: string
  partial?: string
  title: MessageKey
  titleParams?: MessageParams
  /** The template data, given the error's message in the request's language. */
  data: (message: string) => Record<string, unknown>
}

export interface TwoFactorErrorOptions {
  /** The message; the code's own by default. */
  message?: MessageKey
  params?: MessageParams
  /** The message already in words (a route that composes it from several). */
  text?: string
  /** Where a client should go next (a same-origin path). */
  next?: string
  /** More fields for the JSON answer (`attemptsLeft`, `retryAfter`). */
  json?: Record<string, unknown>
  headers?: Record<string, string>
  view?: ErrorView
  /** A link on the message page. */
  link?: { href: string, text: MessageKey }
  /** Another 4xx than the code's own, where HTTP has a more exact one (413, 415). */
  status?: number
}

/** English, for an error that reaches a host's own error handler (the plugin's pages translate). */
const english = loadCatalogue(DEFAULT_LOCALE)

export class TwoFactorError extends Error {
  /** The catalogue's code, as JSON clients see it in `{ error }`. */
  readonly error: ErrorCode
  /** Fastify's convention for error codes, for a host's logs and error handler. */
  readonly code: string
  readonly statusCode: number
  readonly options: TwoFactorErrorOptions

  constructor (error: ErrorCode, options: TwoFactorErrorOptions = {}) {
    const key = options.message ?? `error.${error}`
    super(options.text ?? format(english, key, options.params))
    this.name = 'TwoFactorError'
    this.error = error
    this.code = `FST_TWO_FACTOR_${error.toUpperCase()}`
    this.statusCode = options.status ?? ERROR_CODES[error]
    this.options = options
  }

  get messageKey (): MessageKey {
    return this.options.message ?? `error.${this.error}`
  }
}

/** Shorthand: `throw fail('invalid_input', { message: 'input.page' })`. */
export function fail (code: ErrorCode, options?: TwoFactorErrorOptions): TwoFactorError {
  return new TwoFactorError(code, options)
}

/** The database (or the session store on it) did not answer: fail closed. */
export class Unavailable extends TwoFactorError {
  constructor () {
    super('unavailable')
  }
}

/**
 * Anything thrown, as the catalogue's error the client may see. Fastify's own 4xx (bad JSON,
 * body too large, unsupported media type, schema validation) become `invalid_input`; CSRF
 * refusals `csrf`; the rate limit `rate_limited`; everything else 503, so sign-in fails closed
 * and nothing of the cause (a driver's message may quote SQL parameters) reaches the client.
 */
export function toTwoFactorError (error: unknown): TwoFactorError {
  if (error instanceof TwoFactorError) return error
  const e = error as { code?: unknown, statusCode?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : ''
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 0
  if (code.startsWith('FST_CSRF_')) return fail('csrf')
  if (status === 429) return fail('rate_limited')
  if (status === 404) return fail('not_found')
  // Unreadable input keeps its exact status (400 bad JSON, 413 too large, 415 media type);
  // a body that fails a route's schema is a 422 like every other refused field.
  if (code === 'FST_ERR_VALIDATION') return fail('invalid_input', { message: 'error.invalid_field' })
  if (status >= 400 && status < 500) return fail('invalid_input', { message: 'error.unreadable', status })
  return new Unavailable()
}
