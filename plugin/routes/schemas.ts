// The JSON schemas the routes share: their input fields and the shape of their answers. The
// HTTP API document (docs/http-api.json, OpenAPI) is generated from these.
//
// A field that a check counts as a failure when it is malformed (a code, a recovery code) is
// declared as "anything": refusing it in the schema would skip the count, and a guesser could
// send malformed input for free.
import { Type, type TProperties, type TSchema } from 'typebox'

export const csrfField = {
  _csrf: Type.Optional(Type.String({ description: 'The CSRF token, for forms. JSON clients send it in the `x-csrf-token` header instead.' }))
}

export const codeField = Type.Unknown({ description: 'The code from the authenticator app: digits, spaces allowed. Anything else is refused as a counted failure.' })
export const recoveryCodeField = Type.Unknown({ description: 'A recovery code (XXXX-XXXX-XXXX-XXXX; case, spaces and dashes ignored). Malformed ones are refused like unknown ones.' })
export const passwordField = Type.Unknown({ description: 'The account password (the host’s `verifyPassword` checks it).' })
export const currentCodeField = Type.Unknown({ description: 'For hosts without passwords: a code of the current authenticator, or an unused recovery code.' })
export const returnToField = Type.String({ maxLength: 2048, description: 'A path on this site to go back to (anything else falls back to `/`).' })

export const csrfToken = Type.String({ description: 'The CSRF token for the session as it is after this request.' })
export const next = Type.String({ description: 'Where to go next: a path on this site.' })
export const signInState = Type.Enum(['anonymous', 'pending', 'pending-setup', 'signed-in'], { description: 'Where the session stands in the sign-in.' })

/** A JSON answer that sends the client on (the JSON form of a redirect). */
export const movedOn = Type.Object({ state: Type.Optional(signInState), next, csrfToken }, { additionalProperties: true })

/** A route's own answer, or the JSON form of a redirect it may answer instead. */
export function orMovedOn (schema: TSchema) {
  return Type.Union([schema, movedOn])
}

/** A body: the given fields, anything else allowed (and ignored). */
export function body<T extends TProperties> (fields: T) {
  return Type.Object({ ...csrfField, ...fields })
}

export const ErrorAnswer = Type.Object({
  error: Type.String({ description: 'The error code: second_factor_required, sign_in_required, step_up_required, second_factor_not_enrolled, forbidden, csrf, not_found, not_allowed_by_policy, invalid_code, invalid_input, wrong_password, locked, rate_limited or unavailable.' }),
  message: Type.String({ description: 'What went wrong, in words for the user.' }),
  next: Type.Optional(next),
  csrfToken: Type.Optional(csrfToken)
}, { additionalProperties: true })

const html = { 'text/html': { schema: Type.String({ description: 'The page, or the htmx fragment (`HX-Request: true`).' }) } }

/**
 * The `response` of a route schema: each success answer as JSON or HTML, and the error answer
 * for every error status.
 */
export function answers (success: Record<number, { description: string, schema?: TSchema }>) {
  const response: Record<string, unknown> = {}
  for (const [status, { description, schema }] of Object.entries(success)) {
    response[status] = schema === undefined
      ? { description }
      : { description, content: { 'application/json': { schema }, ...html } }
  }
  response['4xx'] = { description: 'Refused: see `error`.', content: { 'application/json': { schema: ErrorAnswer }, ...html } }
  response['5xx'] = { description: 'The database is not answering (`unavailable`): nothing was changed, nobody was signed in.', content: { 'application/json': { schema: ErrorAnswer }, ...html } }
  return response
}

export const redirectAnswer = { description: 'A page request is sent on with 303 (htmx: 200 with `HX-Redirect`).' }
