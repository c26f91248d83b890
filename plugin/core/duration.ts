// Durations written as people write them in route config: "30s", "10m", "1h".

const DURATION = /^(\d{1,6})\s*(s|m|h)$/
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const

/** Milliseconds, or null for anything else (including zero). */
export function parseDuration (value: unknown): number | null {
  if (typeof value !== 'string') return null
  const match = DURATION.exec(value.trim())
  if (match === null) return null
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
  return ms > 0 ? ms : null
}
