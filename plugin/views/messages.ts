// Every word the plugin says to a person (pages, fragments, JSON `message`, errors) comes from a
// message catalogue: `templates/messages/<locale>.json`, flat keys, `{name}` placeholders.
// Routes and services name a key; only this module turns it into text.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PLUGIN_TEMPLATES_DIR } from './templates-dir.ts'

export type MessageKey = string
export type MessageParams = Record<string, string | number>

export type Catalogue = Readonly<Record<MessageKey, string>>

export const DEFAULT_LOCALE = 'en'
export const MESSAGES_DIR = join(PLUGIN_TEMPLATES_DIR, 'messages')

/** The locales shipped with the plugin (one JSON file each). */
export function shippedLocales (dir = MESSAGES_DIR): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -'.json'.length)).sort()
}

export function loadCatalogue (locale: string, dirs: readonly string[] = [MESSAGES_DIR]): Catalogue {
  const merged: Record<string, string> = {}
  // The plugin's own file first; a host's file of the same name (templatesDir) overrides keys.
  for (const dir of [...dirs].reverse()) {
    const path = join(dir, `${locale}.json`)
    if (!existsSync(path)) continue
    const entries = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
    for (const [key, value] of Object.entries(entries)) if (typeof value === 'string') merged[key] = value
  }
  return merged
}

/** `{name}` placeholders filled from `params`; a key with no entry shows as itself, so a gap is visible, never fatal. */
export function format (catalogue: Catalogue, key: MessageKey, params: MessageParams = {}): string {
  const template = catalogue[key] ?? key
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => name in params ? String(params[name]) : whole)
}

/** What templates and routes call: `t('challenge.invalid_code', { minutes: 2 })`. */
export type Translate = (key: MessageKey, params?: MessageParams) => string

export function translator (catalogue: Catalogue): Translate {
  return (key, params) => format(catalogue, key, params)
}
