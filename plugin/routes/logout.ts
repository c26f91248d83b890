// Sign-out, reachable in every sign-in state: a session at the code prompt or in the forced
// wizard can undo the password step (on a shared computer, say).
import { Type } from 'typebox'
import type { RouteContext, Typed } from './context.ts'
import { answers, body, next } from './schemas.ts'

export async function logoutRoutes (app: Typed, ctx: RouteContext): Promise<void> {
  app.post('/logout', {
    ...ctx.signInPost,
    schema: {
      summary: 'Sign out (any sign-in state)',
      body: body({}),
      response: answers({ 200: { description: 'Signed out (JSON)', schema: Type.Object({ state: Type.Literal('anonymous'), next, csrfToken: Type.String() }) }, 303: { description: 'To the login page' } })
    }
  }, async (request, reply) => {
    await request.twoFactor.logout()
    return ctx.renderer.redirect(request, reply, ctx.options.loginPath, { state: 'anonymous' })
  })
}
