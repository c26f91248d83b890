// Security headers: helmet's headers with the plugin's CSP, worked out once at startup
// (plugin/security-headers.ts) rather than by @fastify/helmet on each request. By default on the
// plugin's pages only; with `helmet: 'app'` (as the demo app runs) on every response of the host
// too; HSTS and upgrade-insecure-requests only when the cookies are secure; none of it when the
// host says `helmet: false`.
import t from 'tap'
import { createHarness } from '../helpers/demo.ts'

const EXPECTED = {
  'x-frame-options': 'SAMEORIGIN',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin'
}

t.test('security headers', async (t) => {
  const h = await createHarness(t, { users: [] })

  for (const url of ['/login', '/2fa/challenge', '/2fa/settings', '/no-such-page']) {
    const response = await h.app.inject({ method: 'GET', url })
    const csp = String(response.headers['content-security-policy'])
    t.match(csp, /(^|;)default-src 'self'(;|$)/, `${url}: CSP default-src`)
    t.match(csp, /(^|;)script-src 'self'(;|$)/, `${url}: no inline script`)
    t.match(csp, /(^|;)frame-ancestors 'none'(;|$)/, `${url}: not framed`)
    t.match(csp, /(^|;)img-src 'self' data:(;|$)/, `${url}: the QR code's data: image`)
    t.notMatch(csp, /upgrade-insecure-requests/, `${url}: no upgrade over plain HTTP`)
    t.match(response.headers, EXPECTED, `${url}: helmet's other headers`)
    t.equal(response.headers['strict-transport-security'], undefined, `${url}: no HSTS without secure cookies`)
  }

  const secure = await createHarness(t, { database: h.database, app: { secureCookies: true } })
  const overHttps = await secure.app.inject({ method: 'GET', url: '/login' })
  t.match(String(overHttps.headers['content-security-policy']), /upgrade-insecure-requests/, 'secure: upgrade-insecure-requests')
  t.match(String(overHttps.headers['strict-transport-security']), /max-age=\d+/, 'secure: HSTS')

  const pagesOnly = await createHarness(t, { database: h.database, app: { twoFactor: { helmet: true } } })
  const hostPage = await pagesOnly.app.inject({ method: 'GET', url: '/login' })
  t.equal(hostPage.headers['content-security-policy'], undefined, 'helmet: true leaves the host\'s pages alone')
  for (const url of ['/2fa/challenge', '/2fa/settings', '/2fa/assets/two-factor.css']) {
    const page = await pagesOnly.app.inject({ method: 'GET', url })
    t.match(String(page.headers['content-security-policy']), /(^|;)script-src 'self'(;|$)/, `helmet: true: ${url} has the CSP`)
    t.match(page.headers, EXPECTED, `helmet: true: ${url} has helmet's other headers`)
  }

  const without = await createHarness(t, { database: h.database, app: { twoFactor: { helmet: false } } })
  for (const url of ['/login', '/2fa/challenge']) {
    const plain = await without.app.inject({ method: 'GET', url })
    t.equal(plain.headers['content-security-policy'], undefined, `helmet: false: no CSP on ${url}`)
    t.equal(plain.headers['x-frame-options'], undefined, `helmet: false: nor the other headers on ${url}`)
  }
})
