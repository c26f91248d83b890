// Builds docs/http-api.json, the OpenAPI document of the plugin's HTTP surface, from the route
// schemas themselves (so the document can't say what the routes don't do). `npm run docs`
// writes it; test/docs/http-api.test.ts fails when the committed file is stale.
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import swagger from '@fastify/swagger'
import { drizzle } from 'drizzle-orm/pglite'
import Fastify from 'fastify'
import twoFactor, { Keyring, type TwoFactorDatabase } from '../plugin/index.ts'

export const HTTP_API_FILE = fileURLToPath(new URL('./http-api.json', import.meta.url))

/** Paths that are not API: static files and the bare admin entry (a redirect). */
const HIDDEN = [/^\/2fa\/assets\//, /^\/2fa\/admin$/]

export async function buildHttpApi (): Promise<string> {
  const client = new PGlite()
  // The plugin's start includes PGlite's first connection: seconds on a busy machine.
  const app = Fastify({ pluginTimeout: 120_000 })
  try {
    await app.register(swagger, {
      openapi: {
        info: {
          title: 'fastify-two-factor',
          version: '0.1.0',
          description: 'The routes the plugin adds under its prefix (here /2fa). Every route answers JSON to `Accept: application/json`, an htmx fragment to `HX-Request: true`, and a page otherwise. Forms post `application/x-www-form-urlencoded` with `_csrf`; JSON clients send `x-csrf-token`. Every JSON answer carries `csrfToken` for the session as it is after the request.'
        }
      },
      transform: ({ schema, url, route }) => ({ schema: { ...schema, hide: HIDDEN.some((pattern) => pattern.test(url)) || !url.startsWith('/2fa') } as never, url, route })
    })
    await app.register(twoFactor, {
      database: drizzle(client) as unknown as TwoFactorDatabase,
      keys: Keyring.generateSpec('k1'),
      session: { secret: 'a session secret for the document only, 32+ characters' },
      accounts: { findUser: () => null, userId: (u: { id: string }) => u.id, label: (u: { id: string }) => u.id, verifyPassword: () => false }
    })
    await app.ready()
    return JSON.stringify(app.swagger(), null, 2) + '\n'
  } finally {
    await app.close()
    await client.close()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(HTTP_API_FILE, await buildHttpApi())
  console.log(`Wrote ${HTTP_API_FILE}`)
}
