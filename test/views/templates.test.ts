// The pages as HTML: what every page must carry (labels, code-input hints, live error regions,
// no inline script or style for the CSP), the recovery panel's download link, the challenge's
// wording (attempts, clock drift, nothing revealed while locked), and the host's template
// overrides (`templatesDir`: its own layout and any page or partial).
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { codeFor, createHarness, enrol, manualKeyFrom, passwordStep, PASSWORDS, type Harness } from '../helpers/demo.ts'

const h = await createHarness(t)

/** Checks that hold for every page and fragment the plugin serves. */
function checkMarkup (t: Test, html: string, where: string): void {
  for (const script of html.match(/<script\b[^>]*>/g) ?? []) t.match(script, /\bsrc="/, `${where}: no inline script`)
  t.notMatch(html, /\son[a-z]+=/i, `${where}: no inline event handlers`)
  t.notMatch(html, /\sstyle=/i, `${where}: no inline style (the CSP allows only the stylesheet)`)
  const labels = new Set([...html.matchAll(/<label for="([^"]+)"/g)].map((m) => m[1]))
  for (const input of html.match(/<input\b[^>]*>/g) ?? []) {
    if (/type="hidden"|\shidden[\s>]/.test(input)) continue
    const id = /\sid="([^"]+)"/.exec(input)?.[1]
    t.ok(id !== undefined && labels.has(id), `${where}: ${input.slice(0, 40)}… has a label`)
    if (/name="code"/.test(input)) {
      t.match(input, /autocomplete="one-time-code"/, `${where}: code input autocompletes one-time codes`)
      t.match(input, /inputmode="numeric"/, `${where}: numeric keyboard`)
      t.match(input, /pattern="\[0-9 \]\*"/, `${where}: pattern`)
    }
  }
  for (const region of html.match(/<div id="[^"]+" class="tf-error"[^>]*>/g) ?? []) {
    t.match(region, /role="alert" aria-live="assertive"/, `${where}: errors are announced`)
  }
}

t.test('every page of the journey: labels, code inputs, live regions, no inline script or style', async (t) => {
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice)
  const pages: Array<[string, string]> = []
  pages.push(['settings (off)', (await client.get('/2fa/settings')).body])
  const scan = await client.get('/2fa/setup')
  pages.push(['scan', scan.body])
  const manualKey = manualKeyFrom(scan.body)
  pages.push(['confirm', (await client.get('/2fa/setup/confirm')).body])
  pages.push(['confirm error', (await client.post('/2fa/setup/confirm', { code: '000000' })).body])
  const codes = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, h.clock.ms) })
  pages.push(['codes', codes.body])
  pages.push(['done', (await client.post('/2fa/setup/finish')).body])
  pages.push(['settings (on)', (await client.get('/2fa/settings')).body])
  pages.push(['settings error', (await client.post('/2fa/recovery-codes', { password: 'wrong' })).body])
  pages.push(['settings new codes', (await client.post('/2fa/recovery-codes', { password: PASSWORDS.alice })).body])
  h.clock.advance(30_000)
  const again = h.client()
  await passwordStep(again, 'alice', PASSWORDS.alice)
  pages.push(['challenge', (await again.get('/2fa/challenge')).body])
  pages.push(['challenge error', (await again.post('/2fa/challenge', { code: '000000' })).body])
  pages.push(['challenge recovery', (await again.get('/2fa/challenge?method=recovery')).body])
  pages.push(['challenge recovery (htmx)', (await again.get('/2fa/challenge?method=recovery', { htmx: true })).body])
  pages.push(['scan (htmx)', (await client.get('/2fa/setup', { htmx: true })).body])
  for (const [where, html] of pages) checkMarkup(t, html, where)

  // Page weights: light pages, the QR code included (served uncompressed here).
  const weight = (where: string) => Buffer.byteLength(pages.find(([name]) => name === where)![1])
  t.ok(weight('challenge') <= 4_000, `challenge page: ${weight('challenge')} bytes (budget 4 000)`)
  t.ok(weight('scan') <= 10_000, `setup page with its QR SVG: ${weight('scan')} bytes (budget 10 000)`)
  for (const [asset, budget] of [['two-factor.js', 4_000], ['two-factor.css', 12_000]] as const) {
    const bytes = (await client.get(`/2fa/assets/${asset}`)).rawPayload.length
    t.ok(bytes > 0 && bytes <= budget, `${asset}: ${bytes} bytes (budget ${budget})`)
  }

  const [scanPage] = pages.filter(([where]) => where === 'scan').map(([, html]) => html)
  t.match(scanPage, /<summary>Can’t scan the code\?<\/summary>/, 'the manual key hides behind a reveal')
  t.match(scanPage, /<code id="tf-manual-key" class="tf-key">([A-Z2-7]{4} ){7}[A-Z2-7]{4}<\/code>/, 'grouped by 4')
  t.match(scanPage, /data-copy="#tf-manual-key" hidden>Copy key<\/button>/, 'a copy button, shown only when the script runs')
  t.match(scanPage, /It will appear in the app as <strong>Demo App<\/strong> <span class="tf-account">\(alice\)<\/span>/, 'issuer and account as the app shows them')
  t.match(scanPage, /<dt>Account<\/dt><dd>Demo App:alice<\/dd>/)
  t.match(scanPage, /<p class="tf-switch"><a href="\/2fa\/settings">Cancel<\/a><\/p>/, 'a way back for a user who started it')
})

