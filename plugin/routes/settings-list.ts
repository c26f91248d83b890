// The lists shown on the settings page (signed-in sessions, trusted browsers) answer a look or a
// change the same way: a plain form goes back to the settings page, where the list is; JSON,
// htmx and a direct GET get the list itself, with what just happened as a notice.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { isHtmx, wantsJson } from '../views/renderer.ts'
import type { RouteContext } from './context.ts'

export interface SettingsList {
  /** The JSON field, the templates (`pages/…`, `partials/…`) and the title (`title.…`). */
  name: 'sessions' | 'devices'
  load: () => Promise<unknown[]>
  notice?: string
  /** More JSON fields, e.g. how many sessions a change ended. */
  json?: Record<string, unknown>
}

export async function answerSettingsList (ctx: RouteContext, request: FastifyRequest, reply: FastifyReply, list: SettingsList) {
  const { prefix } = ctx.options
  if (request.method === 'POST' && !wantsJson(request) && !isHtmx(request)) return reply.redirect(`${prefix}/settings`, 303)
  const items = await list.load()
  const { name, notice } = list
  return await ctx.renderer.send(request, reply, {
    page: `pages/${name}`,
    partial: `partials/${name}`,
    title: `title.${name}`,
    json: { [name]: items, ...list.json, ...(notice !== undefined ? { notice } : {}) },
    data: { [name]: { list: items, prefix, notice } }
  })
}
