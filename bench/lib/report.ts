// Figures, the table they print as, and the README section regenerated from them.
import { readFileSync, writeFileSync } from 'node:fs'

export interface Figure {
  /** A stable id the machine-readable summary picks the figure by (bench/lib/summary.ts). */
  key?: string
  section: string
  /** What was measured, on the plugin side. */
  name: string
  value: number
  /** What the same run measured without the plugin (or at the small size). */
  baselineName: string
  baseline: number
  unit: string
  /** value / baseline. */
  ratio: number
  /** e.g. `≥ 0.95`; only where the issue sets a target. */
  target?: string
  pass?: boolean
  note?: string
}

/** A figure; its ratio is value / baseline unless the measurement gives a better one. */
export function figure (input: Omit<Figure, 'ratio'> & { ratio?: number }): Figure {
  return { ...input, ratio: input.ratio ?? input.value / input.baseline }
}

export function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

function formatNumber (value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a'
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2
  return `${value.toFixed(digits)} ${unit}`
}

const formatRatio = (ratio: number) => Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'

export function markdownTable (figures: Figure[]): string {
  const lines = [
    '| section | figure | value | baseline | ratio | target |',
    '| --- | --- | ---: | --- | ---: | --- |'
  ]
  for (const f of figures) {
    const target = f.target === undefined ? '' : `${f.target} ${f.pass === true ? '✓' : '✗'}`
    lines.push(`| ${f.section} | ${f.name} | ${formatNumber(f.value, f.unit)} | ${f.baselineName}: ${formatNumber(f.baseline, f.unit)} | ${formatRatio(f.ratio)} | ${target} |`)
  }
  return lines.join('\n')
}

/** The table for the terminal: fixed-width columns. */
export function textTable (figures: Figure[]): string {
  const rows = figures.map((f) => [
    f.section, f.name, formatNumber(f.value, f.unit),
    `${f.baselineName}: ${formatNumber(f.baseline, f.unit)}`, formatRatio(f.ratio),
    f.target === undefined ? '' : `${f.target} ${f.pass === true ? 'ok' : 'MISSED'}`
  ])
  const header = ['section', 'figure', 'value', 'baseline', 'ratio', 'target']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => i === 2 || i === 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/** Replaces what sits between `<!-- name:start -->` and `<!-- name:end -->`. */
export function replaceSection (path: string, name: string, content: string): void {
  const text = readFileSync(path, 'utf8')
  const start = `<!-- ${name}:start -->`
  const end = `<!-- ${name}:end -->`
  const from = text.indexOf(start)
  const to = text.indexOf(end)
  if (from === -1 || to === -1 || to < from) throw new Error(`${path} has no ${start} … ${end} markers`)
  writeFileSync(path, text.slice(0, from + start.length) + '\n' + content.trim() + '\n' + text.slice(to))
}
