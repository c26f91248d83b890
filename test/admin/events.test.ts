// The audit log view: newest first, filtered by user, type and time, paged with a
// cursor that loses nothing when many events share a millisecond; and the alert hook that fires
// when one account sees more than the threshold of failed codes in the window.
import t from 'tap'
import { events } from '../../plugin/db/schema.ts'
import type { TwoFactorAlert } from '../../plugin/index.ts'
import { EVENTS_PAGE_SIZE } from '../../plugin/routes/admin/events.ts'
import { createHarness, enrol, PASSWORDS, passwordStep } from '../helpers/demo.ts'

interface EventJson { id: number, at: string, type: string, userId: string | null, actor: string | null, details: Record<string, unknown> }

t.test('audit log view and alerts', async (t) => {
  const alerts: TwoFactorAlert[] = []
  const h = await createHarness(t, { app: { twoFactor: { alert: (a) => { alerts.push(a) } } } })
  const { client: admin } = await enrol(h, 'admin', PASSWORDS.admin)
  const { manualKey: bobKey } = await enrol(h, 'bob', PASSWORDS.bob)
  void bobKey

  await t.test('more than 3 failed codes in 5 minutes fires the alert once', async (t) => {
    const guesser = h.client()
    await passwordStep(guesser, 'bob', PASSWORDS.bob)
    await guesser.get('/2fa/challenge')
    for (let i = 0; i < 3; i++) {
      await guesser.post('/2fa/challenge', { code: '000000' })
      h.clock.advance(60_000)
    }
    t.equal(alerts.length, 0, 'three failures: no alert')
    await guesser.post('/2fa/challenge', { code: '000000' })
    t.equal(alerts.length, 1, 'the fourth within 5 minutes alerts')
    t.match(alerts[0], { userId: 'bob', failures: 4, windowMs: 300_000 })
    await guesser.post('/2fa/challenge', { code: '000000' })
    t.equal(alerts.length, 1, 'once per burst')
    await h.app.twoFactor.unlock('bob', { actor: 'test' })
  })

  await t.test('newest first, filtered by user and type', async (t) => {
    await admin.get('/2fa/admin/users')
    const on = await admin.post('/2fa/admin/users/alice/required', { required: 'true' }, { htmx: true })
    t.equal(on.statusCode, 200, on.body.slice(0, 300))
    const all = JSON.parse((await admin.get('/2fa/admin/events', { json: true })).body) as { events: EventJson[], next: unknown }
    t.ok(all.events.length > 10)
    const times = all.events.map((e) => Date.parse(e.at))
    t.same(times, [...times].sort((a, b) => b - a), 'newest first')
    t.match(all.events[0], { type: 'required.on', userId: 'alice', actor: 'admin' })
    t.type(all.events[0]!.id, 'number')

    const bobs = JSON.parse((await admin.get('/2fa/admin/events?user=bob', { json: true })).body) as { events: EventJson[] }
    t.ok(bobs.events.length > 0)
    t.ok(bobs.events.every((e) => e.userId === 'bob'), 'only bob’s')
    const failed = JSON.parse((await admin.get('/2fa/admin/events?user=bob&type=challenge.failed', { json: true })).body) as { events: EventJson[] }
    t.equal(failed.events.length, 5)
    t.ok(failed.events.every((e) => e.type === 'challenge.failed'))
    t.equal((await admin.get('/2fa/admin/events?type=made.up', { json: true })).statusCode, 422, 'unknown types are refused')
    t.equal((await admin.get('/2fa/admin/events?before=yesterday', { json: true })).statusCode, 422, 'so are unreadable times')

    const page = await admin.get('/2fa/admin/events?user=bob&type=challenge.failed')
    t.match(page.body, /<option value="challenge.failed" selected>/, 'the filters are kept in the form')
    t.match(page.body, /<td><code>challenge\.failed<\/code><\/td>/)
    const partial = await admin.get('/2fa/admin/events?user=bob', { htmx: true })
    t.match(partial.body, /^\s*<section id="tf-admin-events"/)
  })

  await t.test('"before" filters by time; the cursor pages through events sharing one instant', async (t) => {
    const at = new Date(h.clock.ms + 60_000)
    const rows = Array.from({ length: EVENTS_PAGE_SIZE * 2 + 7 }, (_, i) => ({ at, type: 'wizard.shown', userId: 'crowd', actor: 'crowd', details: { n: i } }))
    await h.database.db.insert(events).values(rows)

    const seen: number[] = []
    let url: string | null = '/2fa/admin/events?user=crowd'
    let pages = 0
    while (url !== null) {
      const body = JSON.parse((await admin.get(url, { json: true })).body) as { events: EventJson[], next: { before: string, beforeId: number } | null }
      seen.push(...body.events.map((e) => e.details.n as number))
      url = body.next === null ? null : `/2fa/admin/events?user=crowd&before=${encodeURIComponent(body.next.before)}&beforeId=${body.next.beforeId}`
      pages++
    }
    t.equal(pages, 3)
    t.equal(seen.length, rows.length, 'every event once')
    t.same(seen, rows.map((_, i) => i).reverse(), 'in order, none skipped or repeated')

    const html = await admin.get('/2fa/admin/events?user=crowd')
    t.match(html.body, /href="\/2fa\/admin\/events\?user=crowd&amp;before=[^"]+&amp;beforeId=\d+"[^>]*>Older events/, 'an "older" link for the page without JavaScript')

    const before = JSON.parse((await admin.get(`/2fa/admin/events?before=${encodeURIComponent(at.toISOString())}`, { json: true })).body) as { events: EventJson[] }
    t.ok(before.events.length > 0)
    t.ok(before.events.every((e) => Date.parse(e.at) < at.getTime()), 'only older events')
    const day = JSON.parse((await admin.get('/2fa/admin/events?before=2000-01-01', { json: true })).body) as { events: EventJson[] }
    t.equal(day.events.length, 0, 'a date alone works too')
  })

  await t.test('what users typed is shown inert', async (t) => {
    const forged = await admin.post('/2fa/admin/users/bob/reset', { reason: 'lost phone\r\nadmin: granted' }, { htmx: true })
    t.equal(forged.statusCode, 422, 'a reason with CR/LF (a forged log line) is refused before anything changes')
    t.equal((await h.app.twoFactor.status('bob')).enabled, true, 'bob is still enrolled')
    await admin.post('/2fa/admin/users/bob/reset', { reason: '<img src=x onerror=alert(1)> admin: granted' }, { htmx: true })
    const page = await admin.get('/2fa/admin/events?type=disabled.by_admin')
    t.notMatch(page.body, /<img src=x/, 'escaped')
    t.match(page.body, /&lt;img src=x onerror=alert\(1\)&gt; admin: granted/, 'shown as text')
  })
})
