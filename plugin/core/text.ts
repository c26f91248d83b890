// Text that can't be stored or shown safely, refused before anything changes.
//
// Postgres text can't hold U+0000 (PGlite can: the same input would fail on one database and
// not the other); jsonb refuses a lone surrogate (an audit event's details would fail after the
// change it records); C0 controls and DEL have no place in any field the plugin reads (codes,
// passwords typed in a browser, reasons, searches, role names) and can forge log lines or
// terminal output. Browsers never send them from a form; only a crafted request does.

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

/** True for a string holding a C0 control, DEL or a lone surrogate. */
export function isUnsafeText (value: string): boolean {
  return CONTROL.test(value) || !value.isWellFormed()
}

/** The first unsafe string found in a parsed input (params, query, body), or null. Keys count too. */
export function findUnsafeText (value: unknown, depth = 0): string | null {
  if (typeof value === 'string') return isUnsafeText(value) ? value : null
  if (value === null || typeof value !== 'object' || depth > 8) return null
  for (const [key, item] of Object.entries(value)) {
    if (isUnsafeText(key)) return key
    const found = findUnsafeText(item, depth + 1)
    if (found !== null) return found
  }
  return null
}

/** For text that is stored or logged but not refused (a user agent): controls become spaces, lone surrogates U+FFFD. */
export function neutralise (value: string, maxLength = 512): string {
  // eslint-disable-next-line no-control-regex
  return value.toWellFormed().replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, ' ').slice(0, maxLength)
}
