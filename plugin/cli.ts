#!/usr/bin/env node
// `two-factor`: the operator CLI. Run it from the installed package (`npx two-factor`),
// or from source with `npm run two-factor -- <command>`.
import { main } from './cli/main.ts'

// Once the reader of stdout has gone (`| head`), writes fail with EPIPE (main drops them); long
// output stops at the next page. (process.stdout is never destroyed, so this is the only sign.)
let stdoutGone = false
process.stdout.on('error', (error: NodeJS.ErrnoException) => { if (error.code === 'EPIPE') stdoutGone = true })

process.exitCode = await main(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stdoutClosed: () => stdoutGone
})
