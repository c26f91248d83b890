// docs/http-api.json is generated from the route schemas; this fails when it is stale, so the
// document always says what the routes do. Regenerate it with `npm run docs`.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { buildHttpApi, HTTP_API_FILE } from '../../docs/http-api.ts'

t.test('the committed HTTP API document matches the route schemas', async (t) => {
  const built = await buildHttpApi()
  const committed = readFileSync(HTTP_API_FILE, 'utf8')
  t.ok(built === committed, 'docs/http-api.json is up to date (run `npm run docs` after changing a route)')
  const document = JSON.parse(built) as { paths: Record<string, Record<string, unknown>> }
  const operations = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`))
  for (const expected of ['GET /2fa/challenge', 'POST /2fa/challenge', 'GET /2fa/setup', 'POST /2fa/setup/confirm', 'POST /2fa/setup/finish', 'POST /2fa/setup/skip',
    'GET /2fa/step-up', 'POST /2fa/step-up', 'GET /2fa/settings', 'POST /2fa/disable', 'POST /2fa/recovery-codes', 'POST /2fa/logout',
    'GET /2fa/admin/users', 'GET /2fa/admin/users/{id}', 'POST /2fa/admin/users/{id}/required', 'POST /2fa/admin/users/{id}/reset',
    'POST /2fa/admin/users/{id}/unlock', 'GET /2fa/admin/policy', 'POST /2fa/admin/policy', 'GET /2fa/admin/events']) {
    t.ok(operations.includes(expected), `${expected} is documented`)
  }
  t.notOk(operations.some((op) => op.includes('/assets/')), 'static files are not API')
})
