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

/** The locale an `Accept-Language` header prefers among `available`, else `fallback`. */
export function negotiateLocale (header: unknown, available: readonly string[], fallback = DEFAULT_LOCALE): string {
  if (typeof header !== 'string' || header.length > 1000) return fallback
  const wanted = header.split(',').map((part, index) => {
    const [tag = '', ...params] = part.trim().split(';')
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined)
    return { tag: tag.trim().toLowerCase(), q: q === undefined ? 1 : Number(q), index }
  }).filter((w) => w.tag !== '' && w.q > 0).sort((a, b) => b.q - a.q || a.index - b.index)
  for (const { tag } of wanted) {
    if (tag === '*') return fallback
    const exact = available.find((locale) => locale.toLowerCase() === tag)
    if (exact !== undefined) return exact
    const base = available.find((locale) => locale.toLowerCase() === tag.split('-')[0])
    if (base !== undefined) return base
  }
  return fallback
}

/** Every shipped locale's messages (a host's `templatesDir/messages` overriding keys), and the choice per request. */
export class Messages {
  private readonly translators = new Map<string, Translate>()
  readonly locales: readonly string[]

  constructor (overrideDir: string | undefined) {
    this.locales = shippedLocales()
    const dirs = overrideDir === undefined ? [MESSAGES_DIR] : [join(overrideDir, 'messages'), MESSAGES_DIR]
    for (const locale of this.locales) this.translators.set(locale, translator(loadCatalogue(locale, dirs)))
  }

  /** The translator for a locale (English for one not shipped). */
  for (locale: string): Translate {
    return this.translators.get(locale) ?? this.translators.get(DEFAULT_LOCALE)!
  }
}

/** The reasons of a requirement in words: "required: role finance; …", or, as `because`, "role finance; …". */
export function describeRequirement (t: Translate, parts: ReadonlyArray<{ name: string, params: MessageParams }>, form: 'rule' | 'because' = 'rule'): string {
  return parts.map((part) => t(`${form === 'rule' ? 'requirement' : 'requirement.because'}.${part.name}`, part.params)).join('; ')
}

let english: Translate | undefined
/** English, for text that leaves the plugin outside a request (the host API, the CLI, errors a host handles). */
export function englishMessages (): Translate {
  english ??= translator(loadCatalogue(DEFAULT_LOCALE))
  return english
}
