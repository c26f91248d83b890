// The plugin's own Eta instance, given to @fastify/view (an instance of its own, so a host that
// uses Eta keeps its configuration). A template in the host's `templatesDir` replaces the
// plugin's of the same name; names resolve from the root of either folder, so a host's
// template can include the plugin's partials.
import { existsSync, statSync } from 'node:fs'
import { extname, join, normalize } from 'node:path'
import { Eta } from 'eta'
import { PLUGIN_TEMPLATES_DIR } from './templates-dir.ts'

export function createEta (overrideDir: string | undefined): Eta {
  const eta = new Eta({ views: PLUGIN_TEMPLATES_DIR, cache: true, autoEscape: true, autoTrim: false })
  const resolved = new Map<string, string>()
  const folders = overrideDir === undefined ? [PLUGIN_TEMPLATES_DIR] : [overrideDir, PLUGIN_TEMPLATES_DIR]
  eta.resolvePath = function resolvePath (template: string): string {
    const cached = resolved.get(template)
    if (cached !== undefined) return cached
    const name = normalize(template.replace(/^[/\\]+/, '') + (extname(template) === '' ? '.eta' : ''))
    if (name.startsWith('..')) throw new Error(`Template "${template}" is outside the templates folder`)
    for (const dir of folders) {
      const path = join(dir, name)
      if (existsSync(path)) {
        resolved.set(template, path)
        return path
      }
    }
    throw new Error(`Template "${template}" not found`)
  }
  return eta
}

/** True when `dir` is a folder (a `templatesDir` that isn't stops startup). */
export function isFolder (dir: string): boolean {
  try {
    return statSync(dir).isDirectory()
  } catch {
    return false
  }
}
