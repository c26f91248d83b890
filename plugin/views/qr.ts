// The QR code the wizard shows: an inline SVG made on the server, so the secret never leaves
// it in a URL or through a third-party image service. uqr does the encoding (Reed–Solomon,
// version and mask choice); the drawing is ours: one stroked path of dark runs, row by row, on
// a white square with the four-module quiet zone that readers need around the symbol.
import { encode } from 'uqr'

/** Modules of white around the symbol, as the QR standard asks. */
const QUIET_ZONE = 4

/**
 * Error correction M (about 15 % of the symbol may be lost): a glare or a fold on a phone's
 * screenshot still reads, and the key URI still fits a small version.
 */
export function qrSvg (otpauthUri: string): string {
  const { data, size } = encode(otpauthUri, { ecc: 'M', border: 0 })
  const side = size + 2 * QUIET_ZONE
  // Each run of dark modules is one stroke along the middle of its row; within a row the next
  // run is a relative move, which keeps the path about half the size of one rectangle per run.
  let dark = ''
  data.forEach((row, y) => {
    let penAt: number | null = null
    for (let x = 0; x < size; x++) {
      if (!row[x]) continue
      const start = x
      while (x + 1 < size && row[x + 1]) x++
      const length = x - start + 1
      dark += penAt === null ? `M${start + QUIET_ZONE} ${y + QUIET_ZONE + 0.5}h${length}` : `m${start - penAt} 0h${length}`
      penAt = x + 1
    }
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${side} ${side}" shape-rendering="crispEdges">` +
    `<path fill="#fff" d="M0 0h${side}v${side}H0z"/><path stroke="#000" d="${dark}"/></svg>`
}
