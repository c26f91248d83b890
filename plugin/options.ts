// Options the host passes to the plugin: their types (with defaults in JSDoc), the defaults
// themselves, and what they resolve to. validate-options.ts checks them at register time.
import type { FastifyRequest } from 'fastify'
import type { SQL } from 'drizzle-orm'
import type { TwoFactorDatabase } from './db/database.ts'
import type { TwoFactorSessionStore } from './db/session-store.ts'
import type { TotpAlgorithm } from './core/totp.ts'
import type { TwoFactorEvent, TwoFactorAlert } from './services/audit.ts'

/** What the plugin needs to know about the host's users. `User` is whatever the host uses. */
export interface AccountsAdapter<User = any> {
  /** Loads a user by id; null when there is no such user. */
  findUser (userId: string): Promise<User | null | undefined> | User | null | undefined
  /** The user's id as text (the plugin stores ids as text). */
  userId (user: User): string
  /** The account name shown in authenticator apps and admin lists, e.g. the e-mail. */
  label (user: User): string
  /**
   * Checks the account password: replacing the authenticator, turning 2FA off and new recovery
   * codes ask for it. Hosts without passwords (SSO) leave it out; a current code is asked instead.
   */
  verifyPassword? (userId: string, password: string): Promise<boolean> | boolean
  /** Admins reach the admin panel and are required to use 2FA by default. @default () => false */
  isAdmin? (user: User): boolean
  /** Roles for role-based requirements. @default () => [] */
  roles? (user: User): readonly string[]
  /** When the user was created (the grace period counts from the later of this and the switch-on). */
  createdAt? (user: User): Date | null | undefined
  /** Users for the admin list, paginated and searched by the host. */
  listUsers? (query: { q: string, offset: number, limit: number }): Promise<{ users: User[], total: number }>
  /**
   * The users `listUsers({ q })` lists, as a query on the plugin's `database` (your users table
   * is in it), so the admin list's status filters join it with the plugin's tables and page in
   * one statement instead of walking `listUsers`. It selects one row per user with the columns
   * `id` (text: `userId(user)`), `sort` (any type, ordering as `listUsers` orders; ties go by
   * `id`), `is_admin` (boolean: `isAdmin(user)`) and `roles` (text[]: `roles(user)`), e.g.
   * `sql\`select id, email as sort, role = 'admin' as is_admin, array[role] as roles from users\``.
   * Used only with `listUsers`. A page whose rows disagree with `isAdmin`/`roles` is logged and
   * answered by the walk instead.
   */
  usersQuery? (query: { q: string }): SQL
  /**
   * Several users by id in one call (any order; unknown ids left out). The admin list's
   * "enrolled" and "locked" filters page the plugin's table and load those users with it;
   * without it they call `findUser` once per row.
   */
  findUsers? (userIds: string[]): Promise<User[]>
  /**
   * Finds a user by what they sign in with (user name, e-mail), for the operator CLI: with it,
   * `two-factor status alice@example.com` works as well as the id. Null when there is none.
   */
  findByLogin? (login: string): Promise<User | null | undefined> | User | null | undefined
  /** Called once sign-in completes (after the second factor): clear the host's password-lockout counter here. */
  onSignedIn? (userId: string, request: FastifyRequest): Promise<void> | void
}

export interface SessionOptions {
  /** Secret(s) that sign the session cookie; at least 32 characters. */
  secret: string | string[]
  /** Send cookies only over HTTPS, with the `__Host-` prefix. @default NODE_ENV !== 'development' */
  secure?: boolean
  /** Cookie name (the `__Host-` prefix is added when secure). @default 'tf.sid' */
  cookieName?: string
  /** Lifetime of a session, ms. @default 12 hours */
  maxAgeMs?: number
  /**
   * A session store with the per-account index (`endAccountSessions`, `listAccountSessions`):
   * the plugin's Postgres store by default. A store without the index is refused at startup.
   */
  store?: TwoFactorSessionStore
}

export interface RateLimitOptions {
  /** Requests per IP and route in each window. @default 60 */
  max?: number
  /** Window length, ms. @default 60000 */
  timeWindowMs?: number
  /** An ioredis client, to share counts between instances. */
  redis?: unknown
}

