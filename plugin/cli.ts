#!/usr/bin/env node
// `two-factor`: the operator CLI. Run it from the installed package (`npx two-factor`),
// or from source with `npm run two-factor -- <command>`.
import { main } from './cli/main.ts'

process.exitCode = await main(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text)
})
