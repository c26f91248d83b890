// Times as admins and operators type them: a date, a date and time, or a full ISO time.

/** "2026-11-22", "2026-11-22T12:00", or a full ISO time; times without a zone are UTC. Null for anything else. */
export function parseTime (value: string): Date | null {
  const match = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?))?(Z|[+-]\d{2}:\d{2})?$/.exec(value)
  if (match === null) return null
  const date = new Date(`${match[1]}T${match[2] ?? '00:00'}${match[3] ?? 'Z'}`)
  return Number.isNaN(date.getTime()) ? null : date
}
