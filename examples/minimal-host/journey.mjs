// The sign-in journey against a running minimal host, as a JSON client: plain node, global
// fetch, cookies kept by hand, TOTP codes computed here (RFC 6238). Exits non-zero, saying
// which step and what came back, on any unexpected answer.
//
//   BASE_URL=http://127.0.0.1:3000 node journey.mjs
import { createHmac } from 'node:crypto'

const BASE = (process.env.BASE_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, '')
const USER = process.env.EXAMPLE_USER ?? 'alice'
const PASSWORD = process.env.EXAMPLE_PASSWORD ?? 'correct horse battery staple, twice'

function fail (message) {
  console.error(`journey: FAILED: ${message}`)
  process.exit(1)
}
function check (condition, message) {
  if (!condition) fail(message)
}

// ---- a cookie jar and a JSON client ----------------------------------------------------------

const jar = new Map()
function keepCookies (response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair = '', ...attributes] = line.split(';')
    const at = pair.indexOf('=')
    const name = pair.slice(0, at).trim()
    const value = pair.slice(at + 1).trim()
    const expired = attributes.some((a) => {
      const [key = '', ...rest] = a.trim().split('=')
      const v = rest.join('=')
      return (key.toLowerCase() === 'max-age' && Number(v) <= 0) || (key.toLowerCase() === 'expires' && Date.parse(v) <= Date.now())
    })
    if (expired || value === '') jar.delete(name)
    else jar.set(name, value)
  }
}

let csrfToken = ''
async function call (method, path, { body, status = 200, accept = 'application/json' } = {}) {
  const headers = { accept }
  if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
  if (method !== 'GET') {
    headers['content-type'] = 'application/json'
    if (csrfToken !== '') headers['x-csrf-token'] = csrfToken
  }
  const what = `${method} ${path}`
  let response
  try {
    response = await fetch(BASE + path, { method, headers, body: method === 'GET' ? undefined : JSON.stringify(body ?? {}), redirect: 'manual' })
  } catch (error) {
    fail(`${what}: ${error.cause?.message ?? error.message}`)
  }
  keepCookies(response)
  const text = await response.text()
  let json
  try { json = JSON.parse(text) } catch {}
  if (typeof json?.csrfToken === 'string') csrfToken = json.csrfToken
  if (response.status !== status) fail(`${what}: expected ${status}, got ${response.status} ${text.slice(0, 400)}`)
  console.log(`ok  ${what} → ${response.status}${json?.state ? ` ${json.state}` : ''}${json?.error ? ` ${json.error}` : ''}${json?.next ? ` next=${json.next}` : ''}`)
  return { response, json: json ?? {}, text }
}

// ---- TOTP (RFC 6238 over RFC 4226), from the otpauth:// URI the wizard gives -------------------

function base32Decode (input) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  const out = []
  for (const c of input.toUpperCase().replace(/[\s=-]/g, '')) {
    const index = alphabet.indexOf(c)
    if (index < 0) fail(`the key holds a character that is not base32: ${c}`)
    value = (value << 5) | index
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Buffer.from(out)
}
function totp ({ key, algorithm, digits, period }, step) {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(step))
  const mac = createHmac(algorithm, key).update(counter).digest()
  const offset = mac[mac.length - 1] & 0x0f
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits).padStart(digits, '0')
}
const stepNow = (period) => Math.floor(Date.now() / 1000 / period)

// ---- the journey -----------------------------------------------------------------------------

// 1. Anonymous: the home page sends a browser to the login page.
const anonymous = await call('GET', '/', { status: 303, accept: 'text/html' })
const location = anonymous.response.headers.get('location') ?? ''
check(location.startsWith('/login'), `GET / (anonymous): expected a redirect to /login, got Location: ${location}`)
await call('GET', '/', { status: 401 }).then(({ json }) => check(json.error === 'sign_in_required', `GET / (anonymous, JSON): expected sign_in_required, got ${json.error}`))

// 2. The password: a wrong one is refused, the right one signs in (no 2FA yet) or asks for setup.
const loginPage = await call('GET', '/login')
check(loginPage.json.state === 'anonymous' && csrfToken !== '', `GET /login: expected { state: "anonymous", csrfToken }, got ${loginPage.text}`)
await call('POST', '/login', { body: { username: USER, password: `${PASSWORD}x` }, status: 401 })
const first = await call('POST', '/login', { body: { username: USER, password: PASSWORD } })
check(first.json.state === 'signed-in' || first.json.state === 'pending-setup', `POST /login: expected signed-in or pending-setup, got ${first.text}`)

