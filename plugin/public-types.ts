// The deliberate public surface: what a host imports and what the decorators look like. Service
// classes stay inside; a host sees plain functions and plain data.
//
// The host uses the CSRF protection and the session the plugin registers (`fastify.csrfProtection`,
// `reply.generateCsrf()`, `request.session`): their types must reach it through the package's
// declarations, where a value import of those plugins leaves no trace, hence the references.
/// <reference types="@fastify/csrf-protection" preserve="true" />
/// <reference types="@fastify/session" preserve="true" />
import type { RequestTwoFactor, StartLoginResult, TwoFactorNotice } from './request-context.ts'
import type { PolicySettings } from './core/policy.ts'
import type { TwoFactorSessionStore } from './db/session-store.ts'
import type { ActorContext } from './services/context.ts'
import type { TwoFactorStatus } from './services/status.ts'
import './gate.ts'
import './sign-in-session.ts'

export type { TwoFactorOptions, AccountsAdapter, SessionOptions, RateLimitOptions } from './options.ts'
export type { TwoFactorCliConfig } from './cli/config.ts'
export type { TwoFactorEvent, TwoFactorAlert, EventType } from './services/audit.ts'
export { EVENT_TYPES } from './services/audit.ts'
export type { TwoFactorStatus } from './services/status.ts'
export type { UserProfile } from './services/profiles.ts'
export type { PolicySettings } from './core/policy.ts'
export type { RequestStateName, SignInStateName } from './core/sign-in.ts'
export type { RequestTwoFactor, StartLoginResult, TwoFactorNotice }
export type { ActorContext } from './services/context.ts'
export { UnknownUserError } from './services/context.ts'
export type { TwoFactorDatabase } from './db/database.ts'
export type { TwoFactorSessionStore, AccountSessionIndex, SessionSummary } from './db/session-store.ts'
export type { RouteTwoFactorConfig } from './gate.ts'
export { ERROR_CODES, TwoFactorError, type ErrorCode } from './errors.ts'
export { Keyring, KeyringError } from './core/keyring.ts'
export { PgSessionStore } from './db/session-store.ts'
export { RedisSessionStore, type RedisCommands, type RedisSessionStoreOptions } from './db/redis-session-store.ts'
export { migrate } from './db/migrate.ts'
export { OptionsError } from './validate-options.ts'
export { safeLocation } from './core/location.ts'

/** `fastify.twoFactor`: for the host's own code (its admin pages, a password change) and scripts. */
export interface TwoFactorApi {
  status (userId: string): Promise<TwoFactorStatus>
  /** Lifting a requirement also clears the user's 2FA and ends their sessions. */
  setRequired (userId: string, required: boolean, context: ActorContext): Promise<TwoFactorStatus>
  /** Clears the user's secret and recovery codes and ends their sessions; they enrol again if required. */
  reset (userId: string, context: ActorContext & { reason: string }): Promise<TwoFactorStatus>
  unlock (userId: string, context: ActorContext): Promise<TwoFactorStatus>
  /** Applies the default for new accounts (admins are required). Safe to call more than once. */
  onUserCreated (userId: string): Promise<void>
  policy (): Promise<PolicySettings>
  setPolicy (settings: PolicySettings, context: ActorContext): Promise<PolicySettings>
  /** Ends every session of the user (in the request of a password change, use `request.twoFactor.endOtherSessions()`). */
  endSessions (userId: string, context: ActorContext): Promise<number>
  /** The session store in use. */
  sessionStore: TwoFactorSessionStore
  /** The rate limit of the plugin's POST routes, for the host's own sign-in route. */
  rateLimitConfig: { max: number, timeWindow: number } | false
}

declare module 'fastify' {
  interface FastifyInstance {
    twoFactor: TwoFactorApi
  }
  interface FastifyRequest {
    twoFactor: RequestTwoFactor
  }
}
