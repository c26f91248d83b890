// Type augmentations the host sees: `fastify.twoFactor`, `request.twoFactor`, route config.
import type { RequestTwoFactor } from './request-context.ts'
import type { TwoFactorApi } from './index.ts'
import './gate.ts'
import './session-state.ts'

declare module 'fastify' {
  interface FastifyInstance {
    twoFactor: TwoFactorApi
  }
  interface FastifyRequest {
    twoFactor: RequestTwoFactor
  }
}

export {}
