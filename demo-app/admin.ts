// The demo host's own admin pages: a users list, an "add user" form and an "edit user" form
// with a "Require two-factor" checkbox. They use the plugin only through its service API
// (`app.twoFactor.status`, `setRequired`, `onUserCreated`), as an app owner's admin would.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { asc, eq, ilike, sql, type SQL } from 'drizzle-orm'
import type { TwoFactorDatabase } from '../plugin/index.ts'
import { demoUsers, type DemoUser } from './schema.ts'
import { escapeHtml, page } from './views.ts'

export interface DemoAdminDeps {
  db: TwoFactorDatabase
  findUser (id: string): Promise<DemoUser | undefined>
  signedInUser (request: FastifyRequest): Promise<DemoUser | undefined>
  wantsJson (accept: unknown): boolean
  createUser (input: { username: string, password: string, role: string }): Promise<DemoUser>
}

const ROLES = ['user', 'admin', 'finance', 'contractor'] as const
const USERNAME = /^[a-z0-9._-]{2,40}$/

/**
 * The users search, shared by this page and the plugin's `listUsers`: a substring of the
 * username, LIKE's wildcards taken literally. Postgres text can't hold U+0000, so a search with
 * one matches nobody rather than failing in the database.
 */
export function usernameMatching (q: string): SQL | undefined {
  if (q === '') return undefined
  if (q.includes('\u0000')) return sql`false`
  return ilike(demoUsers.username, `%${q.replace(/[%_\\]/g, (c) => '\\' + c)}%`)
}

