// What services are told about who acts and from where: plain values, never a request. A route
// makes one from its request (`auditContextOf`); the CLI makes one with actor `cli`.

export interface AuditContext {
  /** The client's address as Fastify sees it (set `trustProxy` behind a proxy). */
  ip: string | null
  userAgent: string | null
  /** Who acts when it is not the account's owner: an admin's user id, or `cli`. */
  actor?: string
}

/** Who changes something through `fastify.twoFactor` (the host's admin pages, the CLI). */
export interface ActorContext {
  /** A user id, or `cli`. */
  actor: string
  ip?: string | null
  userAgent?: string | null
}

export function fromActor (context: ActorContext): AuditContext {
  return { actor: context.actor, ip: context.ip ?? null, userAgent: context.userAgent ?? null }
}

/** A host asked about a user its adapter does not know. */
export class UnknownUserError extends Error {
  constructor () {
    super('No such user.')
    this.name = 'UnknownUserError'
  }
}
