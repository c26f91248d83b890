// The CLI's help: one overview and one text per command.
import type { CommandName } from './args.ts'

const CONNECTION = `Database and keys:
  DATABASE_URL / --database-url URL   a Postgres server (postgres.js)
  --data-dir DIR                      an embedded PGlite folder (default: .data/pglite, the demo's)
                                      Stop the app first: one process at a time may open it.
  TWO_FACTOR_KEYS / --keys-file FILE  the key ring, "id:base64key,…" (first one current); with a
                                      PGlite folder the demo's <folder>/../two-factor-keys is read
                                      when neither is given. Only rotate-keys needs the keys.`

export const OVERVIEW = `two-factor: operator commands for fastify-two-factor

Usage: two-factor <command> [arguments] [options]

Commands:
  list [--status S] [--page N] [--limit N]   accounts the two-factor tables know, and their status
  status <user>                  one user's two-factor status
  require <user> on|off          require 2FA for a user; "off" also clears their secret and codes
  reset <user> --reason TEXT     emergency: clear secret and recovery codes (the user enrols again)
  unlock <user>                  end a lockout after too many failed codes
  rotate-keys [--batch-size N]   re-seal every secret under the current key
  migrate                        apply the database migrations
  help [command]                 this text, or one command's

<user> is the user id as the app stores it (text), not a display name.
Every change is written to the audit log with actor "cli".
Add --json for machine-readable output.

${CONNECTION}

Exit codes: 0 done, 1 failed (database, keys, unknown user), 2 bad arguments.`

export const COMMAND_HELP: Record<CommandName, string> = {
  list: `Usage: two-factor list [--status enrolled|awaiting|not-required|locked] [--page N] [--limit N] [--json]

Lists the accounts the two-factor tables know (users who signed in, or were given a
requirement), ordered by user id, --limit per page (default 50).
Statuses: enrolled (2FA on), locked (too many failed codes), awaiting (required by an
admin's flag but not set up), not-required. Requirements by role or "require for everyone"
depend on the app's user data: the admin panel (/2fa/admin) shows those.`,
  status: `Usage: two-factor status <user> [--json]

Shows what the two-factor tables hold for one user: whether 2FA is on and since when,
recovery codes left, the admin's requirement flag, a lockout, a pending setup, recent events.`,
  require: `Usage: two-factor require <user> on|off

on:  the user must set up 2FA at their next sign-in.
off: lifts the requirement and clears the user's secret and recovery codes, and ends their
     sessions: how to rescue a user who lost both their phone and their codes.`,
  reset: `Usage: two-factor reset <user> --reason "why"

Emergency reset: clears the user's secret and recovery codes and ends their sessions; they
sign in with their password and set up 2FA again if required. The reason goes into the
audit log (event disabled.by_admin, actor cli). This is how a sole admin who lost both phone
and codes gets back in.`,
  unlock: `Usage: two-factor unlock <user>

Ends a lockout started by too many failed codes.`,
  'rotate-keys': `Usage: two-factor rotate-keys [--batch-size N]

Re-seals every TOTP secret (and pending setup) under the first key of TWO_FACTOR_KEYS, in
batches of N (default 500), each row written only if nobody changed it meanwhile, so it is
safe while the app runs. To rotate:
  1. put the new key first and keep the old one after it: TWO_FACTOR_KEYS="k2:…,k1:…";
     restart every app instance with it;
  2. run two-factor rotate-keys;
  3. keep k1 in the ring while unused recovery codes made under it remain (the report
     counts them: codes are stored as digests and can't be re-made); users regenerate codes
     from their settings page.

${CONNECTION}`,
  migrate: `Usage: two-factor migrate

Applies the committed migrations (schema "two_factor"); safe to run again, and safe while
other instances start (an advisory lock serialises them).`,
  help: OVERVIEW
}
