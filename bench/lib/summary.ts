// The machine-readable end of `npm run bench`: one `name: value` line per figure below, then
// `goals-missed: a,b,c` (empty when every goal is met), last. Values are plain numbers (no
// unit; the unit is in the name or below), `NaN` when the run could not measure one. The goals
// are the ("Performance round 2"); missing one is reported, never an exit code.
// `--write` puts the same lines in bench/README.md between the summary markers.
import type { Figure } from './report.ts'
import { DRIVER_NAMES, type Driver } from './server-process.ts'

export interface Goal { op: '≥' | '≤', target: number }

export interface SummaryEntry {
  name: string
  value: number
  digits: number
  /** What the value is, for the README. */
  what: string
  goal?: Goal
}

/** The goals, by summary name. The gate's own target (≥ 0.95) stays on its figure. */
export const GOALS: Record<string, Goal> = {
  'verify-ratio': { op: '≥', target: 0.5 },
  'verify-statements': { op: '≤', target: 3 },
  'signed-in-ratio': { op: '≥', target: 0.8 },
  'recovery-cpu-ms': { op: '≤', target: 1 },
  'admin-p95-ms': { op: '≤', target: 50 },
  'cold-start-s': { op: '≤', target: 4 }
}

const byKey = (figures: readonly Figure[], key: string): Figure[] => figures.filter((f) => f.key === key)
const one = (figures: readonly Figure[], key: string): Figure | undefined => byKey(figures, key)[0]
const worst = (figures: readonly Figure[], key: string): number => {
  const values = byKey(figures, key).map((f) => f.value)
  return values.length === 0 ? Number.NaN : Math.max(...values)
}

export function summarise (figures: readonly Figure[]): SummaryEntry[] {
  const entries: Array<Omit<SummaryEntry, 'goal'>> = [
    { name: 'gate-ratio', value: one(figures, 'gate')?.ratio ?? Number.NaN, digits: 2, what: 'Gate "signed-in GET, req/s": the plugin app against the same sessions without the plugin (median of rotating rounds)' },
    { name: 'verify-ratio', value: one(figures, 'verify')?.ratio ?? Number.NaN, digits: 2, what: 'Challenge "valid code (303), req/s": complete sign-ins with valid codes against the bare prepared UPDATE route' },
    { name: 'verify-statements', value: one(figures, 'verify-statements')?.value ?? Number.NaN, digits: 1, what: 'SQL statements sent to the database per POST /2fa/challenge with a valid code (postgres.js debug hook, average over 20 sign-ins)' },
    { name: 'signed-in-ratio', value: one(figures, 'signed-in')?.ratio ?? Number.NaN, digits: 2, what: 'a signed-in GET end to end (session read + gate) against a bare route with no session in the baseline app' },
    { name: 'recovery-cpu-ms', value: worst(figures, 'recovery-cpu') / 1000, digits: 2, what: 'Recovery code "Node CPU per check" at 100 000 users, the worst of unknown / valid / used, ms' },
    { name: 'admin-p95-ms', value: worst(figures, 'admin-p95'), digits: 1, what: 'the worst p95 of the Admin list queries at 100 000 users, ms' },
    { name: 'cold-start-s', value: one(figures, 'cold-start')?.value ?? Number.NaN, digits: 2, what: 'the demo on a fresh data directory (PGlite): spawn to the first 200 of GET /login, s' },
    { name: 'rss-growth-mb', value: ((f) => f === undefined ? Number.NaN : f.value - f.baseline)(one(figures, 'rss-growth')), digits: 1, what: 'RSS after the suite\'s 10 000 sign-ins minus RSS idle (Footprint), MB' },
    ...(Object.entries(DRIVER_NAMES) as Array<[Driver, string]>).flatMap(([driver, name]) => {
      const f = one(figures, `sustained-${driver}`)
      const run = 'POST /2fa/challenge with valid codes, 60 s at 10 connections, the plugin app on a pool of 10'
      return [
        { name: `sustained-ratio-${driver}`, value: f?.ratio ?? Number.NaN, digits: 2, what: `Sustained, ${name}: req/s in the last 10 s ÷ req/s in the first 10 s (${run})` },
        { name: `sustained-first-rps-${driver}`, value: f?.baseline ?? Number.NaN, digits: 0, what: `Sustained, ${name}: req/s in the first 10 s` },
        { name: `sustained-last-rps-${driver}`, value: f?.value ?? Number.NaN, digits: 0, what: `Sustained, ${name}: req/s in the last 10 s` }
      ]
    })
  ]
  return entries.map((entry) => GOALS[entry.name] === undefined ? entry : { ...entry, goal: GOALS[entry.name] })
}

export function meets (entry: SummaryEntry): boolean {
  if (entry.goal === undefined) return true
  if (!Number.isFinite(entry.value)) return false
  return entry.goal.op === '≥' ? entry.value >= entry.goal.target : entry.value <= entry.goal.target
}

export const missedGoals = (entries: readonly SummaryEntry[]): string[] => entries.filter((e) => !meets(e)).map((e) => e.name)

const valueOf = (entry: SummaryEntry): string => Number.isFinite(entry.value) ? entry.value.toFixed(entry.digits) : 'NaN'

/** The lines `npm run bench` ends with; `goals-missed` last. */
export function summaryLines (entries: readonly SummaryEntry[]): string[] {
  return [...entries.map((e) => `${e.name}: ${valueOf(e)}`), `goals-missed: ${missedGoals(entries).join(',')}`.trimEnd()]
}

/** The README's Summary block: the same lines, then what each is and its goal. */
export function summaryMarkdown (entries: readonly SummaryEntry[]): string {
  const rows = entries.map((e) => {
    const goal = e.goal === undefined ? '' : `${e.goal.op} ${e.goal.target} ${meets(e) ? '✓' : '✗'}`
    return `| \`${e.name}\` | ${valueOf(e)} | ${goal} | ${e.what} |`
  })
  return ['```text', ...summaryLines(entries), '```', '', '| name | value | goal | what |', '| --- | ---: | --- | --- |', ...rows].join('\n')
}
