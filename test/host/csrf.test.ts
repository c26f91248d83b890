// The host's own forms use the plugin's CSRF protection: `reply.generateCsrf()` gives the token
// for the session, `fastify.csrfProtection` checks it. A post without it, with another session's
// token, or with a forged one is refused with 403 and the handler never runs.
import t from 'tap'
import { createHost } from '../fixtures/host.ts'

t.test('a host form protected by the plugin\'s CSRF check', async (t) => {
  let saved = 0
  const host = await createHost(t, {
    routes: (app) => {
      app.get('/profile', async (_request, reply) => {
        return await reply.type('text/html').send(`<form method="post" action="/profile"><input type="hidden" name="_csrf" value="${reply.generateCsrf()}"><button>Save</button></form>`)
      })
      app.post('/profile', { preHandler: app.csrfProtection }, async () => { saved++; return { saved: true } })
    }
  })

  const client = host.client()
  const form = await client.get('/profile')
  const token = /name="_csrf" value="([^"]+)"/.exec(form.body)?.[1]
  t.ok(token, 'the form carries a token')
  const cookie = String(form.headers['set-cookie'] ?? '')
  t.ok(cookie !== '', 'the token is bound to a session cookie')

  const other = host.client()
  const otherToken = /name="_csrf" value="([^"]+)"/.exec((await other.get('/profile')).body)?.[1]
  for (const [what, fields] of [['no token', {}], ['a forged token', { _csrf: 'forged' }], ['another session\'s token', { _csrf: otherToken }]] as const) {
    const refused = await client.post('/profile', fields, { noCsrf: true })
    t.equal(refused.statusCode, 403, `${what}: 403`)
  }
  t.equal(saved, 0, 'the handler never ran')

  const accepted = await client.post('/profile', { _csrf: token }, { noCsrf: true })
  t.equal(accepted.statusCode, 200)
  t.equal(saved, 1, 'with the token the form is saved')
})
