// The account's signed-in sessions: where each is (browser and system, IP), when it began and
// was last seen, this one marked; "Sign out" for one, "Sign out all other sessions". Each is
// named by a handle, never its session id. Ending one takes effect on its next request, on
// every instance (the store is shared).
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { describeUserAgent } from '../core/user-agent.ts'
import { fail } from '../errors.ts'
import type { ListedSession } from '../services/sessions.ts'
import { auditContextOf, signedInUserOf, type RouteContext, type Typed } from './context.ts'
import { answers, body, csrfToken } from './schemas.ts'
import { answerSettingsList } from './settings-list.ts'

const sessionJson = Type.Object({
  id: Type.String({ description: 'A handle for this session (not its id).' }),
  current: Type.Boolean({ description: 'The session that asks.' }),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  browser: Type.Union([Type.String(), Type.Null()]),
  os: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastSeenAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
})

export const sessionsAnswer = Type.Object({ sessions: Type.Array(sessionJson), ended: Type.Optional(Type.Integer()), notice: Type.Optional(Type.String()), csrfToken })

/** A listed session as the page and JSON show it. */
export function sessionView (session: ListedSession) {
  const { browser, os } = describeUserAgent(session.userAgent)
  return {
    id: session.handle,
    current: session.current,
    userAgent: session.userAgent,
    browser,
    os,
    ip: session.ip,
    createdAt: session.createdAt?.toISOString() ?? null,
    lastSeenAt: session.lastSeenAt?.toISOString() ?? null
  }
}

export async function sessionsRoutes (app: Typed, ctx: RouteContext): Promise<void> {
  const { options, core } = ctx

  const signedInUser = (request: FastifyRequest): string => signedInUserOf(request, options)

  const answer = async (request: FastifyRequest, reply: FastifyReply, userId: string, change: { notice?: string, ended?: number } = {}) =>
    await answerSettingsList(ctx, request, reply, {
      name: 'sessions',
      load: async () => (await core.services.sessions.list(userId, request.session.sessionId)).map(sessionView),
      notice: change.notice,
      json: change.ended !== undefined ? { ended: change.ended } : {}
    })

  app.get('/sessions', {
    schema: { summary: 'The signed-in user’s sessions', response: answers({ 200: { description: 'The sessions, newest first', schema: sessionsAnswer } }) }
  }, async (request, reply) => await answer(request, reply, signedInUser(request)))

  app.post('/sessions/:id/end', {
    ...ctx.post,
    schema: {
      summary: 'Sign one of the user’s sessions out',
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      body: body({}),
      response: answers({ 200: { description: 'The sessions left', schema: sessionsAnswer }, 303: { description: 'A plain form goes back to settings' } })
    }
  }, async (request, reply) => {
    const userId = signedInUser(request)
    const ended = await core.services.sessions.end(userId, request.params.id, auditContextOf(request))
    if (!ended) throw fail('not_found', { message: 'sessions.not_found' })
    return await answer(request, reply, userId, { ended: 1, notice: ctx.t(request)('sessions.ended_one') })
  })

  app.post('/sessions/end-others', {
    ...ctx.post,
    schema: {
      summary: 'Sign out every other session of the user',
      body: body({}),
      response: answers({ 200: { description: 'The sessions left: this one', schema: sessionsAnswer }, 303: { description: 'A plain form goes back to settings' } })
    }
  }, async (request, reply) => {
    const userId = signedInUser(request)
    const ended = await core.services.sessions.endOthers(userId, request.session.sessionId, auditContextOf(request), 'user')
    return await answer(request, reply, userId, { ended, notice: ctx.t(request)(ended === 1 ? 'sessions.ended_others_one' : 'sessions.ended_others_other', { count: ended }) })
  })
}
