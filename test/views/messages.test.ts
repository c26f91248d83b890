// The message catalogues and the templates that use them: every locale has every key of
// English with the same placeholders, every key the templates and the plugin name exists in
// every locale, and no template carries words of its own (a person reads only catalogue text).
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ERROR_CODES } from '../../plugin/errors.ts'
import { STATUS_FILTERS } from '../../plugin/services/admin-users.ts'
import { EVENT_TYPES } from '../../plugin/services/audit.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TEMPLATES = join(ROOT, 'templates')
const MESSAGES = join(TEMPLATES, 'messages')
const PLUGIN = join(ROOT, 'plugin')

function filesUnder (dir: string, suffix: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(suffix))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort()
}

function readCatalogue (path: string): Record<string, string> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>
}

const placeholders = (text: string): string[] => [...new Set([...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!))].sort()

const en = readCatalogue(join(MESSAGES, 'en.json'))
const locales = readdirSync(MESSAGES).filter((name) => name.endsWith('.json')).sort()
const catalogues = new Map(locales.map((name) => [name.slice(0, -'.json'.length), readCatalogue(join(MESSAGES, name))]))
const templates = filesUnder(TEMPLATES, '.eta').map((path) => ({ name: relative(TEMPLATES, path), source: readFileSync(path, 'utf8') }))

