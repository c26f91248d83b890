// The admin users list: search, a status filter, 25 a page; and one user's row on its own.
import { Type } from 'typebox'
import { fail } from '../../errors.ts'
import { PAGE_SIZE, parseStatusFilter, STATUS_FILTERS, type UsersPage } from '../../services/admin-users.ts'
import type { RouteContext, Typed } from '../context.ts'
import { answers, csrfToken } from '../schemas.ts'
import { adminData } from './view.ts'
import { adminRows, idParams, rowJson } from './user-row.ts'

const MAX_QUERY = 200

export async function adminUsersRoutes (app: Typed, ctx: RouteContext & { base: string }): Promise<void> {
  const { core, renderer, base } = ctx
  const { adminUsers } = core.services
  const { toJson, rowView, rowOrNotFound, userPage } = adminRows(ctx)

  function listUrl (page: Pick<UsersPage, 'q' | 'status'>, pageNumber: number, from: number | null = null): string {
    const query = new URLSearchParams()
    if (page.q !== '') query.set('q', page.q)
    if (page.status !== 'all') query.set('status', page.status)
    if (pageNumber > 1) query.set('page', String(pageNumber))
    if (from !== null) query.set('from', String(from))
    const text = query.toString()
    return `${base}/users${text === '' ? '' : `?${text}`}`
  }

  app.get('/admin', async (request, reply) => renderer.redirect(request, reply, `${base}/users`))

  app.get('/admin/users', {
    schema: {
      summary: 'The users list: search, status filter, 25 a page',
      querystring: Type.Object({
        q: Type.Optional(Type.String({ maxLength: 1000 })),
        status: Type.Optional(Type.String({ maxLength: 40, description: STATUS_FILTERS.join(', ') })),
        page: Type.Optional(Type.String({ maxLength: 12 })),
        from: Type.Optional(Type.String({ maxLength: 12, description: 'Where the walk of a filtered view continues (from the previous page’s next link).' }))
      }),
      response: answers({
        200: {
          description: 'A page of users',
          schema: Type.Object({
            users: Type.Array(rowJson),
            total: Type.Union([Type.Integer(), Type.Null()]),
            page: Type.Integer(),
            pageCount: Type.Union([Type.Integer(), Type.Null()]),
            pageSize: Type.Integer(),
            next: Type.Union([Type.String(), Type.Null()]),
            previous: Type.Union([Type.String(), Type.Null()]),
            csrfToken
          })
        }
      })
    }
  }, async (request, reply) => {
    const query = request.query
    const q = (query.q ?? '').trim().slice(0, MAX_QUERY)
    const status = parseStatusFilter(query.status)
    const pageNumber = query.page === undefined || query.page === '' ? 1 : Number(query.page)
    const from = query.from === undefined || query.from === '' ? undefined : Number(query.from)
    if (status === null) throw fail('invalid_input', { message: 'admin.bad_status', params: { statuses: STATUS_FILTERS.join(', ') } })
    if (!Number.isInteger(pageNumber) || pageNumber < 1 || pageNumber > 1_000_000) throw fail('invalid_input', { message: 'admin.bad_page' })
    if (from !== undefined && (!Number.isInteger(from) || from < 0 || from > 100_000_000)) throw fail('invalid_input', { message: 'admin.bad_from' })

    const t = ctx.t(request)
    const page = await adminUsers.page({ q, status, page: pageNumber, from })
    const returnTo = listUrl(page, page.page, from ?? null)
    const next = page.hasNext ? listUrl(page, page.page + 1, page.nextFrom) : null
    const previous = page.page > 1 ? listUrl(page, page.pageCount === null ? page.page - 1 : Math.min(page.page - 1, page.pageCount)) : null
    return await renderer.send(request, reply, {
      page: 'pages/admin-users',
      partial: 'partials/admin-users',
      title: 'title.admin_users',
      json: { users: page.users.map((row) => toJson(t, row)), total: page.total, page: page.page, pageCount: page.pageCount, pageSize: PAGE_SIZE, next, previous },
      data: adminData(request, base, ctx.options.prefix, 'users', {
        list: {
          ...page,
          rows: page.users.map((row) => rowView(request, row, { returnTo })),
          filters: STATUS_FILTERS.map((value) => ({ value, label: t(`admin.filter.${value}`) })),
          previous,
          next,
          first: page.users.length === 0 ? 0 : (page.page - 1) * PAGE_SIZE + 1,
          last: (page.page - 1) * PAGE_SIZE + page.users.length
        }
      })
    })
  })

  app.get('/admin/users/:id', {
    schema: { summary: 'One user’s row', params: idParams, response: answers({ 200: { description: 'The row', schema: rowJson } }) }
  }, async (request, reply) => {
    const row = await rowOrNotFound(request.params.id)
    return await renderer.send(request, reply, { ...userPage(request, row, {}), json: toJson(ctx.t(request), row) })
  })
}
