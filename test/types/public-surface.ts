// The public surface, as a host's TypeScript sees it: what one import of the package gives the
// host's routes and app. Checked by the compiler twice: here against the sources (`tsc --noEmit`
// in `npm test`), and by examples/minimal-host/run.sh against the packed build's declarations,
// copied there with the import below pointing at 'fastify-two-factor' (skipLibCheck off).
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { expectTypeOf } from 'expect-type'
import type { SQL } from 'drizzle-orm'
import twoFactor, {
  ERROR_CODES,
  EVENT_TYPES,
  safeLocation,
  TwoFactorError,
  type AccountsAdapter,
  type ActorContext,
  type ErrorCode,
  type EventType,
  type RequestStateName,
  type RouteTwoFactorConfig,
  type StartLoginResult,
  type TwoFactorApi,
  type TwoFactorEvent,
  type TwoFactorOptions,
  type TwoFactorSessionStore,
  type TwoFactorStatus
} from '../../plugin/index.ts'

/** Builds an app only to type its decorators; the caller closes it. */
export function publicSurface (): ReturnType<typeof Fastify> {
  const app = Fastify()
  // The decorators are typed on the host's own instance, request and route config.
  expectTypeOf<typeof app.twoFactor>().toEqualTypeOf<TwoFactorApi>()
  expectTypeOf<TwoFactorApi['status']>().returns.resolves.toEqualTypeOf<TwoFactorStatus>()
  expectTypeOf<TwoFactorApi['setRequired']>().parameter(2).toEqualTypeOf<ActorContext>()
  expectTypeOf<TwoFactorApi['reset']>().parameter(1).toMatchTypeOf<{ actor: string, reason: string }>()
  expectTypeOf<FastifyRequest['twoFactor']['state']>().toEqualTypeOf<RequestStateName>()
  expectTypeOf<FastifyRequest['twoFactor']['userId']>().toEqualTypeOf<string | null>()
  expectTypeOf<FastifyRequest['twoFactor']['startLogin']>().returns.resolves.toEqualTypeOf<StartLoginResult>()
  expectTypeOf<StartLoginResult['state']>().toEqualTypeOf<'pending' | 'pending-setup' | 'signed-in'>()
  expectTypeOf<RouteTwoFactorConfig>().toEqualTypeOf<false | { signedIn?: boolean, freshWithin?: string, stepUpReturnTo?: string }>()
  app.get('/money', { config: { twoFactor: { freshWithin: '10m' } } }, async (request: FastifyRequest, reply: FastifyReply) => {
    expectTypeOf<typeof request.twoFactor.endOtherSessions>().returns.resolves.toBeNumber()
    return reply.send({ user: request.twoFactor.userId })
  })
  // @ts-expect-error a route config is checked: freshWithin is a string like "10m"
  app.get('/wrong', { config: { twoFactor: { freshWithin: 10 } } }, async () => 'x')

  // Options and the adapter.
  expectTypeOf<TwoFactorOptions['accounts']>().toEqualTypeOf<AccountsAdapter>()
  expectTypeOf<AccountsAdapter<{ id: number }>['userId']>().parameter(0).toEqualTypeOf<{ id: number }>()
  expectTypeOf<AccountsAdapter['verifyPassword']>().toEqualTypeOf<((userId: string, password: string) => Promise<boolean> | boolean) | undefined>()
  // The admin list's join: the host's users as a drizzle query on the plugin's database.
  expectTypeOf<AccountsAdapter['usersQuery']>().toEqualTypeOf<((query: { q: string }) => SQL) | undefined>()
  expectTypeOf<NonNullable<NonNullable<TwoFactorOptions['session']>['store']>>().toEqualTypeOf<TwoFactorSessionStore>()
  expectTypeOf<TwoFactorOptions['onEvent']>().toEqualTypeOf<((event: TwoFactorEvent) => void | Promise<void>) | undefined>()
  // One import registers it on the host's own Fastify (the host's fastify is the plugin's).
  const register = async (options: TwoFactorOptions) => await app.register(twoFactor, options)
  expectTypeOf(register).toBeFunction()

  // Events and errors.
  expectTypeOf<TwoFactorEvent['type']>().toEqualTypeOf<EventType>()
  expectTypeOf(EVENT_TYPES).toMatchTypeOf<readonly EventType[]>()
  expectTypeOf<keyof typeof ERROR_CODES>().toEqualTypeOf<ErrorCode>()
  expectTypeOf(new TwoFactorError('locked').error).toEqualTypeOf<ErrorCode>()
  expectTypeOf(safeLocation).returns.toBeString()

  return app
}