t.test('the recovery panel: copy and print buttons for the script, download as a data: link in the same response', async (t) => {
  const client = h.client()
  await passwordStep(client, 'bob', PASSWORDS.bob)
  const manualKey = manualKeyFrom((await client.get('/2fa/setup')).body)
  const page = await client.post('/2fa/setup/confirm', { code: codeFor(manualKey, h.clock.ms) })
  const codes = [...page.body.matchAll(/<li><code>([0-9A-Z-]{19})<\/code><\/li>/g)].map((m) => m[1]!)
  t.equal(codes.length, 10)
  t.match(page.body, /<button class="tf-button tf-secondary" type="button" data-copy="#tf-code-list" hidden>Copy codes<\/button>/)
  t.match(page.body, /<button class="tf-button tf-secondary" type="button" data-print hidden>Print<\/button>/)
  t.match(page.body, /<span class="tf-codes-account">Recovery codes for Demo App \(bob\)<\/span>/, 'the account, for the printed sheet')
  t.match(page.body, /<span class="tf-codes-date">Created <time datetime="2026-11-22T[0-9:.]+Z">22 November 2026<\/time><\/span>/, 'and the date')
  const link = /<a class="tf-button tf-secondary" href="data:text\/plain;charset=utf-8,([^"]+)" download="recovery-codes.txt">/.exec(page.body)
  t.ok(link, 'a data: link named recovery-codes.txt')
  const text = decodeURIComponent(link![1]!.replace(/&#39;/g, "'"))
  t.match(text, /^Recovery codes for Demo App \(bob\)\nCreated 22 November 2026\n/)
  t.same(text.trim().split('\n').slice(-10), codes, 'the file holds the ten codes')
})

t.test('challenge wording: attempts left, the clock-drift hint, and nothing revealed while locked', async (t) => {
  const { manualKey } = await enrol(h, 'admin', PASSWORDS.admin)
  const client = h.client()
  await passwordStep(client, 'admin', PASSWORDS.admin)
  const first = await client.get('/2fa/challenge')
  t.notMatch(first.body, /attempts? left/, 'no count before a mistake')
  t.match(first.body, /<a href="\/2fa\/challenge\?method=recovery" hx-get="\/2fa\/challenge\?method=recovery" hx-target="#tf-challenge" hx-swap="outerHTML">Use a recovery code<\/a>/, 'a plain link that htmx turns into a swap')

  const drift = await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms, -10) })
  t.equal(drift.statusCode, 422)
  t.match(drift.body, /That code is not valid\. Check your authenticator app and try again\. Your device clock seems to be off by about 5 minutes\./)
  t.match(drift.body, /4 attempts left before you need to enter your password again\./)
  // A code of a step still to come gets no hint: it would tell a guesser a code that works soon.
  const ahead = await client.post('/2fa/challenge', { code: codeFor(manualKey, h.clock.ms, 10) })
  t.equal(ahead.statusCode, 422)
  t.notMatch(ahead.body, /clock seems to be off/, 'no hint for a future step at sign-in')
  t.match(drift.body, /data-focus="#tf-challenge-error"/, 'focus goes to the error')
  t.match(drift.body, /id="tf-code"[^>]*aria-describedby="tf-code-hint tf-challenge-error"[^>]*aria-invalid="true"/)

  const swap = await client.get('/2fa/challenge?method=recovery', { htmx: true })
  t.match(swap.body, /^\s*<section id="tf-challenge"/, 'the switch swaps a fragment')
  t.match(swap.body, /<input id="tf-recovery" name="recoveryCode"/)
  t.match(swap.body, /data-focus="#tf-recovery"/)
  t.notMatch(swap.body, /<html/)

  for (let i = 0; i < 3; i++) await client.post('/2fa/challenge', { code: '000000' })
  // Five failures: the account is locked and this sign-in is over. A new one is locked too.
  const bodies: string[] = []
  for (const code of [codeFor(manualKey, h.clock.ms), '123456']) {
    const next = h.client()
    await passwordStep(next, 'admin', PASSWORDS.admin)
    await next.get('/2fa/challenge')
    const locked = await next.post('/2fa/challenge', { code })
    t.equal(locked.statusCode, 423)
    t.notMatch(locked.body, /attempts? left/, 'no count while locked')
    bodies.push(locked.body.replace(/(name="_csrf" value=|name="csrf-token" content=|"x-csrf-token": )"[^"]+"/g, '$1""'))
  }
  t.equal(bodies[0], bodies[1], 'a right and a wrong code get the same page while locked')
  t.match(bodies[0], /Too many failed attempts\. Try again in 15 minutes\./)
})

