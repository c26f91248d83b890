// The language of the pages and messages: the request's Accept-Language among the shipped
// locales, else English; or the host's choice (option `locale`, a string or a function).
import t from 'tap'
import { negotiateLocale } from '../../plugin/views/messages.ts'
import { answerOf } from '../helpers/client.ts'
import { createHost, login } from '../fixtures/host.ts'

t.test('Accept-Language picks among the shipped locales', async (t) => {
  const available = ['de', 'en']
  for (const [header, expected] of [
    [undefined, 'en'], ['', 'en'], ['de', 'de'], ['de-CH, en;q=0.5', 'de'], ['fr, de;q=0.8', 'de'],
    ['en-GB, de;q=0.9', 'en'], ['fr', 'en'], ['de;q=0, en', 'en'], ['*', 'en'], ['DE-de', 'de'], ['x'.repeat(5000), 'en']
  ] as const) {
    t.equal(negotiateLocale(header, available), expected, `${JSON.stringify(header)?.slice(0, 30)} → ${expected}`)
  }
})

t.test('the plugin answers in the request’s language, or the host’s choice', async (t) => {
  const host = await createHost(t)
  const client = host.client()
  await login(client, 'alice', 'alice-password')
  const english = await client.get('/2fa/step-up', { json: true })
  const german = await client.get('/2fa/step-up', { json: true, headers: { 'accept-language': 'de-DE,de;q=0.9' } })
  t.equal(german.statusCode, 403)
  t.not(JSON.parse(german.body).message, JSON.parse(english.body).message, 'German differs from English')
  const page = await client.get('/2fa/settings', { headers: { 'accept-language': 'de' } })
  t.match(page.body, /<html lang="de">/, 'the page says its language')
  t.match(String(page.headers.vary), /Accept-Language/, 'caches keep the languages apart')

  const fixed = await createHost(t, { twoFactor: { locale: 'de' } })
  const other = fixed.client()
  const answer = await login(other, 'bob', 'bob-password')
  t.match(answerOf(answer), { state: 'signed-in' })
  const settings = await other.get('/2fa/settings', { headers: { 'accept-language': 'en' } })
  t.match(settings.body, /<html lang="de">/, 'locale: "de" wins over the header')
})
