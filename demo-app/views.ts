// The demo host's pages: deliberately plain HTML strings, as a small app might have. They link
// the plugin's stylesheet so the whole demo looks like one app.
export function escapeHtml (value: unknown): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
}

export interface PageInput {
  title: string
  csrfToken: string
  body: string
  user?: { username: string, role: string } | null
  /** The plugin's banner (`request.twoFactor.banner(reply)`): already HTML, '' when there is nothing to say. */
  banner?: string
}

export function page ({ title, csrfToken, body, user, banner = '' }: PageInput): string {
  const nav = user
    ? `<nav class="demo-nav" aria-label="Main">
        <a href="/">Dashboard</a>
        <a href="/2fa/settings">Two-factor settings</a>
        ${user.role === 'admin' ? '<a href="/admin">Admin</a>' : ''}
        <form class="tf-inline" method="post" action="/logout">
          <input type="hidden" name="_csrf" value="${escapeHtml(csrfToken)}">
          <button class="tf-link" type="submit">Sign out ${escapeHtml(user.username)}</button>
        </form>
      </nav>`
    : ''
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="csrf-token" content="${escapeHtml(csrfToken)}">
  <title>${escapeHtml(title)} · Demo</title>
  <link rel="stylesheet" href="/2fa/assets/two-factor.css">
</head>
<body class="tf">
  <main class="tf-main">
    ${nav}
    ${banner}
    ${body}
  </main>
</body>
</html>`
}

export function loginForm ({ error, username, returnTo, csrfToken }: { error?: string, username?: string, returnTo?: string, csrfToken: string }): string {
  return `<section class="tf-card" aria-labelledby="login-title">
  <h1 id="login-title">Sign in</h1>
  <div id="login-error" class="tf-error" role="alert" aria-live="assertive">${error ? escapeHtml(error) : ''}</div>
  <form class="tf-form" method="post" action="/login">
    <input type="hidden" name="_csrf" value="${escapeHtml(csrfToken)}">
    ${returnTo ? `<input type="hidden" name="returnTo" value="${escapeHtml(returnTo)}">` : ''}
    <label for="username">Username</label>
    <input id="username" name="username" autocomplete="username" required value="${escapeHtml(username ?? '')}">
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <button class="tf-button" type="submit">Sign in</button>
  </form>
</section>`
}
