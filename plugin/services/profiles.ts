// The host's users as the plugin sees them, through the `accounts` adapter.
import type { AccountsAdapter } from '../options.ts'
import { UnknownUserError } from './context.ts'

export interface UserProfile {
  userId: string
  label: string
  isAdmin: boolean
  roles: readonly string[]
  createdAt: Date | null
}

export class Profiles {
  constructor (private readonly adapter: AccountsAdapter) {}

  of (user: unknown): UserProfile {
    const a = this.adapter
    return {
      userId: String(a.userId(user)),
      label: String(a.label(user)),
      isAdmin: a.isAdmin?.(user) === true,
      roles: a.roles?.(user) ?? [],
      createdAt: a.createdAt?.(user) ?? null
    }
  }

  async find (userId: string): Promise<UserProfile | null> {
    const user = await this.adapter.findUser(userId)
    return user === null || user === undefined ? null : this.of(user)
  }

  async require (userId: string): Promise<UserProfile> {
    const profile = await this.find(userId)
    if (profile === null) throw new UnknownUserError()
    return profile
  }

  /** Unknown to the host (a deleted account the plugin still has rows for): labelled by id. */
  static unknown (userId: string): UserProfile {
    return { userId, label: userId, isAdmin: false, roles: [], createdAt: null }
  }
}
