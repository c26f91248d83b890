// The end user's whole journey in a real browser (Debian's Chromium through playwright-core),
// against the demo app on a real port: sign in, turn 2FA on from settings reading the key off
// the page, save the codes, sign out, sign in with a recovery code and then with a code, make
// new codes, turn 2FA off. Once with JavaScript (htmx swaps: the URL stays put, focus follows,
// axe finds nothing serious) and once without (plain forms and full pages). Then the admin's
// path: the forced wizard at sign-in, and a user's requirement toggled inline in the users list.
//
// Time is real here: the browser and the "authenticator" share the wall clock. Enrolment is
// confirmed with the code of the step just before the current one (inside the ±1 window), so
// the sign-in that follows can use the code on screen at once; nothing waits for a new step
// unless a step is about to end.
//
// Last, trusted browsers and sessions (carol, an account of its own): "Don't ask again on this
// browser" ticked at the code prompt, then sign-out and sign-in in the same browser skip the
// code (but not a step-up); settings lists the browser and "Forget" makes the next sign-in ask
// again; with a second browser signed in, "Sign out all other sessions" signs it out.
import t, { type Test } from 'tap'
import type { BrowserContext, Page } from 'playwright-core'
import { PASSWORDS } from '../helpers/demo.ts'
import { currentCode, launchBrowser, previousCode, screenshot, seriousViolations, serveDemo } from './support.ts'

const CAROL = { username: 'carol', password: 'carol-password-123' }

const [{ baseUrl, harness }, browser] = await Promise.all([serveDemo(t, { extraUsers: [CAROL] }), launchBrowser(t)])

interface Run {
  t: Test
  page: Page
  js: boolean
  name: string
  user: keyof typeof PASSWORDS
}