export async function demoAdminRoutes (app: FastifyInstance, deps: DemoAdminDeps): Promise<void> {
  const { db, findUser, signedInUser, wantsJson, createUser } = deps

  /** The signed-in admin, or an answer already sent (sign in / forbidden). */
  async function adminOr (request: FastifyRequest, reply: FastifyReply): Promise<DemoUser | null> {
    const user = await signedInUser(request)
    if (user === undefined) {
      await reply.redirect('/login', 303)
      return null
    }
    if (user.role !== 'admin') {
      await reply.code(403).type('text/html').send(page({ title: 'Forbidden', csrfToken: reply.generateCsrf(), user, body: '<section class="tf-card"><h1>Forbidden</h1><p>Admins only.</p></section>' }))
      return null
    }
    return user
  }

  app.get('/admin', async (request, reply) => {
    const admin = await adminOr(request, reply)
    if (admin === null) return reply
    const csrfToken = reply.generateCsrf()
    const q = typeof (request.query as { q?: unknown }).q === 'string' ? (request.query as { q: string }).q.slice(0, 100) : ''
    const users = await db.select().from(demoUsers)
      .where(usernameMatching(q))
      .orderBy(asc(demoUsers.username)).limit(50)
    if (wantsJson(request.headers.accept)) {
      return { links: { twoFactorAdmin: '/2fa/admin' }, users: users.map((u) => ({ id: u.id, username: u.username, role: u.role })), csrfToken }
    }
    const rows = users.map((u) => `<li><a href="/admin/users/${encodeURIComponent(u.id)}">${escapeHtml(u.username)}</a> <span class="tf-hint">${escapeHtml(u.role)}</span></li>`).join('')
    return reply.type('text/html').send(page({
      title: 'Admin',
      csrfToken,
      user: admin,
      body: `<section class="tf-card" aria-labelledby="admin-title">
        <h1 id="admin-title">Admin</h1>
        <p><a class="tf-button" href="/2fa/admin">Two-factor admin panel</a></p>
        <h2>Users</h2>
        <form class="tf-inline" method="get" action="/admin" role="search">
          <label for="admin-q">Find a user</label>
          <input id="admin-q" name="q" type="search" value="${escapeHtml(q)}">
          <button class="tf-button tf-secondary" type="submit">Find</button>
        </form>
        <ul id="admin-users">${rows || '<li>No users match.</li>'}</ul>
        <h2 id="add-user-title">Add a user</h2>
        <form class="tf-form" method="post" action="/admin/users" aria-labelledby="add-user-title">
          <input type="hidden" name="_csrf" value="${escapeHtml(csrfToken)}">
          <label for="new-username">Username</label>
          <input id="new-username" name="username" required pattern="[a-z0-9._\\-]{2,40}" autocomplete="off">
          <label for="new-password">Password</label>
          <input id="new-password" name="password" type="password" required minlength="12" autocomplete="new-password">
          <label for="new-role">Role</label>
          <select id="new-role" name="role">${ROLES.map((r) => `<option>${r}</option>`).join('')}</select>
          <p class="tf-hint">New admins must set up two-factor at their first sign-in.</p>
          <button class="tf-button" type="submit">Add user</button>
        </form>
      </section>`
    }))
  })

  app.post('/admin/users', { preHandler: app.csrfProtection }, async (request, reply) => {
    const admin = await adminOr(request, reply)
    if (admin === null) return reply
    const body = (request.body ?? {}) as Record<string, unknown>
    const username = typeof body.username === 'string' ? body.username.trim().toLowerCase() : ''
    const password = typeof body.password === 'string' ? body.password : ''
    const role = typeof body.role === 'string' && (ROLES as readonly string[]).includes(body.role) ? body.role : null
    if (!USERNAME.test(username) || password.length < 12 || password.length > 1024 || role === null) {
      return reply.code(422).send({ error: 'invalid_input', message: 'A username of 2–40 lowercase letters, digits, . _ -; a password of at least 12 characters; a known role.' })
    }
    if ((await db.select({ id: demoUsers.id }).from(demoUsers).where(eq(demoUsers.username, username)).limit(1)).length > 0) {
      return reply.code(409).send({ error: 'exists', message: 'That username is taken.' })
    }
    const created = await createUser({ username, password, role })
    // The plugin marks new admin accounts as required.
    await app.twoFactor.onUserCreated(created.id)
    if (wantsJson(request.headers.accept)) return { id: created.id }
    return reply.redirect(`/admin/users/${encodeURIComponent(created.id)}?created=1`, 303)
  })

  app.get('/admin/users/:id', async (request, reply) => {
    const admin = await adminOr(request, reply)
    if (admin === null) return reply
    const user = await findUser((request.params as { id: string }).id)
    if (user === undefined) return reply.code(404).send({ error: 'not_found', message: 'No such user.' })
    const status = await app.twoFactor.status(user.id)
    const csrfToken = reply.generateCsrf()
    if (wantsJson(request.headers.accept)) {
      return { user: { id: user.id, username: user.username, role: user.role }, twoFactor: { enabled: status.enabled, required: status.required, requiredBy: status.requiredBy }, csrfToken }
    }
    const query = request.query as { saved?: string, created?: string }
    const notice = query.created === '1' ? 'User added.' : query.saved === '1' ? 'Saved.' : ''
    return reply.type('text/html').send(page({
      title: `Edit ${user.username}`,
      csrfToken,
      user: admin,
      body: `<section class="tf-card" aria-labelledby="edit-title">
        <h1 id="edit-title">Edit ${escapeHtml(user.username)}</h1>
        <p id="edit-notice" role="status">${escapeHtml(notice)}</p>
        <dl class="tf-facts">
          <dt>Two-factor</dt><dd id="edit-2fa">${status.enabled ? 'on' : 'off'}</dd>
          <dt>Required</dt><dd id="edit-required-by">${escapeHtml(status.required ? status.requiredBy : 'no')}</dd>
        </dl>
        <form class="tf-form" method="post" action="/admin/users/${encodeURIComponent(user.id)}">
          <input type="hidden" name="_csrf" value="${escapeHtml(csrfToken)}">
          <label for="edit-role">Role</label>
          <select id="edit-role" name="role">${ROLES.map((r) => `<option${r === user.role ? ' selected' : ''}>${r}</option>`).join('')}</select>
          <label class="tf-check"><input id="edit-require" type="checkbox" name="requireTwoFactor" value="on"${status.required ? ' checked' : ''} aria-describedby="edit-require-hint"> Require two-factor</label>
          <p id="edit-require-hint" class="tf-hint">Unticking it also turns off the user’s two-factor (their authenticator and recovery codes stop working): it is how you help someone who lost both.</p>
          <button class="tf-button" type="submit">Save</button>
        </form>
        <p><a href="/admin">Back to users</a></p>
      </section>`
    }))
  })

  app.post('/admin/users/:id', { preHandler: app.csrfProtection }, async (request, reply) => {
    const admin = await adminOr(request, reply)
    if (admin === null) return reply
    const user = await findUser((request.params as { id: string }).id)
    if (user === undefined) return reply.code(404).send({ error: 'not_found', message: 'No such user.' })
    const body = (request.body ?? {}) as Record<string, unknown>
    const role = typeof body.role === 'string' && (ROLES as readonly string[]).includes(body.role) ? body.role : user.role
    const requireTwoFactor = body.requireTwoFactor === 'on' || body.requireTwoFactor === true
    if (role !== user.role) await db.update(demoUsers).set({ role }).where(eq(demoUsers.id, user.id))
    const before = await app.twoFactor.status(user.id)
    if (requireTwoFactor !== before.required) {
      await app.twoFactor.setRequired(user.id, requireTwoFactor, { actor: admin.id, ip: request.ip, userAgent: request.headers['user-agent'] ?? null })
    }
    const after = await app.twoFactor.status(user.id)
    if (wantsJson(request.headers.accept)) return { id: user.id, role, twoFactor: { enabled: after.enabled, required: after.required, requiredBy: after.requiredBy } }
    return reply.redirect(`/admin/users/${encodeURIComponent(user.id)}?saved=1`, 303)
  })
}
