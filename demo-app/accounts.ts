// The demo's users as the plugin sees them: the `accounts` adapter over the demo's own table.
// The app registers the plugin with it, and two-factor.config.ts hands it to the operator CLI
// (so `npm run two-factor -- status alice` finds alice by her user name).
import { count, eq, inArray, sql } from 'drizzle-orm'
import type { AccountsAdapter, TwoFactorDatabase } from '../plugin/index.ts'
import { usernameMatching } from './admin.ts'
import { verifyPassword } from './passwords.ts'
import { demoUsers, type DemoUser } from './schema.ts'

export type DemoAccounts = Omit<AccountsAdapter<DemoUser>, 'findUser' | 'findByLogin'> & {
  findUser (id: string): Promise<DemoUser | undefined>
  findByLogin (username: string): Promise<DemoUser | undefined>
}

export function demoAccounts (db: TwoFactorDatabase): DemoAccounts {
  // Postgres text can't hold U+0000: such an id or name matches nobody, without asking the database.
  const findUser = async (id: string): Promise<DemoUser | undefined> =>
    id.includes('\u0000') ? undefined : (await db.select().from(demoUsers).where(eq(demoUsers.id, id)).limit(1))[0]

  return {
    findUser,
    // Users sign in with their user name.
    findByLogin: async (username) =>
      username.includes('\u0000') ? undefined : (await db.select().from(demoUsers).where(eq(demoUsers.username, username)).limit(1))[0],
    userId: (user) => user.id,
    label: (user) => user.username,
    isAdmin: (user) => user.role === 'admin',
    roles: (user) => [user.role],
    createdAt: (user) => user.createdAt,
    async verifyPassword (userId, password) {
      const user = await findUser(userId)
      return user !== undefined && await verifyPassword(password, user.passwordHash)
    },
    async findUsers (ids) {
      return ids.length === 0 ? [] : await db.select().from(demoUsers).where(inArray(demoUsers.id, ids))
    },
    async listUsers ({ q, offset, limit }) {
      const where = usernameMatching(q)
      const [users, total] = await Promise.all([
        db.select().from(demoUsers).where(where).orderBy(demoUsers.username).offset(offset).limit(limit),
        db.select({ n: count() }).from(demoUsers).where(where)
      ])
      return { users, total: Number(total[0]?.n ?? 0) }
    },
    // The same users as listUsers, in its order, for the admin list's status filters to join
    // with the plugin's tables (both live in this database): isAdmin and roles above, in SQL.
    usersQuery: ({ q }) => sql`
      select ${demoUsers.id} as id, ${demoUsers.username} as sort,
        ${demoUsers.role} = 'admin' as is_admin, array[${demoUsers.role}] as roles
      from ${demoUsers}
      where ${usernameMatching(q) ?? sql`true`}`,
    // The host's password-lockout counter is cleared only once sign-in is complete.
    async onSignedIn (userId) {
      await db.update(demoUsers).set({ failedLogins: 0, lockedUntil: null }).where(eq(demoUsers.id, userId))
    }
  }
}
