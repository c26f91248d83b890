// Much of what the CLI prints is data it did not write: user ids, actors and event types from
// the database, key ids from TWO_FACTOR_KEYS, paths and arguments from the command line. A
// terminal obeys control characters wherever they come from: an id holding "\x1b[2K\r" erases
// the line it is printed on and writes something else there, and one holding a newline fakes a
// row of `list`. So the text output passes every such piece through `terminalText`, which spells
// those characters out: the operator sees the same data, and nothing in it can move the cursor,
// change the terminal's state or start a line.
//
// Backslashes are left as they are, so ids such as DOMAIN\alice read as the app stores them; an
// id that literally holds the characters "\x1b" therefore prints like one holding ESC. --json is
// exact where text is not: it does not pass through here.

/**
 * C0 controls (tab and newline among them), DEL, the C1 controls (0x9b is a one-byte CSI to
 * some terminals), the Unicode line and paragraph separators, and surrogates that are not half
 * of a pair (with the u flag a class of surrogates matches only those).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udfff]/gu

const SHORT: Readonly<Record<string, string>> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' }

function escaped (char: string): string {
  const short = SHORT[char]
  if (short !== undefined) return short
  const code = char.charCodeAt(0)
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
}

/**
 * `value` with every character a terminal could act on written as an escape (`\x1b`, `\r`,
 * `\u2028`). Its result holds none of them, so applying it twice changes nothing: text built
 * from escaped pieces may be escaped again as a whole.
 */
export function terminalText (value: string): string {
  return value.replace(UNSAFE, escaped)
}
