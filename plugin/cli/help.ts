// The CLI's help: one overview and one text per command.
import type { CommandName } from './args.ts'

const CONNECTION = `Database and keys (the command line first, then the environment, then the config file):
  --database-url URL / DATABASE_URL   a Postgres server (postgres.js)
  --data-dir DIR                      an embedded PGlite folder (default: .data/pglite, the demo's)
                                      Stop the app first: one process at a time may open it.
  --keys-file FILE / TWO_FACTOR_KEYS  the key ring, "id:base64key,…" (first one current); with a
                                      PGlite folder the demo's <folder>/../two-factor-keys is read
                                      when neither is given. Only doctor and rotate-keys need it.`

const CONFIG = `Config file (optional): two-factor.config.ts (or .mts, .js, .mjs) in the current folder,
or --config FILE. Its default export tells the CLI about the app, as drizzle.config.ts does
for drizzle-kit:
  export default {
    accounts: (db) => myAccountsAdapter(db), // the plugin's adapter (or a function of the CLI's
                                             // database); with findByLogin, <user> may be a login
    databaseUrl: process.env.APP_DATABASE_URL, // optional: used when DATABASE_URL is not set
    dataDir: '.data/pglite',                   // optional: a PGlite folder, relative to the file
    keys: process.env.APP_TWO_FACTOR_KEYS,     // optional: used when TWO_FACTOR_KEYS is not set
    sessionStore: new RedisSessionStore(redis) // optional: where the app keeps sessions, if not
  }                                            // the plugin's Postgres store (resets end them)
A .ts config needs tsx installed. This checkout's config points at the demo app's users.`

export const OVERVIEW = `two-factor: operator commands for fastify-two-factor

Usage: two-factor <command> [arguments] [options]

Commands:
  list [--status S] [--page N] [--limit N]   accounts the two-factor tables know, and their status
  status <user>                  one user's two-factor status
  require <user> on|off          require 2FA for a user; "off" also clears their secret and codes
  reset <user> --reason TEXT     emergency: clear secret and recovery codes (the user enrols again)
  unlock <user>                  end a lockout after too many failed codes
  exempt <user> --until DATE --reason TEXT | --off
                                 break-glass: exempt a user from every rule until a date
  policy [show]                  who must use 2FA
  policy set [--everyone on|off] [--grace-days N] [--roles a,b] [--exempt-roles a,b] [--allow-skip on|off]
  events [--user U] [--type T] [--since DATE] [--limit N] [--format text|jsonl]
                                 the audit log, newest first (jsonl: an export)
  prune-events --older-than DAYS delete audit events older than that
  doctor                         check keys, clocks and migrations
  rotate-keys [--batch-size N]   re-seal every secret under the current key
  migrate                        apply the database migrations
  help [command]                 this text, or one command's (also: two-factor <command> --help)

<user> is the user id as the app stores it (text), or a login name when the config file's
adapter has findByLogin (an id wins over a login name).
Every change is written to the audit log with actor "cli".
Add --json for machine-readable output.

${CONNECTION}

${CONFIG}

Exit codes: 0 done, 1 failed (database, keys, unknown user, a doctor check), 2 bad arguments.`

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
  exempt: `Usage: two-factor exempt <user> --until DATE --reason "why"
       two-factor exempt <user> --off

Break-glass: no rule requires two-factor of the user until DATE (at most a year ahead), when
the exemption ends by itself; --off ends it now. DATE is 2026-07-01 (its start, 00:00 UTC) or
2026-07-01T18:00 (UTC unless it ends in Z or +02:00). Audited as exempt.on (with the date and
reason) and exempt.off, actor cli. The user's enrolment, if any, is left as it is.`,
  policy: `Usage: two-factor policy [show] [--json]
       two-factor policy set [--everyone on|off] [--grace-days N] [--roles a,b]
                             [--exempt-roles a,b] [--allow-skip on|off]

What the admin panel's policy form sets; "set" changes only what it names:
  --everyone on|off      require two-factor for everyone; the grace period starts when it is
                         switched on (or at a newer account's creation)
  --grace-days N         days (0–365) during which users may skip setting it up
  --roles a,b            roles whose members must use two-factor ("" for none)
  --exempt-roles a,b     roles left out of "everyone" ("" for none)
  --allow-skip on|off    "Skip for now" for per-user and per-role requirements
Audited as policy.changed (before and after), actor cli. Admins are required by default.`,
  events: `Usage: two-factor events [--user U] [--type T] [--since DATE] [--limit N] [--format text|jsonl]

The audit log, newest first. --user takes an id or a login name; --type one event type
(enrolment.completed, challenge.failed, exempt.on, …); --since a date or time (UTC).
text: one event a line, the newest 50 unless --limit says (stored text is escaped).
jsonl (or --json): one JSON object a line, every matching event unless --limit says: an
export, e.g. two-factor events --since 2026-01-01 --format jsonl > audit.jsonl`,
  'prune-events': `Usage: two-factor prune-events --older-than DAYS

Deletes the audit events older than DAYS days (1–36500). The deletion is itself logged
(events.pruned, with the count, actor cli). The plugin's option auditRetentionDays does the
same at startup and once a day.`,
  doctor: `Usage: two-factor doctor [--batch-size N] [--json]

Checks, without changing anything:
  - every stored secret (and pending setup) opens under the key ring: counts those that open
    and names those that don't (a missing key, or a damaged value);
  - unused recovery codes made under a key the ring no longer holds;
  - this machine's clock against the database's (codes fail when the app's clock is off);
  - the migrations are current;
and reminds you to keep a copy of the keys apart from the database backups.
Exits 1 if a check failed. Needs the key ring (TWO_FACTOR_KEYS).

${CONNECTION}`,
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
