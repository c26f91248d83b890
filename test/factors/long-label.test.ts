// Rule: whatever the host's account names are, the setup page shows a QR code that a phone
// reads: the key URI keeps a bounded start of the issuer and the account name.
//
// Tested at the HTTP level with a user whose name is 700 three-byte characters: uncapped, its
// key URI (over 6 000 characters) would fit no QR code and the setup page would fail.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { URI_PART_MAX_BYTES } from '../../plugin/core/totp.ts'
import { answerOf } from '../helpers/client.ts'
import { createHost, login } from '../fixtures/host.ts'

const LONG_NAME = '漢'.repeat(700)

const host = await createHost(t, { users: [{ id: LONG_NAME, password: 'long-password' }] })

t.test('a very long account name still gives a setup page whose QR code decodes to the capped key URI', async (t) => {
  const client = host.client()
  t.equal(answerOf(await login(client, LONG_NAME, 'long-password')).state, 'signed-in')
  const setup = answerOf(await client.get('/2fa/setup', { json: true }))
  const uri = String(setup.otpauthUri)
  const label = decodeURIComponent(new URL(uri).pathname.replace(/^\/\/totp\//, '').replace(/^\/?totp\//, ''))
  t.ok(Buffer.byteLength(label) < 2 * URI_PART_MAX_BYTES, `the label is bounded (${Buffer.byteLength(label)} bytes)`)

  const page = await client.get('/2fa/setup')
  t.equal(page.statusCode, 200, 'the page renders')
  const svg = /<svg[\s\S]*?<\/svg>/.exec(page.body)?.[0]
  t.ok(svg, 'with a QR code')
  const dir = mkdtempSync(join(tmpdir(), 'tf-label-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'qr.svg'), svg!)
  execFileSync('rsvg-convert', ['-z', '4', '-o', join(dir, 'qr.png'), join(dir, 'qr.svg')])
  const decoded = execFileSync('zbarimg', ['--raw', '-q', join(dir, 'qr.png')], { encoding: 'utf8' }).replace(/\n$/, '')
  t.equal(decoded, uri, 'the phone reads the same URI the JSON gives')
})
