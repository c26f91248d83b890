// A browser-like client over `app.inject`: keeps cookies, reads the CSRF token from each page
// (or JSON answer), and sends it with every POST, as the pages and htmx do.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'

export interface RequestOptions {
  headers?: Record<string, string>
  /** Send a JSON body (and accept JSON) instead of a form. */
  json?: boolean
  /** Behave as htmx does: `HX-Request: true`. */
  htmx?: boolean
  /** Leave the CSRF token out (to test the refusal). */
  noCsrf?: boolean
}

export class Client {
  readonly cookies = new Map<string, string>()
  csrfToken: string | undefined

  constructor (private readonly app: FastifyInstance) {}

  private cookieHeader (): string | undefined {
    if (this.cookies.size === 0) return undefined
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  private remember (response: LightMyRequestResponse): void {
    for (const cookie of response.cookies as Array<{ name: string, value: string, expires?: Date, maxAge?: number }>) {
      const expired = (cookie.expires !== undefined && cookie.expires.getTime() <= Date.now()) || cookie.maxAge === 0 || cookie.value === ''
      if (expired) this.cookies.delete(cookie.name)
      else this.cookies.set(cookie.name, cookie.value)
    }
    const type = String(response.headers['content-type'] ?? '')
    if (type.includes('text/html')) {
      const match = /<meta name="csrf-token" content="([^"]+)"/.exec(response.body) ?? /name="_csrf" value="([^"]+)"/.exec(response.body)
      if (match !== null) this.csrfToken = match[1]
    } else if (type.includes('application/json')) {
      try {
        const body = JSON.parse(response.body) as { csrfToken?: unknown }
        if (typeof body.csrfToken === 'string') this.csrfToken = body.csrfToken
      } catch {}
    }
  }

  private headers (options: RequestOptions): Record<string, string> {
    const headers: Record<string, string> = { ...options.headers }
    const cookie = this.cookieHeader()
    if (cookie !== undefined) headers.cookie = cookie
    if (options.json === true) headers.accept = 'application/json'
    if (options.htmx === true) headers['hx-request'] = 'true'
    return headers
  }

  async get (url: string, options: RequestOptions = {}): Promise<LightMyRequestResponse> {
    const response = await this.app.inject({ method: 'GET', url, headers: this.headers(options) })
    this.remember(response)
    return response
  }

  async post (url: string, body: Record<string, unknown> = {}, options: RequestOptions = {}): Promise<LightMyRequestResponse> {
    const headers = this.headers(options)
    let payload: string
    if (options.json === true) {
      headers['content-type'] = 'application/json'
      if (options.noCsrf !== true && this.csrfToken !== undefined) headers['x-csrf-token'] = this.csrfToken
      payload = JSON.stringify(body)
    } else {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      const form = new URLSearchParams()
      if (options.noCsrf !== true && this.csrfToken !== undefined) form.append('_csrf', this.csrfToken)
      for (const [key, value] of Object.entries(body)) {
        if (Array.isArray(value)) for (const v of value) form.append(key, String(v))
        else form.append(key, String(value))
      }
      payload = form.toString()
    }
    const response = await this.app.inject({ method: 'POST', url, headers, payload })
    this.remember(response)
    return response
  }

  /** The raw session cookie value (to check it changes at each step). */
  sessionCookie (): string | undefined {
    for (const [name, value] of this.cookies) if (name.endsWith('tf.sid')) return value
    return undefined
  }
}

/**
 * A JSON answer without its CSRF token, after checking it has one: every JSON answer carries
 * the token of the session as it is after the request (503s aside: the store may be what failed).
 */
export function answerOf (response: { body: string }): Record<string, unknown> {
  const { csrfToken, ...rest } = JSON.parse(response.body) as Record<string, unknown>
  if (typeof csrfToken !== 'string' || csrfToken === '') throw new Error(`a JSON answer without csrfToken: ${response.body.slice(0, 200)}`)
  return rest
}