export interface TwoFactorOptions {
  /** A drizzle Postgres database: on postgres.js, node-postgres (`pg`) or PGlite. */
  database: TwoFactorDatabase
  /** The adapter to the host's users. */
  accounts: AccountsAdapter
  /** Key ring spec `id:base64key,...` (first is current). @default process.env.TWO_FACTOR_KEYS */
  keys?: string
  session: SessionOptions
  /** URL prefix of the plugin's pages. @default '/2fa' */
  prefix?: string
  /** Issuer shown in authenticator apps. @default 'Fastify' */
  issuer?: string | ((request: FastifyRequest) => string)
  /** @default 'SHA1' */
  algorithm?: TotpAlgorithm
  /** @default 6 */
  digits?: number
  /** Seconds per TOTP step. @default 30 */
  period?: number
  /** Steps accepted either side of now. @default 1 */
  window?: number
  /** How long a pending (password-only) sign-in lasts, ms. @default 300000 */
  pendingTtlMs?: number
  /** Code attempts a pending sign-in allows before the user starts again. @default 5 */
  pendingAttempts?: number
  /** How long an unconfirmed enrolment secret (and a forced setup) lasts, ms. @default 900000 */
  enrolmentTtlMs?: number
  /** Consecutive failures before a lockout. @default 5 */
  lockoutThreshold?: number
  /** First lockout length, ms (doubles each time). @default 900000 */
  lockoutBaseMs?: number
  /** Longest lockout, ms. @default 86400000 */
  lockoutMaxMs?: number
  /** Whether "Skip for now" is offered for per-user requirements outside a grace period. @default true */
  allowSkip?: boolean
  /** Where a finished sign-in goes without a returnTo. @default '/' */
  signedInRedirect?: string
  /** The host's password page, where an expired pending sign-in starts again. @default '/login' */
  loginPath?: string
  /**
   * Every gated route also needs a signed-in session: anonymous page requests go to `loginPath`
   * (with `returnTo`), htmx gets `HX-Redirect`, JSON 401 `sign_in_required`. @default false
   */
  requireSignIn?: boolean
  /** Admin mode: the panel's changes need a code entered within this long ("15m"). @default '15m' */
  adminFreshWithin?: string
  /**
   * "Don't ask again on this browser" at the code prompt: how many days the browser skips the code
   * at sign-in (never the password, never a step-up); false to not offer it. @default { days: 30 }
   */
  trustedDevice?: { days: number } | false
  /** Apply the committed migrations at startup. @default true */
  migrate?: boolean
  /** Per-IP rate limit on the plugin's POST routes; false to leave it to the host. */
  rateLimit?: RateLimitOptions | false
  /**
   * Security headers with the plugin's CSP (helmet's headers): `true` puts them on the
   * plugin's own pages; `'app'` on every response of the host app too (unless the host has
   * registered @fastify/helmet); `false` leaves headers to the host. @default true
   */
  helmet?: boolean | 'app'
  /** A folder whose templates replace the plugin's of the same name (layout.eta, pages/…, partials/…). */
  templatesDir?: string
  /** Called for every audit event (e.g. to e-mail the user). Errors are logged, never thrown. */
  onEvent?: (event: TwoFactorEvent) => void | Promise<void>
  /** Called when one account sees more than `alertThreshold` failed codes in `alertWindowMs`. */
  alert?: (alert: TwoFactorAlert) => void | Promise<void>
  /** @default 3 */
  alertThreshold?: number
  /** @default 300000 */
  alertWindowMs?: number
  /**
   * Audit events older than this many days are deleted at startup and once a day after (and
   * the deletion is itself an audit event, actor `retention`). @default undefined: kept forever
   */
  auditRetentionDays?: number
  /** The clock, ms since the epoch (tests inject one). @default Date.now */
  clock?: () => number
  /**
   * The language of the pages and messages: a shipped locale ('en', 'de'), or a function of the
   * request giving one. @default the request's `Accept-Language` among the shipped ones, else 'en'
   */
  locale?: string | ((request: FastifyRequest) => string)
}

export const DEFAULTS = {
  prefix: '/2fa',
  issuer: 'Fastify',
  algorithm: 'SHA1' as TotpAlgorithm,
  digits: 6,
  period: 30,
  window: 1,
  pendingTtlMs: 5 * 60_000,
  pendingAttempts: 5,
  enrolmentTtlMs: 15 * 60_000,
  lockoutThreshold: 5,
  lockoutBaseMs: 15 * 60_000,
  lockoutMaxMs: 24 * 60 * 60_000,
  allowSkip: true,
  signedInRedirect: '/',
  loginPath: '/login',
  requireSignIn: false,
  adminFreshWithin: '15m',
  trustedDevice: { days: 30 },
  migrate: true,
  rateLimit: { max: 60, timeWindowMs: 60_000 },
  helmet: true,
  alertThreshold: 3,
  alertWindowMs: 5 * 60_000,
  sessionMaxAgeMs: 12 * 60 * 60_000,
  cookieName: 'tf.sid'
} as const

export type ResolvedOptions = Required<Omit<TwoFactorOptions, 'keys' | 'templatesDir' | 'onEvent' | 'alert' | 'rateLimit' | 'session' | 'adminFreshWithin' | 'locale' | 'auditRetentionDays'>> & {
  locale: TwoFactorOptions['locale']
  auditRetentionDays: number | undefined
  adminFreshWithinMs: number
  keys: string | undefined
  templatesDir: string | undefined
  onEvent: TwoFactorOptions['onEvent']
  alert: TwoFactorOptions['alert']
  rateLimit: Required<Omit<RateLimitOptions, 'redis'>> & { redis?: unknown } | false
  session: Required<Omit<SessionOptions, 'store'>> & { store?: TwoFactorSessionStore }
}
