// The demo host's own users table: it stands for whatever table an app owner already has.
import { integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core'

export const demoUsers = pgTable('demo_users', {
  id: text('id').primaryKey(),
  username: text('username').notNull().unique(),
  passwordHash: text('password_hash').notNull(),
  role: text('role').notNull().default('user'),
  /** The host's own password-lockout counter; the plugin clears it through onSignedIn. */
  failedLogins: integer('failed_logins').notNull().default(0),
  lockedUntil: timestamp('locked_until', { withTimezone: true }),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow()
})

export type DemoUser = typeof demoUsers.$inferSelect

/** The demo creates its table itself; a real host has its own migrations. */
export const CREATE_DEMO_USERS = `
create table if not exists demo_users (
  id text primary key,
  username text not null unique,
  password_hash text not null,
  role text not null default 'user',
  failed_logins integer not null default 0,
  locked_until timestamptz,
  created_at timestamptz not null default now()
)`
