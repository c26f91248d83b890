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

/**
 * The users search is a substring match (`ilike '%q%'`), which no b-tree serves: at 100 000 users
 * it read the whole table, about 50 ms a search. A trigram index answers it in under a
 * millisecond. pg_trgm ships with Postgres (a trusted extension since 13, so the database's
 * owner may create it); the demo's embedded PGlite is not given it, and searches without.
 */
export const CREATE_DEMO_USERS_SEARCH = [
  'create extension if not exists pg_trgm',
  'create index if not exists demo_users_username_trgm on demo_users using gin (username gin_trgm_ops)'
]