/** The code of a template's Eta tags (`<% … %>`, `<%= … %>`, `<%~ … %>`), comments left out. */
function etaCode (source: string): string[] {
  return [...source.matchAll(/<%[=~]?([\s\S]*?)%>/g)].map((m) => m[1]!.replace(/\/\*[\s\S]*?\*\//g, ''))
}

/** The string literals of a piece of JavaScript. */
function stringLiterals (code: string): string[] {
  return [...code.matchAll(/'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\]|\\.)*)`/g)].map((m) => m[1] ?? m[2] ?? m[3] ?? '')
}

const KEY_SHAPE = /^[a-z][a-z_]*(?:\.[a-z0-9][a-z0-9_-]*)+$/

t.test('every locale has exactly the keys of English, with the same placeholders', async (t) => {
  t.ok(catalogues.has('en') && catalogues.has('de'), `the shipped locales: ${[...catalogues.keys()].join(', ')}`)
  const keys = Object.keys(en).sort()
  t.ok(keys.length > 100, `${keys.length} keys in en.json`)
  for (const [locale, catalogue] of catalogues) {
    t.same(Object.keys(catalogue).sort(), keys, `${locale}.json: the same keys as en.json`)
    for (const [key, text] of Object.entries(catalogue)) {
      t.equal(typeof text, 'string', `${locale}: ${key} is text`)
      if (typeof text !== 'string') continue
      t.ok(text.trim() !== '' && text.trim() === text, `${locale}: ${key} is neither empty nor padded`)
      t.notMatch(text, /<\/?[a-z][^>]*>/i, `${locale}: ${key} has no markup (markup stays in the templates)`)
      if (key in en) t.same(placeholders(text), placeholders(en[key]!), `${locale}: ${key} has the placeholders of English`)
    }
  }
})

t.test('every key the templates and the plugin name is in every catalogue', async (t) => {
  const used = new Map<string, string>()

  for (const { name, source } of templates) {
    const code = etaCode(source)
    for (const literal of code.flatMap(stringLiterals)) if (KEY_SHAPE.test(literal)) used.set(literal, name)
    // Every t(…) names its key as a literal (or picks one of two, for plurals), so the scan above sees it.
    for (const call of code.join('\n').matchAll(/\bt\(\s*([^,)]*)/g)) {
      const arg = call[1]!.trim()
      t.ok(/^'[^']+'$/.test(arg) || /^[^']*\?\s*'[^']+'\s*:\s*'[^']+'$/.test(arg), `${name}: t(${arg}) names its key literally`)
    }
    t.notMatch(source, /<%~[^%]*\bt\(/, `${name}: catalogue text is always escaped (<%= t(…) %>, never <%~)`)
  }
  t.ok(used.size > 100, `${used.size} keys named in the templates`)

  // The plugin's literal keys, by the groups its messages use. Audit event types share the
  // dotted shape (`challenge.failed`, `sessions.ended`); they are not messages.
  const events = new Set<string>(EVENT_TYPES)
  for (const path of filesUnder(PLUGIN, '.ts')) {
    const source = readFileSync(path, 'utf8')
    for (const m of source.matchAll(/'((?:error|title|challenge|setup|settings|sessions|admin|link|code|stepup)\.[a-z_.-]+)'/g)) {
      if (!events.has(m[1]!)) used.set(m[1]!, relative(ROOT, path))
    }
  }
  // The keys the plugin builds from a value, with every value it can have.
  const codes = Object.keys(ERROR_CODES)
  const statuses = STATUS_FILTERS.filter((status) => status !== 'all')
  for (const key of [
    ...codes.map((code) => `error.${code}`),
    ...codes.map((code) => `title.error.${code}`),
    ...statuses.map((status) => `admin.status.${status}`),
    ...STATUS_FILTERS.map((filter) => `admin.filter.${filter}`)
  ]) used.set(key, 'plugin (built from a value)')

  for (const [locale, catalogue] of catalogues) {
    const missing = [...used].filter(([key]) => !(key in catalogue)).map(([key, where]) => `${key} (${where})`)
    t.same(missing, [], `${locale}.json has every key in use`)
  }
})

// Words a template may show as they are: not language, so not the catalogue's.
const ALLOWED = [
  'listUsers', // the accounts adapter's method, shown as code
  'ABCD-EFGH-JKMN-PQRS' // the shape of a recovery code
]
// Attributes a person reads (or hears): their value must come whole from an Eta tag.
const READ_ATTRIBUTES = /\s(aria-label|title|placeholder|alt|hx-confirm|data-copied)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi
const ETA = '\u0001'

/** The English a template shows on its own: words in text nodes, read attributes, strings in its code. */
function ownWords (source: string): string[] {
  const found: string[] = []
  const lineOf = (text: string, index: number) => text.slice(0, index).split('\n').length
  // Strings in the code that read as words: a capitalised word, or two words with a space.
  for (const code of etaCode(source)) {
    for (const literal of stringLiterals(code)) {
      if (!KEY_SHAPE.test(literal) && (/\b[A-Z][a-z]+\b/.test(literal) || /[A-Za-z]{2,} +[A-Za-z]{2,}/.test(literal))) found.push(`code: '${literal}'`)
    }
  }
  // Each Eta tag as one marker (keeping its line breaks, for line numbers).
  const markup = source.replace(/<%[\s\S]*?%>/g, (tag) => ETA + tag.replace(/[^\n]/g, ''))
  const text = markup.replace(/<[a-zA-Z/!][^>]*>/g, (tag) => {
    if (!tag.startsWith('</') && !tag.startsWith('<!')) {
      for (const [, name, raw] of tag.matchAll(READ_ATTRIBUTES)) {
        const value = raw!.replace(/^["']|["']$/g, '')
        if (value !== ETA) found.push(`${name}="${value}"`)
      }
      if (/^<input\b/i.test(tag) && /\stype\s*=\s*["']?(submit|button|reset)/i.test(tag)) {
        const value = /\svalue\s*=\s*("[^"]*"|'[^']*')/i.exec(tag)?.[1]?.slice(1, -1)
        if (value !== undefined && value !== ETA) found.push(`value="${value}"`)
      }
    }
    return tag.replace(/[^\n]/g, ' ')
  })
  let visible = text.replace(/&(?:[a-z]+|#\d+|#x[0-9a-f]+);/gi, ' ')
  for (const allowed of ALLOWED) visible = visible.split(allowed).join(' '.repeat(allowed.length))
  for (const m of visible.matchAll(/[A-Za-z]{2,}/g)) found.push(`line ${lineOf(visible, m.index)}: ${m[0]}`)
  return found
}

t.test('the heuristic finds words a template shows on its own', async (t) => {
  t.same(ownWords(`<p><%= it.t('a.b') %></p>\n<button aria-label="<%= it.t('a.c') %>" class="x y" data-copy="#z">+</button>`), [], 'clean markup passes')
  t.same(ownWords('<p>\n  Hello <%= it.name %></p>'), ['line 2: Hello'], 'a text node')
  t.same(ownWords('<p>OK</p>'), ['line 1: OK'], 'a word of two letters')
  t.same(ownWords(`<nav aria-label="Pages"></nav><input placeholder="Name <%= x %>"><i title='Close'></i>`), ['aria-label="Pages"', `placeholder="Name ${ETA}"`, 'title="Close"'], 'read attributes')
  t.same(ownWords(`<button hx-confirm="Sure?">x</button><input type="submit" value="Send">`), ['hx-confirm="Sure?"', 'value="Send"'], 'confirmations and submit values')
  t.same(ownWords(`<p><%= it.on ? 'Yes' : 'off now' %></p>`), [`code: 'Yes'`, `code: 'off now'`], 'words in the code')
  t.same(ownWords(`<%/* Isn't this a comment? */%><% const id = 'tf-x', ok = it.t('b.c') %><div id="<%= id %>" class="tf a"></div>`), [], 'comments, ids and keys pass')
})

t.test('no template shows English of its own: every word is the catalogue’s', async (t) => {
  t.ok(templates.length >= 25, `${templates.length} templates`)
  for (const { name, source } of templates) t.same(ownWords(source), [], name)
})