/** Pages the plugin served must not have tripped the CSP (scripts or inline styles), nor thrown. */
function watchForTrouble (page: Page): string[] {
  const trouble: string[] = []
  page.on('pageerror', (error) => trouble.push(`page error: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error' && /script-src|style-src|Refused to (execute|load) script/.test(message.text())) trouble.push(message.text())
  })
  return trouble
}

async function shot (run: Run, step: string): Promise<void> {
  await screenshot(run.page, `journey-${run.name}-${step}`)
}

/** axe-core in the page (only possible with JavaScript on): no serious or critical violation. */
async function accessible (run: Run, where: string): Promise<void> {
  if (!run.js) return
  run.t.same(await seriousViolations(run.page), [], `axe: nothing serious on ${where}`)
}

async function focusedId (page: Page): Promise<string> {
  return await page.evaluate('document.activeElement ? document.activeElement.id : ""') as string
}

/** After an htmx swap, focus lands on the new step or its error (checked only with JavaScript). */
async function focusMovesTo (run: Run, id: string): Promise<void> {
  if (!run.js) return
  await run.page.waitForFunction((wanted) => document.activeElement?.id === wanted, id, { timeout: 5_000 }).catch(() => {})
  run.t.equal(await focusedId(run.page), id, `focus on #${id}`)
}

async function signIn (run: Run): Promise<void> {
  const { page, user } = run
  await page.goto(`${baseUrl}/login`)
  await page.fill('#username', user)
  await page.fill('#password', PASSWORDS[user])
  await page.click('form[action="/login"] button[type=submit]')
  await page.waitForURL((url) => url.pathname !== '/login')
}

async function signOut (run: Run): Promise<void> {
  await run.page.goto(`${baseUrl}/`)
  await run.page.click(`text=Sign out ${run.user}`)
  await run.page.waitForURL(`${baseUrl}/login`)
}

async function journey (run: Run): Promise<void> {
  const { t, page, js } = run
  const trouble = watchForTrouble(page)

  // Signed in with the password alone; settings from the dashboard.
  await signIn(run)
  t.equal(page.url(), `${baseUrl}/`, 'no 2FA yet: straight to the dashboard')
  await page.click('text=Two-factor settings')
  await page.waitForURL(`${baseUrl}/2fa/settings`)
  t.equal(await page.textContent('.tf-badge'), 'Off')
  await shot(run, '01-settings-off')
  await accessible(run, 'settings (off)')

  // Step 1: scan. The key is behind "Can't scan the code?".
  await page.click('text=Turn on two-factor authentication')
  await page.waitForSelector('#tf-setup[data-step="scan"]')
  const wizardUrl = page.url()
  t.equal(wizardUrl, `${baseUrl}/2fa/setup`)
  t.notOk(await page.isVisible('#tf-manual-key'), 'the key waits behind the reveal')
  await page.click('text=Can’t scan the code?')
  const manualKey = (await page.textContent('#tf-manual-key'))!.trim()
  t.match(manualKey, /^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/, 'the manual key, grouped by 4')
  t.equal(await page.isVisible('button[data-copy="#tf-manual-key"]'), js, js ? 'a copy button' : 'no copy button without JavaScript')
  if (js) {
    await page.click('button[data-copy="#tf-manual-key"]')
    await page.locator('button[data-copy="#tf-manual-key"]', { hasText: 'Copied' }).waitFor()
    t.equal(await page.evaluate('navigator.clipboard.readText()'), manualKey.replace(/ /g, ''), 'copy puts the key, without spaces, on the clipboard')
  }
  t.match(await page.textContent('figcaption'), /It will appear in the app as Demo App \(/)
  await shot(run, '02-scan')
  await accessible(run, 'wizard step 1 (scan)')

  // Step 2: confirm, first with a wrong code.
  await page.click('text=Next: enter a code')
  await page.waitForSelector('#tf-setup[data-step="confirm"]')
  t.equal(page.url(), js ? wizardUrl : `${baseUrl}/2fa/setup/confirm`, js ? 'htmx swap: same URL' : 'a plain page')
  await focusMovesTo(run, 'tf-setup-code')
  await shot(run, '03-confirm')
  await accessible(run, 'wizard step 2 (confirm)')
  await page.fill('#tf-setup-code', '000000')
  await page.click('#tf-setup button[type=submit]')
  await page.waitForSelector('#tf-setup-error:not([hidden])')
  t.match(await page.textContent('#tf-setup-error'), /That code is not valid/)
  if (js) t.equal(page.url(), wizardUrl, 'the error is swapped in: same URL')
  await focusMovesTo(run, 'tf-setup-error')
  await shot(run, '04-confirm-error')
  await accessible(run, 'wizard step 2 with an error')

  // Step 3: save the codes.
  await page.fill('#tf-setup-code', await previousCode(manualKey))
  await page.click('#tf-setup button[type=submit]')
  await page.waitForSelector('#tf-setup[data-step="codes"]')
  if (js) t.equal(page.url(), wizardUrl, 'codes step swapped in: same URL')
  await focusMovesTo(run, 'tf-setup-title')
  const codes = (await page.locator('#tf-code-list li').allTextContents()).map((code) => code.trim())
  t.equal(codes.length, 10, 'ten recovery codes')
  const download = page.locator('a[download="recovery-codes.txt"]')
  t.match(await download.getAttribute('href'), /^data:text\/plain;charset=utf-8,Recovery%20codes%20for%20Demo%20App/, 'download is a data: link')
  t.equal(await page.isVisible('button[data-print]'), js, 'print button with JavaScript')
  if (js) {
    await page.click('button[data-copy="#tf-code-list"]')
    await page.locator('button[data-copy="#tf-code-list"]', { hasText: 'Copied' }).waitFor()
    t.equal(await page.evaluate('navigator.clipboard.readText()'), codes.join('\n'), 'copy puts the ten codes on the clipboard')
  }
  await shot(run, '05-codes')
  await accessible(run, 'wizard step 3 (recovery panel)')

  // Step 4: done.
  await page.click('text=I have saved them')
  await page.waitForSelector('#tf-setup[data-step="done"]')
  if (js) t.equal(page.url(), wizardUrl, 'done step swapped in: the wizard never left its URL')
  await focusMovesTo(run, 'tf-setup-title')
  await shot(run, '06-done')
  await accessible(run, 'wizard step 4 (done)')
  await page.click('text=Back to settings')
  await page.waitForURL(`${baseUrl}/2fa/settings`)
  t.equal(await page.textContent('.tf-badge'), 'On')
  t.equal(await page.textContent('#tf-codes-left'), '10 of 10')
  await shot(run, '07-settings-on')
  await accessible(run, 'settings (on)')

  // Sign out; sign in with a recovery code (the switch is a swap with JavaScript, a link without).
  await signOut(run)
  await signIn(run)
  t.equal(page.url(), `${baseUrl}/2fa/challenge`, 'the code is asked now')
  t.equal(await page.locator('#tf-challenge input:not([type=hidden]):not([type=checkbox])').count(), 1, 'one field to type in')
  t.equal(await page.locator('#tf-challenge input[type=checkbox][name=trustDevice]').count(), 1, 'and the “don’t ask again” box')
  t.notOk(await page.getByLabel('Don’t ask again on this browser for 30 days').isChecked(), 'unticked')
  await shot(run, '08-challenge')
  await accessible(run, 'challenge')
  await page.click('text=Use a recovery code')
  await page.waitForSelector('#tf-recovery')
  t.equal(page.url(), js ? `${baseUrl}/2fa/challenge` : `${baseUrl}/2fa/challenge?method=recovery`)
  await focusMovesTo(run, 'tf-recovery')
  await shot(run, '09-challenge-recovery')
  await accessible(run, 'challenge (recovery code)')
  await page.fill('#tf-recovery', codes[0]!)
  await page.click('#tf-challenge button[type=submit]')
  await page.waitForSelector('#tf-recovery-used')
  t.match(await page.textContent('#tf-recovery-used'), /You have 9 recovery codes left\./)
  await shot(run, '10-recovery-used')
  await accessible(run, 'signed in with a recovery code')
  await page.click('text=Continue')
  await page.waitForURL(`${baseUrl}/`)

  // Sign out; sign in with the code the authenticator shows now.
  await signOut(run)
  await signIn(run)
  await page.fill('#tf-code', await currentCode(manualKey))
  await page.click('#tf-challenge button[type=submit]')
  await page.waitForURL(`${baseUrl}/`)
  t.match(await page.textContent('h1'), new RegExp(`Welcome, ${run.user}`), 'signed in with a code')

  // New recovery codes: a wrong password first, then the right one.
  await page.click('text=Two-factor settings')
  await page.waitForURL(`${baseUrl}/2fa/settings`)
  t.equal(await page.textContent('#tf-codes-left'), '9 of 10')
  await page.fill('#tf-regenerate-password', 'not-my-password')
  await page.click('text=Create new recovery codes')
  await page.waitForSelector('#tf-regenerate-error:not([hidden])')
  t.equal(await page.textContent('#tf-regenerate-error'), 'That password is not right.')
  await focusMovesTo(run, 'tf-regenerate-error')
  await shot(run, '11-regenerate-error')
  await accessible(run, 'settings with an error')
  await page.fill('#tf-regenerate-password', PASSWORDS[run.user])
  await page.click('text=Create new recovery codes')
  await page.waitForSelector('#tf-code-list')
  const newCodes = (await page.locator('#tf-code-list li').allTextContents()).map((code) => code.trim())
  t.equal(newCodes.length, 10)
  t.notOk(newCodes.some((code) => codes.includes(code)), 'all new codes')
  t.equal(await page.textContent('#tf-codes-left'), '10 of 10')
  await focusMovesTo(run, 'tf-settings-notice')
  await shot(run, '12-new-codes')
  await accessible(run, 'settings recovery panel')

  // The print view: the codes, the account and the date, nothing else.
  await page.emulateMedia({ media: 'print' })
  t.ok(await page.isVisible('#tf-code-list'), 'print: the codes')
  t.match(await page.textContent('.tf-codes-for'), new RegExp(`Recovery codes for Demo App \\(${run.user}\\)\\s+Created \\d+ \\w+ \\d{4}`), 'print: account and date')
  for (const hidden of ['#tf-settings-title', '#tf-regenerate-password', '.tf-status', 'a[download]', '#tf-settings-notice']) {
    t.notOk(await page.isVisible(hidden), `print: no ${hidden}`)
  }
  await shot(run, '13-print')
  await page.emulateMedia({ media: 'screen' })

  // Turn it off.
  await page.fill('#tf-disable-password', PASSWORDS[run.user])
  await page.click('text=Turn off two-factor authentication')
  await page.locator('#tf-settings-notice', { hasText: 'Two-factor authentication is off.' }).waitFor()
  t.equal(await page.textContent('.tf-badge'), 'Off')
  await shot(run, '14-turned-off')
  await accessible(run, 'settings after turning off')
  await signOut(run)
  await signIn(run)
  t.equal(page.url(), `${baseUrl}/`, 'no code asked any more')

  t.same(trouble, [], 'no script errors, nothing blocked by the CSP')
}

async function withContext (t: Test, js: boolean, fn: (context: BrowserContext) => Promise<void>): Promise<void> {
  const context = await browser.newContext({ javaScriptEnabled: js, viewport: { width: 1024, height: 800 } })
  t.teardown(() => context.close())
  if (js) await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseUrl })
  await fn(context)
}

t.test('with JavaScript: htmx swaps one step into the next', async (t) => {
  await withContext(t, true, async (context) => {
    await journey({ t, page: await context.newPage(), js: true, name: 'js', user: 'alice' })
  })
})

t.test('without JavaScript: plain forms and full pages', async (t) => {
  await withContext(t, false, async (context) => {
    await journey({ t, page: await context.newPage(), js: false, name: 'nojs', user: 'bob' })
  })
})

/**
 * An admin must enrol before anything else (admins are required by default), then requires
 * alice from the users list: only her row is swapped, the page never reloads, and focus goes to
 * the row's notice so a screen reader reads the change out.
 */
async function adminPath (run: Run): Promise<void> {
  const { t, page } = run
  const trouble = watchForTrouble(page)
  page.on('dialog', (dialog) => { void dialog.accept() })

  await signIn(run)
  t.equal(page.url(), `${baseUrl}/2fa/setup`, 'an admin without 2FA lands in the wizard')
  t.match(await page.textContent('#tf-setup'), /Your account needs two-factor authentication before you can continue\./, 'the forced wizard says why')
  await shot(run, '01-forced-wizard')
  await page.click('text=Can’t scan the code?')
  const manualKey = (await page.textContent('#tf-manual-key'))!.trim()
  await page.click('text=Next: enter a code')
  await page.waitForSelector('#tf-setup[data-step="confirm"]')
  await page.fill('#tf-setup-code', await previousCode(manualKey))
  await page.click('#tf-setup button[type=submit]')
  await page.waitForSelector('#tf-setup[data-step="codes"]')
  t.equal(await page.locator('#tf-code-list li').count(), 10, 'ten recovery codes')
  await shot(run, '02-codes')
  await page.click('text=I have saved them')
  await page.waitForURL(`${baseUrl}/`)
  t.match(await page.textContent('h1'), /Welcome, admin/, 'the forced wizard finishes the sign-in')
  await shot(run, '03-signed-in')

  // The users list; alice is not required yet.
  await page.goto(`${baseUrl}/2fa/admin`)
  await page.waitForURL(`${baseUrl}/2fa/admin/users`)
  const usersUrl = page.url()
  const alice = page.locator('#tf-user-616c696365')
  t.equal(await alice.getAttribute('data-status'), 'not-required', 'alice: not required')
  t.match(await page.textContent('#tf-user-61646d696e .tf-user-status'), /enrolled/, 'the admin: enrolled')
  await shot(run, '04-users')
  await accessible(run, 'admin users list')

  // Require 2FA for alice: one row swapped in place.
  await page.evaluate('window.__noReload = 1')
  await alice.getByRole('button', { name: 'Require 2FA' }).click()
  await page.locator('#tf-user-616c696365[data-status="awaiting"]').waitFor()
  t.match(await alice.locator('.tf-user-status').textContent(), /awaiting setup/, 'alice: awaiting setup')
  t.equal(await alice.locator('.tf-row-notice').textContent(), 'Two-factor is now required for alice.', 'the row says what changed')
  t.ok(await alice.getByRole('button', { name: /Stop requiring/ }).isVisible(), 'the toggle now turns it off')
  t.equal(await page.evaluate('window.__noReload'), 1, 'no page load: the marker on window survived')
  t.equal(page.url(), usersUrl, 'same URL')
  await focusMovesTo(run, 'tf-user-616c696365-notice')
  await shot(run, '05-alice-required')
  await accessible(run, 'admin users list after a row swap')
  t.ok(harness.events.some((e) => e.type === 'required.on' && e.userId === 'alice' && e.actor === 'admin'), 'audited with the admin as actor')

  // The policy page; saving it is a swap too, and focus goes to its notice.
  await page.click('nav.tf-admin-nav >> text=Policy')
  await page.waitForURL(`${baseUrl}/2fa/admin/policy`)
  await shot(run, '06-policy')
  await accessible(run, 'admin policy')
  await page.click('text=Save policy')
  await page.locator('#tf-admin-policy-notice', { hasText: 'Policy saved.' }).waitFor()
  t.equal(page.url(), `${baseUrl}/2fa/admin/policy`, 'saved inline: same URL')
  await focusMovesTo(run, 'tf-admin-policy-notice')
  await shot(run, '07-policy-saved')

  t.same(trouble, [], 'no script errors, nothing blocked by the CSP')
}

t.test('an admin: the forced wizard, then a requirement toggled inline', async (t) => {
  await withContext(t, true, async (context) => {
    await adminPath({ t, page: await context.newPage(), js: true, name: 'admin', user: 'admin' })
  })
})

/** The password step through the login form, by its labels. */
async function signInAs (page: Page, user: { username: string, password: string }): Promise<void> {
  await page.goto(`${baseUrl}/login`)
  await page.getByLabel('Username').fill(user.username)
  await page.getByLabel('Password').fill(user.password)
  await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  await page.waitForURL((url) => url.pathname !== '/login')
}

async function signOutAs (page: Page, username: string): Promise<void> {
  await page.goto(`${baseUrl}/`)
  await page.getByRole('button', { name: `Sign out ${username}` }).click()
  await page.waitForURL(`${baseUrl}/login`)
}

/** At the code prompt: a recovery code, then on past the page that counts what is left. */
async function answerWithRecoveryCode (page: Page, code: string): Promise<void> {
  await page.getByRole('link', { name: 'Use a recovery code' }).click()
  await page.getByLabel('Recovery code').fill(code)
  await page.getByRole('button', { name: 'Verify' }).click()
  await page.getByRole('link', { name: 'Continue' }).click()
  await page.waitForURL(`${baseUrl}/`)
}

async function noSeriousViolations (t: Test, page: Page, where: string): Promise<void> {
  t.same(await seriousViolations(page), [], `axe: nothing serious on ${where}`)
}

t.test('a trusted browser skips the code; settings forgets it and signs other sessions out', async (t) => {
  const newContext = async (): Promise<BrowserContext> => {
    const context = await browser.newContext({ viewport: { width: 1024, height: 800 } })
    t.teardown(() => context.close())
    return context
  }
  const [contextA, contextB] = await Promise.all([newContext(), newContext()])
  const page = await contextA.newPage()
  const trouble = watchForTrouble(page)
  const run: Run = { t, page, js: true, name: 'trusted', user: 'alice' } // for shot() only

  // carol turns 2FA on from settings.
  await signInAs(page, CAROL)
  t.equal(page.url(), `${baseUrl}/`, 'no 2FA yet: the password alone')
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Two-factor settings' }).click()
  await page.getByRole('link', { name: 'Turn on two-factor authentication' }).click()
  await page.getByText('Can’t scan the code?').click()
  const manualKey = (await page.locator('#tf-manual-key').textContent())!.trim()
  await page.getByRole('link', { name: 'Next: enter a code' }).click()
  await page.getByLabel('Authentication code').fill(await previousCode(manualKey))
  await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click()
  await page.getByRole('button', { name: 'I have saved them' }).waitFor()
  const codes = (await page.locator('#tf-code-list li').allTextContents()).map((code) => code.trim())
  t.equal(codes.length, 10, 'ten recovery codes')
  await page.getByRole('button', { name: 'I have saved them' }).click()
  await page.getByRole('heading', { name: 'Two-factor authentication is on' }).waitFor()

  // Sign in with a code, the box ticked.
  await signOutAs(page, CAROL.username)
  await signInAs(page, CAROL)
  t.equal(page.url(), `${baseUrl}/2fa/challenge`, 'the code is asked')
  const box = page.getByLabel('Don’t ask again on this browser for 30 days')
  t.notOk(await box.isChecked(), 'the box starts unticked')
  await page.getByLabel('Authentication code').fill(await currentCode(manualKey))
  await box.check()
  await shot(run, '01-box-ticked')
  await page.getByRole('button', { name: 'Verify' }).click()
  await page.waitForURL(`${baseUrl}/`)
  const trustCookie = (await contextA.cookies()).find((cookie) => cookie.name.endsWith('tf.trust'))
  t.ok(trustCookie, 'the browser holds a trust cookie')
  t.ok(trustCookie?.httpOnly, 'HttpOnly')
  const days = ((trustCookie?.expires ?? 0) * 1000 - Date.now()) / (24 * 60 * 60_000)
  t.ok(days > 29.9 && days <= 30, `it lasts the 30 days of the trust (${days.toFixed(3)})`)

  // Signed out and in again in the same browser: the password alone signs in.
  await signOutAs(page, CAROL.username)
  t.ok((await contextA.cookies()).some((cookie) => cookie.name.endsWith('tf.trust')), 'trust survives sign-out')
  await signInAs(page, CAROL)
  t.equal(page.url(), `${baseUrl}/`, 'no code asked: this browser is trusted')
  t.match(await page.getByRole('heading', { level: 1 }).textContent(), /Welcome, carol/, 'signed in')
  t.not((await contextA.cookies()).find((cookie) => cookie.name.endsWith('tf.trust'))?.value, trustCookie?.value, 'its token was replaced at use')
  await shot(run, '02-signed-in-without-code')

  // A trusted browser never counts as a fresh code: a sensitive page still asks for one.
  await page.getByRole('link', { name: 'Export your data' }).click()
  await page.waitForURL((url) => url.pathname === '/2fa/step-up')
  t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Confirm it’s you', 'step-up asks for a code')
  t.equal(await page.getByLabel(/Don’t ask again/).count(), 0, 'and offers no box')

  // Settings lists this browser under trusted browsers; "Forget" it.
  await page.goto(`${baseUrl}/2fa/settings`)
  const trusted = page.getByRole('region', { name: 'Trusted browsers' })
  const trustedItems = trusted.getByRole('listitem')
  t.equal(await trustedItems.count(), 1, 'one trusted browser')
  const label = (await trustedItems.first().locator('strong').textContent())!.trim()
  t.match(label, /Linux/, `named from its user agent (${label})`)
  t.match(await trustedItems.first().textContent(), /trusted since .+, last used .+, until .+/, 'with its dates')
  await shot(run, '03-trusted-browsers')
  await noSeriousViolations(t, page, 'settings with a trusted browser')
  await trusted.getByRole('button', { name: `Forget ${label}`, exact: true }).click()
  await trusted.getByRole('status').filter({ hasText: 'That browser will be asked for a code again.' }).waitFor()
  t.equal(await trustedItems.count(), 0, 'forgotten: no trusted browser left')
  t.ok(await trusted.getByText('No browser skips the code.').isVisible(), 'the list says so')
  t.equal(page.url(), `${baseUrl}/2fa/settings`, 'swapped in place')
  await shot(run, '04-forgotten')

  // The next sign-in in this browser asks for a code again (a recovery code: this step's code is used).
  await signOutAs(page, CAROL.username)
  await signInAs(page, CAROL)
  t.equal(page.url(), `${baseUrl}/2fa/challenge`, 'a forgotten browser is asked for the code')
  await answerWithRecoveryCode(page, codes[0]!)

  // A second browser signs in too.
  const other = await contextB.newPage()
  await signInAs(other, CAROL)
  t.equal(other.url(), `${baseUrl}/2fa/challenge`, 'the other browser is asked for the code')
  await answerWithRecoveryCode(other, codes[1]!)

  // Settings lists both sessions, this one marked; "Sign out all other sessions".
  await page.goto(`${baseUrl}/2fa/settings`)
  const sessions = page.getByRole('region', { name: 'Where you’re signed in' })
  const sessionItems = sessions.getByRole('listitem')
  t.equal(await sessionItems.count(), 2, 'two signed-in sessions')
  t.equal(await sessionItems.filter({ hasText: 'this browser' }).count(), 1, 'this one marked')
  await shot(run, '05-sessions')
  await noSeriousViolations(t, page, 'settings with two sessions')
  await sessions.getByRole('button', { name: 'Sign out all other sessions' }).click()
  await sessions.getByRole('status').filter({ hasText: '1 other session is signed out.' }).waitFor()
  t.equal(await sessionItems.count(), 1, 'only this session left')
  t.ok(await sessions.getByText('This is your only signed-in session.').isVisible(), 'the list says so')
  t.equal(page.url(), `${baseUrl}/2fa/settings`, 'swapped in place')
  await shot(run, '06-others-signed-out')

  // The other browser's next navigation goes to the login page; this one stays signed in.
  await other.goto(`${baseUrl}/`)
  t.equal(new URL(other.url()).pathname, '/login', 'the other session is signed out')
  await page.goto(`${baseUrl}/`)
  t.match(await page.getByRole('heading', { level: 1 }).textContent(), /Welcome, carol/, 'this one is still signed in')

  const types: string[] = harness.events.filter((e) => e.userId === 'carol').map((e) => e.type)
  for (const type of ['device.trusted', 'device.used', 'device.revoked', 'sessions.ended']) t.ok(types.includes(type), `audited: ${type}`)
  t.same(trouble, [], 'no script errors, nothing blocked by the CSP')
})

t.test('what the browser did is in the audit trail', async (t) => {
  for (const user of ['alice', 'bob']) {
    const types: string[] = harness.events.filter((e) => e.userId === user).map((e) => e.type)
    for (const type of ['enrolment.started', 'enrolment.completed', 'recovery.used', 'challenge.succeeded', 'recovery.regenerated', 'disabled']) {
      t.ok(types.includes(type), `${user}: ${type}`)
    }
  }
})
