// The plugin's tables, all inside their own Postgres schema so they never collide with the
// host's tables. User ids are text and there is no foreign key into the host's users table:
// the plugin works with whatever id type the host uses.
import { sql } from 'drizzle-orm'
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp
} from 'drizzle-orm/pg-core'

export const SCHEMA_NAME = 'two_factor'
export const MIGRATIONS_TABLE = '__migrations'

export const twoFactorSchema = pgSchema(SCHEMA_NAME)

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

/** One row per user the plugin has seen: enrolment, policy flag, replay guard and lockout. */
export const accounts = twoFactorSchema.table('accounts', {
  userId: text('user_id').primaryKey(),
  /** Sealed TOTP secret (keyring format); null while not enrolled. */
  secret: text('secret'),
  enabledAt: at('enabled_at'),
  /** The enrolment whose secret is active: a session that confirmed it can finish with it. */
  enrolmentId: text('enrolment_id'),
  /** The active secret's code parameters (null: the plugin's options, for secrets made before they were stored). */
  algorithm: text('algorithm'),
  digits: integer('digits'),
  period: integer('period'),
  /** Admin requirement: null = never decided (the admin default applies lazily), else explicit. */
  required: boolean('required'),
  /** Break-glass: no rule requires the account until then (an admin's decision, with a reason). */
  exemptUntil: at('exempt_until'),
  exemptReason: text('exempt_reason'),
  /** Highest TOTP time step ever accepted: the single-use guard. */
  lastUsedStep: bigint('last_used_step', { mode: 'number' }),
  failedAttempts: integer('failed_attempts').notNull().default(0),
  lockedUntil: at('locked_until'),
  /** How many lockouts since the last success: each one doubles the next lock's length. */
  lockouts: integer('lockouts').notNull().default(0),
  createdAt: at('created_at').notNull().defaultNow(),
  updatedAt: at('updated_at').notNull().defaultNow()
}, (table) => [
  index('accounts_enabled_idx').on(table.enabledAt),
  index('accounts_locked_idx').on(table.lockedUntil)
])

/**
 * Secrets shown in the wizard and not confirmed yet, one per session that opened it: the session
 * holds the row's id, so no other session of the account sees or confirms its secret.
 */
export const enrolments = twoFactorSchema.table('enrolments', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  /** Sealed like the active secret (bound to the user id). */
  secret: text('secret').notNull(),
  algorithm: text('algorithm').notNull(),
  digits: integer('digits').notNull(),
  period: integer('period').notNull(),
  createdAt: at('created_at').notNull(),
  expiresAt: at('expires_at').notNull()
}, (table) => [
  index('enrolments_user_idx').on(table.userId),
  index('enrolments_expires_idx').on(table.expiresAt)
])

/** The attempts of each code prompt (a pending sign-in), counted in one statement each. */
export const challenges = twoFactorSchema.table('challenges', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  attempts: integer('attempts').notNull(),
  expiresAt: at('expires_at').notNull()
}, (table) => [
  index('challenges_expires_idx').on(table.expiresAt)
])

/**
 * "At most once per window" marks (the failed-code alert, the admin.denied event): taking a
 * mark is one conditional upsert, so concurrent requests can't both take it.
 */
export const marks = twoFactorSchema.table('marks', {
  key: text('key').primaryKey(),
  until: at('until').notNull()
})

/**
 * Browsers whose owner said "don't ask again" at the code prompt. The cookie holds the row's id
 * and a 256-bit token; only the token's HMAC digest is stored, with the one it replaced (a copy of
 * an old cookie used again revokes the browser). `enrolmentId` ties the trust to the secret it
 * was given under: a new secret (or none) makes it worthless.
 */
export const trustedDevices = twoFactorSchema.table('trusted_devices', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  digest: text('digest').notNull(),
  previousDigest: text('previous_digest'),
  enrolmentId: text('enrolment_id'),
  label: text('label').notNull(),
  createdAt: at('created_at').notNull(),
  lastUsedAt: at('last_used_at'),
  expiresAt: at('expires_at').notNull()
}, (table) => [
  index('trusted_devices_user_idx').on(table.userId),
  index('trusted_devices_expires_idx').on(table.expiresAt)
])

/** Recovery codes exist only as HMAC digests; the key id says which pepper made the digest. */
export const recoveryCodes = twoFactorSchema.table('recovery_codes', {
  userId: text('user_id').notNull(),
  digest: text('digest').notNull(),
  keyId: text('key_id').notNull(),
  createdAt: at('created_at').notNull().defaultNow(),
  usedAt: at('used_at')
}, (table) => [
  primaryKey({ columns: [table.userId, table.digest] })
])

export const events = twoFactorSchema.table('events', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  at: at('at').notNull().defaultNow(),
  userId: text('user_id'),
  actor: text('actor'),
  ip: text('ip'),
  userAgent: text('user_agent'),
  type: text('type').notNull(),
  details: jsonb('details').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`)
}, (table) => [
  index('events_at_idx').on(table.at.desc(), table.id.desc()),
  index('events_user_at_idx').on(table.userId, table.at.desc()),
  index('events_type_at_idx').on(table.type, table.at.desc())
])

/** Small key/value settings; the admin policy lives under key `policy`. */
export const settings = twoFactorSchema.table('settings', {
  key: text('key').primaryKey(),
  value: jsonb('value').$type<unknown>().notNull(),
  updatedAt: at('updated_at').notNull().defaultNow()
})

/**
 * Sessions for @fastify/session. The key is a SHA-256 of the session id, so a dump of this
 * table can't be replayed as cookies; user_id lets the plugin end a user's other sessions.
 */
export const sessions = twoFactorSchema.table('sessions', {
  sidHash: text('sid_hash').primaryKey(),
  userId: text('user_id'),
  data: jsonb('data').$type<Record<string, unknown>>().notNull(),
  expiresAt: at('expires_at').notNull()
}, (table) => [
  index('sessions_user_idx').on(table.userId),
  index('sessions_expires_idx').on(table.expiresAt)
])
