// Scripts and styles served by the plugin itself: htmx (a vendored copy, see assets/vendor) and
// the plugin's own small script and stylesheet. No CDN, no inline script, so the CSP can forbid
// both.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance, RouteShorthandOptions } from 'fastify'
import { PLUGIN_ASSETS_DIR } from '../views/templates-dir.ts'

interface Asset {
  body: Buffer
  type: string
  /** Content hash, put in the URL so the file can be cached for a year. */
  version: string
}

function load (path: string, type: string): Asset {
  const body = readFileSync(path)
  return { body, type, version: createHash('sha256').update(body).digest('hex').slice(0, 12) }
}

export function loadAssets (): Record<'htmx' | 'script' | 'styles', Asset> {
  return {
    htmx: load(join(PLUGIN_ASSETS_DIR, 'vendor', 'htmx.min.js'), 'text/javascript; charset=utf-8'),
    script: load(join(PLUGIN_ASSETS_DIR, 'two-factor.js'), 'text/javascript; charset=utf-8'),
    styles: load(join(PLUGIN_ASSETS_DIR, 'two-factor.css'), 'text/css; charset=utf-8')
  }
}

export type Assets = ReturnType<typeof loadAssets>

export const ASSET_FILES = { htmx: 'htmx.min.js', script: 'two-factor.js', styles: 'two-factor.css' } as const

export function assetPaths (prefix: string, assets: Assets): { htmx: string, script: string, styles: string } {
  return {
    htmx: `${prefix}/assets/${ASSET_FILES.htmx}?v=${assets.htmx.version}`,
    script: `${prefix}/assets/${ASSET_FILES.script}?v=${assets.script.version}`,
    styles: `${prefix}/assets/${ASSET_FILES.styles}?v=${assets.styles.version}`
  }
}

export async function assetRoutes (app: FastifyInstance, options: { assets: Assets, open: RouteShorthandOptions }): Promise<void> {
  for (const [key, file] of Object.entries(ASSET_FILES) as Array<[keyof Assets, string]>) {
    const asset = options.assets[key]
    app.get(`/assets/${file}`, options.open, async (_request, reply) => {
      return reply
        .type(asset.type)
        .header('Cache-Control', 'public, max-age=31536000, immutable')
        .header('ETag', `"${asset.version}"`)
        .send(asset.body)
    })
  }
}
