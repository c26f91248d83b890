// `<user>` on the command line: an id, or a login name when the config gives the host's adapter
// with `findByLogin`. Ids come first, as before: an id is the app's own and can't be chosen by
// a user, while a login name can (someone could sign up as "42"). When the same text is the id
// of one user and the login of another, the CLI refuses rather than guess whose account to change.
import type { AdminStore } from '../db/admin-store.ts'
import type { AccountsAdapter } from '../options.ts'
import { CliFailure } from './errors.ts'
import { terminalText } from './terminal-text.ts'

export type FindUser = (given: string) => Promise<string>

export function userLookup (adapter: AccountsAdapter | null, admin: AdminStore, note: (line: string) => void): FindUser {
  if (adapter === null) return async (given) => given
  return async (given) => {
    const [byId, byLogin] = await Promise.all([adapter.findUser(given), adapter.findByLogin?.(given)])
    const loginId = byLogin === null || byLogin === undefined ? null : String(adapter.userId(byLogin))
    if (byId !== null && byId !== undefined) {
      if (loginId !== null && loginId !== given) {
        throw new CliFailure(`"${given}" is the id of one user and the login name of another (id "${loginId}"). Give that user's id instead.`)
      }
      return given
    }
    if (loginId !== null) {
      note(`"${terminalText(given)}" is user id "${terminalText(loginId)}".`)
      return loginId
    }
    // A user the app no longer has may still have rows here (a deleted account): the id still works.
    const { facts } = await admin.factsFor([given])
    if (facts[0]?.seen === true) return given
    throw new CliFailure(`No user "${given}": the app has no user with that id${adapter.findByLogin === undefined ? '' : ' or login name'}, and the two-factor tables have no record of user "${given}".`)
  }
}
