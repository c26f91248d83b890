// How the operator CLI (`npm run two-factor -- …`) reaches the demo app's users in this
// checkout: the demo's adapter, so `<user>` may be a user name (`status alice`), on the
// database `npm start` uses (DATABASE_URL when set, else its PGlite folder under .data/).
// A host writes the same file with its own adapter.
import { join } from 'node:path'
import { demoAccounts } from './demo-app/accounts.ts'
import type { TwoFactorCliConfig } from './plugin/index.ts'

export default {
  accounts: (db) => demoAccounts(db),
  dataDir: join(process.env.DEMO_DATA_DIR ?? '.data', 'pglite')
} satisfies TwoFactorCliConfig
