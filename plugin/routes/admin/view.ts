// What every admin page shows besides its own content: the navigation, who is signed in.
import type { FastifyRequest } from 'fastify'
import { actorOf } from './guard.ts'

export type AdminSection = 'users' | 'policy' | 'events'

export function adminData (request: FastifyRequest, base: string, prefix: string, section: AdminSection, extra: Record<string, unknown>) {
  return { admin: { base, prefix, section, actor: actorOf(request).profile, ...extra } }
}

/** "2026-11-22 12:00 UTC". */
export function utc (date: Date): string {
  return date.toISOString().slice(0, 16).replace('T', ' ') + ' UTC'
}
