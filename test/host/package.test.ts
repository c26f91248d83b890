// What a host installs: the package's own dependencies stay few and small (no TypeScript runner,
// no whole htmx.org package for one file, no QR or OTP library with a CLI's dependencies), the
// host's choices are peers, and the vendored htmx is the very file of the pinned htmx.org.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import t from 'tap'
import { createHarness, passwordStep, PASSWORDS } from '../helpers/demo.ts'

const require = createRequire(import.meta.url)
const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
  peerDependencies: Record<string, string>
  peerDependenciesMeta: Record<string, { optional?: boolean }>
}
const vendored = readFileSync(new URL('../../assets/vendor/htmx.min.js', import.meta.url))

t.test('runtime dependencies: none runs TypeScript, none is a peer as well, none of the heavy ones', async (t) => {
  const runtime = Object.keys(manifest.dependencies)
  for (const name of ['tsx', 'ts-node', 'typescript', 'esbuild', 'fastify', 'drizzle-orm', 'postgres', 'pg', '@electric-sql/pglite', 'htmx.org', 'qrcode', 'otpauth']) {
    t.notOk(runtime.includes(name), `${name} is not a dependency`)
  }
  t.same(Object.keys(manifest.peerDependencies).sort(), ['@electric-sql/pglite', 'drizzle-orm', 'fastify', 'postgres'])
  t.equal(manifest.peerDependenciesMeta['@electric-sql/pglite']?.optional, true, 'PGlite is an optional peer')
  t.match(manifest.peerDependencies.postgres, /\^3\.4\.9 \|\| \^4\./, 'postgres.js 3.4 and 4 both satisfy the peer: a fresh `npm i postgres` gets 4')
})

t.test('the vendored htmx is byte for byte the pinned htmx.org build, and it is what the pages load', async (t) => {
  const pinned = manifest.devDependencies['htmx.org']
  t.match(pinned, /^\d+\.\d+\.\d+$/, 'htmx.org is pinned exactly, so the copy has one version to match')
  const upstream = readFileSync(require.resolve('htmx.org/dist/htmx.min.js'))
  t.ok(vendored.equals(upstream), `assets/vendor/htmx.min.js is htmx.org@${pinned}'s dist/htmx.min.js (after an update, copy it again: see assets/vendor/README.md)`)
  t.match(readFileSync(new URL('../../assets/vendor/README.md', import.meta.url), 'utf8'), `htmx ${pinned}`, 'the vendor note names the version')

  const h = await createHarness(t)
  const client = h.client()
  await passwordStep(client, 'alice', PASSWORDS.alice)
  const page = await client.get('/2fa/setup')
  const src = /<script src="([^"]*htmx\.min\.js\?v=[0-9a-f]{12})"/.exec(page.body)?.[1]
  t.ok(src, 'the page loads htmx from the plugin, by content hash')
  const served = await h.app.inject({ method: 'GET', url: src! })
  t.equal(served.statusCode, 200)
  t.ok(served.rawPayload.equals(vendored), 'the file served is the vendored one')
  t.match(served.headers['cache-control'], /immutable/, 'cached for good: the URL changes with the content')
})