t.test('templatesDir: the host replaces the layout and a partial; the rest stays the plugin’s', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-templates-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'partials'))
  // The README's examples, as written there.
  writeFileSync(join(dir, 'layout.eta'), `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="csrf-token" content="<%= it.csrfToken %>">
  <title><%= it.title %> · Acme</title>
  <link rel="stylesheet" href="<%= it.assets.styles %>">
  <link rel="stylesheet" href="/acme.css">
  <script src="<%= it.assets.htmx %>" defer></script>
  <script src="<%= it.assets.script %>" defer></script>
</head>
<body class="tf" hx-headers:inherited='{"x-csrf-token": "<%= it.csrfToken %>"}'>
  <header class="acme-header">Acme</header>
  <main class="tf-main"><%~ it.body %></main>
</body>
</html>
`)
  writeFileSync(join(dir, 'partials', 'challenge.eta'), `<% const c = it.challenge %>
<section id="tf-challenge" class="tf-card acme-challenge" data-focus="<%= c.error ? '#tf-challenge-error' : '#tf-code' %>">
  <h1>Confirm it’s you</h1>
  <%~ include('/partials/error-region', { id: 'tf-challenge-error', message: c.error }) %>
  <form method="post" action="<%= c.action %>" hx-post="<%= c.action %>" hx-target="#tf-challenge" hx-swap="outerHTML">
    <%~ include('/partials/csrf', it) %>
    <label for="tf-code">6-digit code from your phone</label>
    <input id="tf-code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" required>
    <button class="tf-button">Continue</button>
  </form>
  <p><a href="<%= c.action %>?method=recovery">Use a recovery code</a></p>
</section>
`)
  const hosted: Harness = await createHarness(t, { users: [{ username: 'carol', password: PASSWORDS.alice }], app: { twoFactor: { templatesDir: dir } } })
  const { manualKey } = await enrol(hosted, 'carol', PASSWORDS.alice)
  const client = hosted.client()
  await passwordStep(client, 'carol', PASSWORDS.alice)

  const page = await client.get('/2fa/challenge')
  t.equal(page.statusCode, 200)
  t.match(page.body, /<title>Two-factor authentication · Acme<\/title>/, 'the host layout')
  t.match(page.body, /<header class="acme-header">Acme<\/header>\s*<main class="tf-main">\s*<section id="tf-challenge"/)
  t.match(page.body, /<h1>Confirm it’s you<\/h1>[\s\S]*<label for="tf-code">6-digit code from your phone<\/label>/, 'the host partial, included by the plugin’s page')
  t.match(page.body, /<input type="hidden" name="_csrf" value="[^"]+">/, 'which can include the plugin’s partials')
  t.notMatch(page.body, /rel="icon"/, 'nothing of the plugin’s layout')

  const fragment = await client.get('/2fa/challenge', { htmx: true })
  t.match(fragment.body, /^\s*<section id="tf-challenge" class="tf-card acme-challenge"/, 'htmx swaps get the host partial alone')
  t.notMatch(fragment.body, /acme-header/)

  const wrong = await client.post('/2fa/challenge', { code: '000000' })
  t.equal(wrong.statusCode, 422)
  t.match(wrong.body, /<div id="tf-challenge-error"[^>]*>That code is not valid\./, 'the plugin still supplies the data')

  const settings = hosted.client()
  hosted.clock.advance(30_000)
  await passwordStep(settings, 'carol', PASSWORDS.alice)
  await settings.get('/2fa/challenge')
  const signedIn = await settings.post('/2fa/challenge', { code: codeFor(manualKey, hosted.clock.ms) })
  t.equal(signedIn.statusCode, 303, 'the host’s form signs in')
  const settingsPage = await settings.get('/2fa/settings')
  t.match(settingsPage.body, /<header class="acme-header">Acme<\/header>\s*<main class="tf-main">\s*<section id="tf-settings"/, 'other pages: the plugin’s partial in the host layout')
})

