// A real QR reader: the inline SVG on the setup page, rasterised by rsvg-convert and decoded by
// zbarimg, is the otpauth URI an authenticator expects, holding the key the page shows.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import fc from 'fast-check'
import { DEFAULT_TOTP, generateSecret, otpauthUri } from '../../plugin/core/totp.ts'
import { qrSvg } from '../../plugin/views/qr.ts'
import { createHarness, manualKeyFrom, passwordStep, PASSWORDS } from '../helpers/demo.ts'

/** What a phone's reader gets from the SVG: rasterised with no background of its own, then decoded. */
function decode (dir: string, svg: string): string {
  writeFileSync(join(dir, 'qr.svg'), svg)
  execFileSync('rsvg-convert', ['-z', '4', '-o', join(dir, 'qr.png'), join(dir, 'qr.svg')])
  return execFileSync('zbarimg', ['--raw', '-q', join(dir, 'qr.png')], { encoding: 'utf8' }).replace(/\n$/, '')
}

t.test('any key URI decodes back exactly: issuers and accounts over all of Unicode, short and long, every parameter', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-qr-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const text = fc.string({ unit: 'binary', maxLength: 60 })
  const params = fc.record({ algorithm: fc.constantFrom('SHA1' as const, 'SHA256' as const, 'SHA512' as const), digits: fc.constantFrom(6, 8), period: fc.constantFrom(30, 60), window: fc.constant(1) })
  let largest = 0
  fc.assert(fc.property(text, text, params, (issuer, account, totp) => {
    const uri = otpauthUri({ issuer, account, secret: generateSecret(), params: totp })
    largest = Math.max(largest, uri.length)
    return decode(dir, qrSvg(uri)) === uri
  }), { numRuns: 60 })
  // The longest URI there can be: both parts past the cap in 4-byte characters, the longest
  // parameters. Uncapped, a label this long would not fit any QR code and the page would fail.
  const longest = otpauthUri({ issuer: '😀'.repeat(500), account: '😀'.repeat(500), secret: generateSecret(), params: { algorithm: 'SHA512', digits: 8, period: 60, window: 1 } })
  t.equal(decode(dir, qrSvg(longest)), longest, `the longest URI, ${longest.length} characters`)
  t.pass(`60 random URIs decode back, the longest ${largest} characters`)
})

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

  const uri = decode(dir, svg!)

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
