// How the CLI writes times and tables in its text output.
import { terminalText } from './terminal-text.ts'

export const iso = (date: Date | null): string | null => date?.toISOString() ?? null

/** To the minute, in UTC, as the admin panel shows times. */
export const utc = (date: Date): string => date.toISOString().slice(0, 16).replace('T', ' ') + ' UTC'

export const plural = (n: number, word: string, many = `${word}s`): string => `${n} ${n === 1 ? word : many}`

/** Aligned columns. Cells are escaped first, so the widths are those of what is printed. */
export function padTable (table: string[][]): string[] {
  const rows = table.map((r) => r.map(terminalText))
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i]!)).join('  ').trimEnd())
}
