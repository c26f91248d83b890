import { defineConfig } from 'drizzle-kit'
import { MIGRATIONS_TABLE, SCHEMA_NAME } from './plugin/db/schema.ts'

export default defineConfig({
  dialect: 'postgresql',
  schema: './plugin/db/schema.ts',
  out: './drizzle',
  schemaFilter: [SCHEMA_NAME],
  migrations: { schema: SCHEMA_NAME, table: MIGRATIONS_TABLE }
})