// Step-up on an account without 2FA: refused, and told where to turn it on.
if (first.json.state === 'signed-in') {
  const { json } = await call('POST', '/transfer', { body: { amount: 10, to: 'bob' }, status: 403 })
  check(json.error === 'second_factor_not_enrolled', `POST /transfer before enrolment: expected second_factor_not_enrolled, got ${json.error}`)
}

// 3. Enrol: the wizard's key, a code from it, the recovery codes, finish.
const setup = await call('GET', '/2fa/setup')
check(typeof setup.json.manualKey === 'string' && typeof setup.json.otpauthUri === 'string', `GET /2fa/setup: expected manualKey and otpauthUri, got ${setup.text.slice(0, 300)}`)
const uri = new URL(setup.json.otpauthUri)
const secret = uri.searchParams.get('secret') ?? ''
check(base32Decode(secret).equals(base32Decode(setup.json.manualKey)), 'GET /2fa/setup: manualKey and the otpauth URI hold different secrets')
const params = {
  key: base32Decode(setup.json.manualKey),
  algorithm: (uri.searchParams.get('algorithm') ?? 'SHA1').toLowerCase(),
  digits: Number(uri.searchParams.get('digits') ?? 6),
  period: Number(uri.searchParams.get('period') ?? 30)
}
const confirmStep = stepNow(params.period)
const confirmCode = totp(params, confirmStep)
const confirmed = await call('POST', '/2fa/setup/confirm', { body: { code: confirmCode } })
check(Array.isArray(confirmed.json.recoveryCodes) && confirmed.json.recoveryCodes.length === 10, `POST /2fa/setup/confirm: expected 10 recoveryCodes, got ${confirmed.text.slice(0, 300)}`)
const finished = await call('POST', '/2fa/setup/finish')
check(finished.json.state === 'signed-in' && typeof finished.json.next === 'string', `POST /2fa/setup/finish: expected { state: "signed-in", next }, got ${finished.text}`)
// Enrolled from a signed-in session, the wizard ends at the settings page; a forced one at returnTo.
const settings = await call('GET', '/2fa/settings')
check(settings.json.enabled === true && settings.json.recoveryCodesLeft === 10, `GET /2fa/settings: expected { enabled: true, recoveryCodesLeft: 10 }, got ${settings.text}`)
const home = await call('GET', '/')
check(home.json.user?.username === USER, `GET /: expected the user ${USER}, got ${home.text}`)

// 4. Sign out: the home page is closed again.
const out = await call('POST', '/logout')
check(out.json.state === 'anonymous', `POST /logout: expected anonymous, got ${out.text}`)
await call('GET', '/', { status: 401 })

// 5. Password, then the code prompt; host routes are closed to a half-signed-in session.
await call('GET', '/login')
const second = await call('POST', '/login', { body: { username: USER, password: PASSWORD } })
check(second.json.state === 'pending' && second.json.next === '/2fa/challenge', `POST /login (enrolled): expected { state: "pending", next: "/2fa/challenge" }, got ${second.text}`)
const gated = await call('GET', '/', { status: 401 })
check(gated.json.error === 'second_factor_required', `GET / (pending): expected second_factor_required, got ${gated.json.error}`)
await call('POST', '/transfer', { body: { amount: 10, to: 'bob' }, status: 401 })

// A code works once: the one that confirmed enrolment is refused now.
const replay = await call('POST', '/2fa/challenge', { body: { code: confirmCode }, status: 422 })
check(replay.json.error === 'invalid_code', `POST /2fa/challenge (used code): expected invalid_code, got ${replay.json.error}`)
// The next step's code (inside the accepted window), so there is no waiting for the clock.
const signedIn = await call('POST', '/2fa/challenge', { body: { code: totp(params, confirmStep + 1) } })
check(signedIn.json.state === 'signed-in', `POST /2fa/challenge: expected signed-in, got ${signedIn.text}`)

// 6. Step-up: the code was just entered in this session, so the sensitive route answers.
const transfer = await call('POST', '/transfer', { body: { amount: 10, to: 'bob' } })
check(transfer.json.transferred === 10 && transfer.json.by === USER, `POST /transfer: expected the transfer, got ${transfer.text}`)

await call('POST', '/logout')
console.log('journey: passed')
