// How the pages look and read on a 320 px phone and a desktop, light and dark: nothing wider
// than the screen, touch targets of 44 px, dark mode following the system, no serious axe
// finding in either scheme (contrast included). Screenshots of each go to test-output/ to look at.
import t, { type Test } from 'tap'
import { passwordStep, PASSWORDS } from '../helpers/demo.ts'
import { launchBrowser, previousCode, screenshot, seriousViolations, serveDemo } from './support.ts'

const [{ baseUrl, harness }, browser] = await Promise.all([serveDemo(t), launchBrowser(t)])
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
t.teardown(() => context.close())
const page = await context.newPage()

const WIDTHS = [{ name: 'phone', width: 320 }, { name: 'desktop', width: 1280 }] as const
const SCHEMES = ['light', 'dark'] as const
const BACKGROUND = { light: 'rgb(246, 247, 249)', dark: 'rgb(15, 18, 23)' }

/** Every width and scheme of the page as it is now: checks, axe, and a screenshot of each. */
async function look (t: Test, state: string): Promise<void> {
  for (const scheme of SCHEMES) {
    await page.emulateMedia({ colorScheme: scheme })
    t.equal(await page.evaluate('getComputedStyle(document.body).backgroundColor'), BACKGROUND[scheme], `${state}: ${scheme} colours`)
    for (const { name, width } of WIDTHS) {
      await page.setViewportSize({ width, height: 800 })
      const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as number
      t.equal(overflow, 0, `${state}, ${name}: nothing wider than the screen`)
      const spilled = await page.evaluate(`[...document.querySelectorAll('.tf-card *')].filter((el) => {
        const card = el.closest('.tf-card').getBoundingClientRect(), box = el.getBoundingClientRect()
        return box.width > 0 && (box.right > card.right || box.left < card.left)
      }).map((el) => el.id || el.tagName + ' ' + el.textContent.trim().slice(0, 30))`) as string[]
      t.same(spilled, [], `${state}, ${name}: nothing spills out of the card`)
      const small = await page.evaluate(`[...document.querySelectorAll('.tf-button, .tf-link, input:not([type=hidden]):not([type=checkbox]), summary, .tf-check')]
        .filter((el) => el.getClientRects().length > 0 && el.getBoundingClientRect().height < 44)
        .map((el) => el.id || el.textContent.trim())`) as string[]
      t.same(small, [], `${state}, ${name}: touch targets at least 44 px high (a checkbox: its row with the label)`)
      await screenshot(page, `looks-${state}-${name}-${scheme}`)
    }
    t.same(await seriousViolations(page), [], `${state}, ${scheme}: axe finds nothing serious`)
  }
  await page.emulateMedia({ colorScheme: 'light' })
  await page.setViewportSize({ width: 1280, height: 800 })
}

/** The recovery-code panel, from a small phone to a wide desktop: no sideways scrolling, every code whole on screen. */
async function recoveryPanelFits (t: Test): Promise<void> {
  for (const width of [320, 900, 1440]) {
    await page.setViewportSize({ width, height: 900 })
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as number
    t.equal(overflow, 0, `recovery panel at ${width} px: no horizontal scrolling`)
    const cut = await page.evaluate(`[...document.querySelectorAll('#tf-code-list li')].filter((li) => {
      const box = li.getBoundingClientRect()
      return box.left < 0 || box.right > document.documentElement.clientWidth || li.scrollWidth > li.clientWidth
    }).length`) as number
    t.equal(cut, 0, `recovery panel at ${width} px: every code whole on screen`)
    await screenshot(page, `recovery-panel-${width}`)
  }
  await page.setViewportSize({ width: 1280, height: 800 })
}

async function signIn (): Promise<void> {
  await page.goto(`${baseUrl}/login`)
  await page.fill('#username', 'alice')
  await page.fill('#password', PASSWORDS.alice)
  await page.click('form[action="/login"] button[type=submit]')
  await page.waitForURL((url) => url.pathname !== '/login')
}

t.test('the wizard, the challenge and settings on a phone and a desktop, light and dark', async (t) => {
  await signIn()
  await page.goto(`${baseUrl}/2fa/setup`)
  await page.click('text=Can’t scan the code?')
  const manualKey = (await page.textContent('#tf-manual-key'))!.trim()
  await look(t, 'scan')

  await page.click('text=Next: enter a code')
  await page.fill('#tf-setup-code', '000000')
  await page.click('#tf-setup button[type=submit]')
  await page.waitForSelector('#tf-setup-error:not([hidden])')
  await look(t, 'confirm-error')

  await page.fill('#tf-setup-code', await previousCode(manualKey))
  await page.click('#tf-setup button[type=submit]')
  await page.waitForSelector('#tf-code-list')
  const codes = (await page.locator('#tf-code-list li').allTextContents()).map((code) => code.trim())
  await look(t, 'codes')
  await recoveryPanelFits(t)
  await page.emulateMedia({ media: 'print' })
  await screenshot(page, 'looks-codes-print')
  await page.emulateMedia({ media: 'screen' })
  await page.click('text=I have saved them')
  await page.waitForSelector('#tf-setup[data-step="done"]')

  // Seven recovery codes used elsewhere (over HTTP) leave three: the warnings show.
  for (const code of codes.slice(0, 7)) {
    const client = harness.client()
    await passwordStep(client, 'alice', PASSWORDS.alice)
    await client.get('/2fa/challenge')
    const used = await client.post('/2fa/challenge', { recoveryCode: code })
    if (used.statusCode !== 200) throw new Error(`recovery code refused: ${used.statusCode}`)
  }

  await page.goto(`${baseUrl}/`)
  await page.click('text=Sign out alice')
  await page.waitForURL(`${baseUrl}/login`)
  await signIn()
  await page.fill('#tf-code', '000000')
  await page.click('#tf-challenge button[type=submit]')
  await page.waitForSelector('#tf-challenge-error:not([hidden])')
  await look(t, 'challenge-error')

  await page.click('text=Use a recovery code')
  await page.waitForSelector('#tf-recovery')
  await page.fill('#tf-recovery', codes[7]!)
  await page.click('#tf-challenge button[type=submit]')
  await page.waitForSelector('#tf-recovery-used #tf-low-codes')
  await look(t, 'recovery-used')

  await page.goto(`${baseUrl}/2fa/settings`)
  await page.waitForSelector('#tf-low-codes')
  t.match(await page.textContent('#tf-low-codes'), /You have only 2 recovery codes left\./)
  await look(t, 'settings')
})
