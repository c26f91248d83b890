// A real QR reader: the inline SVG on the setup page, rasterised by rsvg-convert and decoded by
// zbarimg, is the otpauth URI an authenticator expects, holding the key the page shows.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createHarness, manualKeyFrom, passwordStep, PASSWORDS } from '../helpers/demo.ts'

t.test('the setup page QR code decodes to otpauth://totp/Issuer:account with the manual key', async (t) => {
  const h = await createHarness(t)
  const dir = mkdtempSync(join(tmpdir(), 'tf-qr-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice)
  const page = await client.get('/2fa/setup')
  const manualKey = manualKeyFrom(page.body).replace(/ /g, '')
  const svg = /<svg[\s\S]*?<\/svg>/.exec(page.body)?.[0]
  t.ok(svg, 'the page holds an inline SVG')

  writeFileSync(join(dir, 'qr.svg'), svg!)
  execFileSync('rsvg-convert', ['-z', '4', '-b', 'white', '-o', join(dir, 'qr.png'), join(dir, 'qr.svg')])
  const uri = execFileSync('zbarimg', ['--raw', '-q', join(dir, 'qr.png')], { encoding: 'utf8' }).trim()

  const match = /^otpauth:\/\/totp\/([^?]+)\?(.+)$/.exec(uri)
  t.ok(match, `an otpauth TOTP URI: ${uri.replace(/secret=[A-Z2-7]+/, 'secret=…')}`)
  t.equal(decodeURIComponent(match![1]!), 'Demo App:alice', 'label Issuer:account')
  const params = new URLSearchParams(match![2]!)
  t.equal(params.get('secret'), manualKey, 'the secret is the manual key')
  t.equal(params.get('issuer'), 'Demo App')
  t.equal(params.get('algorithm'), 'SHA1')
  t.equal(params.get('digits'), '6')
  t.equal(params.get('period'), '30')

  const json = await client.get('/2fa/setup', { json: true })
  t.equal(JSON.parse(json.body).otpauthUri, uri, 'the same URI as JSON clients get')
})
