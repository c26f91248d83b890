#!/usr/bin/env bash
# The example host on the package as npm ships it: install the packed tarball here (like an app
# owner would), type-check strictly (no skipLibCheck), run `node dist/server.js` on a fresh
# Postgres database and walk the sign-in journey against it; then stop it and drop the database.
#
#   examples/minimal-host/run.sh [path/to/fastify-two-factor-x.y.z.tgz]
#
# Without a tarball it runs `npm pack` in the checkout (prepack builds the package first).
# Postgres: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres, trust auth).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
admin_url="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
port="${EXAMPLE_PORT:-$((20000 + RANDOM % 20000))}"
database="minimal_host_$$"
work="$(mktemp -d)"
server=""

sql () { # runs one statement as the admin user, with the example's own postgres.js
  (cd "$here" && node --input-type=module -e "import postgres from 'postgres'; const sql = postgres(process.argv[1], { onnotice () {} }); try { await sql.unsafe(process.argv[2]) } finally { await sql.end() }" "$admin_url" "$1")
}
cleanup () {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  [ -d "$here/node_modules/postgres" ] && sql "drop database if exists $database with (force)" || true
  rm -rf "$work"
}
trap cleanup EXIT

# The README's Quick start is server.ts shortened: each of its lines (but "// …" elisions) is here.
node -e '
const fs = require("node:fs")
const block = fs.readFileSync(process.argv[1], "utf8").split("\n## Quick start\n")[1]?.split("```ts\n")[1]?.split("\n```")[0]
if (block === undefined) { console.error("minimal-host: no ```ts block under the README'"'"'s ## Quick start"); process.exit(1) }
const lines = new Set(fs.readFileSync(process.argv[2], "utf8").split("\n").map((l) => l.trim()))
const missing = block.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("// …") && !lines.has(l))
if (missing.length > 0) { console.error("minimal-host: lines of the README Quick start that server.ts lacks:\n  " + missing.join("\n  ")); process.exit(1) }
' "$root/README.md" "$here/server.ts"

tarball="${1:-}"
if [ -z "$tarball" ]; then
  (cd "$root" && npm pack --silent --pack-destination "$work" >/dev/null)
  tarball="$(ls "$work"/fastify-two-factor-*.tgz)"
fi
cp "$tarball" "$here/fastify-two-factor.tgz"

cd "$here"
rm -rf dist node_modules/fastify-two-factor   # npm would keep an older copy of the same version
# The repository's type tests of the public surface, pointed at the installed package: the
# packed declarations must give a host exactly what the sources give the repository's tests.
sed "s#from '../../plugin/index.ts'#from 'fastify-two-factor'#" "$root/test/types/public-surface.ts" > public-surface.ts
grep -q "from 'fastify-two-factor'" public-surface.ts || { echo "minimal-host: public-surface.ts no longer imports the package" >&2; exit 1; }
npm install --no-audit --no-fund --no-package-lock --loglevel=error
# Strict, with skipLibCheck off: every declaration file is checked, the package's above all.
# drizzle-orm 0.45's own .d.ts fail that check (upstream drizzle-orm#5187, nothing this package
# or host can fix), so errors inside node_modules/drizzle-orm/ are counted and let through; any
# other error fails. tsc still emits dist/ with them.
if ! npx tsc -p . >"$work/tsc.log"; then
  if grep -E '^[^ ].*error TS' "$work/tsc.log" | grep -qv '^node_modules/drizzle-orm/'; then
    grep -E '^[^ ].*error TS' "$work/tsc.log" | grep -v '^node_modules/drizzle-orm/'; echo "minimal-host: tsc failed" >&2; exit 1
  fi
  echo "tsc: $(grep -cE '^node_modules/drizzle-orm/.*error TS' "$work/tsc.log") errors, all in drizzle-orm's own declarations (drizzle-orm#5187): tolerated"
fi

sql "create database $database"
secret () { node -e "console.log(require('node:crypto').randomBytes(32).toString('base64'))"; }
DATABASE_URL="${admin_url%/*}/$database" TWO_FACTOR_KEYS="k1:$(secret)" SESSION_SECRET="$(secret)" \
  INSECURE_COOKIES=1 PORT="$port" node dist/server.js >"$work/server.log" 2>&1 &
server=$!

base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  node -e "fetch('$base/login').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))" && break
  if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.log"; echo "minimal-host: the server exited" >&2; exit 1; fi
  sleep 0.2
done

if ! BASE_URL="$base" node journey.mjs; then
  echo "--- server log"; cat "$work/server.log"; exit 1
fi
if grep -q '"level":[4-6]0' "$work/server.log"; then
  echo "--- the server logged warnings or errors:"; grep '"level":[4-6]0' "$work/server.log"; exit 1
fi
