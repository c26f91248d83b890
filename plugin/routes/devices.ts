// The browsers the user trusted ("don't ask again"): listed in settings, each forgotten alone or
// all at once. A forgotten browser is asked for a code at its next sign-in.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { fail } from '../errors.ts'
import type { TrustedDevice } from '../services/trusted-devices.ts'
import { auditContextOf, signedInUserOf, type RouteContext, type Typed } from './context.ts'
import { answers, body, csrfToken } from './schemas.ts'
import { answerSettingsList } from './settings-list.ts'

const deviceJson = Type.Object({
  id: Type.String(),
  label: Type.String({ description: 'Browser and system, from the user agent when trust was given.' }),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  expiresAt: Type.String({ format: 'date-time', description: 'Fixed when trust was given; use does not extend it.' })
})

export const devicesAnswer = Type.Object({ devices: Type.Array(deviceJson), notice: Type.Optional(Type.String()), csrfToken })

export function deviceView (device: TrustedDevice) {
  return {
    id: device.id,
    label: device.label,
    createdAt: device.createdAt.toISOString(),
    lastUsedAt: device.lastUsedAt?.toISOString() ?? null,
    expiresAt: device.expiresAt.toISOString()
  }
}

export async function devicesRoutes (app: Typed, ctx: RouteContext): Promise<void> {
  const { options, core } = ctx

  const signedInUser = (request: FastifyRequest): string => signedInUserOf(request, options)

  const answer = async (request: FastifyRequest, reply: FastifyReply, userId: string, notice?: string) =>
    await answerSettingsList(ctx, request, reply, {
      name: 'devices',
      load: async () => (await core.services.trustedDevices.list(userId)).map(deviceView),
      notice
    })

  app.get('/devices', {
    schema: { summary: 'The browsers that skip the code at sign-in', response: answers({ 200: { description: 'The trusted browsers', schema: devicesAnswer } }) }
  }, async (request, reply) => await answer(request, reply, signedInUser(request)))

  app.post('/devices/:id/forget', {
    ...ctx.post,
    schema: {
      summary: 'Forget one trusted browser',
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      body: body({}),
      response: answers({ 200: { description: 'The browsers still trusted', schema: devicesAnswer }, 303: { description: 'A plain form goes back to settings' } })
    }
  }, async (request, reply) => {
    const userId = signedInUser(request)
    if (!await core.services.trustedDevices.forget(userId, request.params.id, auditContextOf(request))) throw fail('not_found', { message: 'devices.not_found' })
    return await answer(request, reply, userId, ctx.t(request)('devices.forgotten_one'))
  })

  app.post('/devices/forget-all', {
    ...ctx.post,
    schema: {
      summary: 'Forget every trusted browser',
      body: body({}),
      response: answers({ 200: { description: 'No browser is trusted any more', schema: devicesAnswer }, 303: { description: 'A plain form goes back to settings' } })
    }
  }, async (request, reply) => {
    const userId = signedInUser(request)
    await core.services.trustedDevices.forgetAll(userId, auditContextOf(request))
    return await answer(request, reply, userId, ctx.t(request)('devices.forgotten_all'))
  })
}
