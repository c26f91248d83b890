// What the browser tests share: the demo app served on a free port of 127.0.0.1 with the real
// clock (the browser and the authenticator both live in real time), Debian's Chromium driven by
// playwright-core, axe-core run inside the page, and screenshots under test-output/.
import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser, type Page } from 'playwright-core'
import { codeFor, createHarness, PASSWORDS, type Harness } from '../helpers/demo.ts'

export const SCREENSHOT_DIR = join(process.cwd(), 'test-output', 'screenshots')

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync'
]

interface Teardown { teardown (fn: () => unknown): void }

export interface ServedDemo {
  harness: Harness
  baseUrl: string
}

export interface DemoUser { username: string, password: string, role?: string }

/**
 * The demo app on the test database, listening on 127.0.0.1 with the real clock. `extraUsers`
 * are seeded besides admin, alice and bob (for a test that needs an account of its own).
 */
export async function serveDemo (t: Teardown, options: { extraUsers?: DemoUser[] } = {}): Promise<ServedDemo> {
  const users: DemoUser[] | undefined = options.extraUsers === undefined
    ? undefined
    : [
        { username: 'admin', password: PASSWORDS.admin, role: 'admin' },
        { username: 'alice', password: PASSWORDS.alice },
        { username: 'bob', password: PASSWORDS.bob },
        ...options.extraUsers
      ]
  const harness = await createHarness(t, { app: { clock: Date.now }, ...(users === undefined ? {} : { users }) })
  await harness.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = harness.app.server.address() as AddressInfo
  return { harness, baseUrl: `http://127.0.0.1:${port}` }
}

/** One browser per test file; closed at teardown. */
export async function launchBrowser (t: Teardown): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS })
  t.teardown(() => browser.close())
  return browser
}

export async function screenshot (page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true })
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true })
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

export interface AxeViolation { id: string, impact: string | null, help: string, targets: string[] }

/**
 * Runs axe-core in the page and returns the serious and critical violations. The source is
 * evaluated through the DevTools protocol, which the page's CSP (no inline script) doesn't block.
 */
export async function seriousViolations (page: Page): Promise<AxeViolation[]> {
  if (!await page.evaluate('typeof window.axe === "object"')) await page.evaluate(axeSource)
  const results = await page.evaluate(`window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } })`) as {
    violations: Array<{ id: string, impact: string | null, help: string, nodes: Array<{ target: string[] }> }>
  }
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')) }))
}

const STEP_MS = 30_000

/**
 * The code an authenticator showed a moment ago, for the step before the current one (the
 * server accepts it: window ±1). Confirming with it leaves the current step unused, so the
 * next sign-in can type the code on screen now instead of waiting for the next step. Near the
 * end of a step it first waits for the next one, so the code is still in the window when it
 * arrives.
 */
export async function previousCode (manualKey: string): Promise<string> {
  await awayFromStepEnd()
  return codeFor(manualKey, Date.now(), -1)
}

/** The code the authenticator shows right now. */
export async function currentCode (manualKey: string): Promise<string> {
  await awayFromStepEnd()
  return codeFor(manualKey, Date.now())
}

/** Waits out the last 2 s of a step, so the code typed is the one the server's clock expects. */
async function awayFromStepEnd (): Promise<void> {
  const left = STEP_MS - (Date.now() % STEP_MS)
  if (left < 2_000) await new Promise((resolve) => setTimeout(resolve, left + 50))
}
