// The least of ustar the demo's empty-cluster snapshot needs: directories and regular files,
// relative paths. A standard format, so the snapshot can be looked into with `brotli -d | tar t`;
// written here because the demo has no archive library and needs only these two cases.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const BLOCK = 512

/** Every directory and file under `root`, as one uncompressed tar (paths relative to root). */
export function packDirectory (root: string): Buffer {
  const parts: Buffer[] = []
  const walk = (relative: string): void => {
    // Sorted, so the same directory always makes the same archive.
    for (const entry of readdirSync(join(root, relative), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`
      if (entry.isDirectory()) {
        parts.push(header(`${path}/`, 0, '5'))
        walk(path)
      } else if (entry.isFile()) {
        const data = readFileSync(join(root, path))
        parts.push(header(path, data.length, '0'), data, Buffer.alloc(padding(data.length)))
      }
    }
  }
  walk('')
  parts.push(Buffer.alloc(2 * BLOCK)) // end of archive
  return Buffer.concat(parts)
}

/** Writes what packDirectory made into `root` (created if missing). */
export function unpackInto (archive: Buffer, root: string): void {
  mkdirSync(root, { recursive: true })
  let at = 0
  while (at + BLOCK <= archive.length) {
    const block = archive.subarray(at, at + BLOCK)
    const name = field(block, 0, 100)
    if (name === '') break // the zero blocks at the end
    const path = [field(block, 345, 155), name].filter((p) => p !== '').join('/')
    // Only paths inside root: no absolute paths, no `..`.
    if (path.startsWith('/') || path.split('/').includes('..')) throw new Error(`tar entry outside its folder: ${path}`)
    const size = parseInt(field(block, 124, 12) || '0', 8)
    const type = String.fromCharCode(block[156]!)
    at += BLOCK
    if (type === '5') mkdirSync(join(root, path), { recursive: true })
    else if (type === '0' || type === '\0') writeFileSync(join(root, path), archive.subarray(at, at + size))
    else throw new Error(`tar entry of a type this reader does not handle (${type}): ${path}`)
    at += size + padding(size)
  }
}

function header (path: string, size: number, type: '0' | '5'): Buffer {
  const block = Buffer.alloc(BLOCK)
  if (Buffer.byteLength(path) > 100) throw new Error(`path too long for this tar writer: ${path}`)
  block.write(path, 0, 100, 'utf8')
  block.write(type === '5' ? '0000755\0' : '0000644\0', 100, 'latin1')
  block.write('0000000\0', 108, 'latin1') // uid
  block.write('0000000\0', 116, 'latin1') // gid
  block.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1')
  block.write('00000000000\0', 136, 'latin1') // mtime: none, so the archive depends on contents only
  block.write(type, 156, 'latin1')
  block.write('ustar\0' + '00', 257, 'latin1')
  // The checksum is computed with its own field as spaces.
  block.fill(' ', 148, 156)
  let sum = 0
  for (const byte of block) sum += byte
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
  return block
}

function field (block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length)
  const end = raw.indexOf(0)
  return raw.toString('utf8', 0, end === -1 ? length : end).trim()
}

function padding (size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}
