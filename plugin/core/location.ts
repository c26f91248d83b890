// The one way a URL from input becomes a redirect: every `Location`, `HX-Redirect` and
// `HX-Location` the plugin sends (and the demo app's) is built here.
//
// A header can carry only printable ASCII safely: Node refuses anything else with an exception
// that, thrown from a response already on its way, can end the process. And only a path on this
// site may come from input, or a crafted `returnTo` sends the user to another one. So: a path
// that starts with one "/" (not "//" or "/\", which browsers read as another host), with every
// character outside printable ASCII percent-encoded as UTF-8; anything else, the fallback.

const MAX_LENGTH = 2048

/** A same-origin path safe for a header, or `fallback`. */
export function safeLocation (value: unknown, fallback = '/'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LENGTH) return fallback
  let encoded = ''
  for (const char of value) {
    const code = char.codePointAt(0)!
    if (code > 0x20 && code < 0x7f) {
      encoded += char
      continue
    }
    // A lone surrogate is not text: there are no bytes to encode.
    if (code >= 0xd800 && code <= 0xdfff) return fallback
    encoded += percentEncode(char)
  }
  // Checked after encoding: "/\t/evil.example" is "//evil.example" to a browser (it drops tabs
  // and newlines), but "/%09/evil.example" is a path.
  if (!encoded.startsWith('/') || encoded[1] === '/' || encoded[1] === '\\' || encoded.includes('\\')) return fallback
  return encoded.length > MAX_LENGTH * 3 ? fallback : encoded
}

function percentEncode (char: string): string {
  let out = ''
  for (const byte of Buffer.from(char, 'utf8')) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0')
  return out
}

/** The path and query of a same-origin URL (a Referer, HX-Current-URL), or null. */
export function sameOriginPath (url: unknown, host: string | undefined): string | null {
  if (typeof url !== 'string' || host === undefined || url.length > MAX_LENGTH) return null
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return null
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null
  let ours: string
  try {
    // The Host header as URL writes it (a default port is dropped: "localhost:80" is "localhost").
    ours = new URL(`${parsed.protocol}//${host}`).host
  } catch {
    return null
  }
  if (parsed.host !== ours) return null
  const path = safeLocation(parsed.pathname + parsed.search, '')
  return path === '' ? null : path
}
