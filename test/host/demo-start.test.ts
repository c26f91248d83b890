// `npm start` as a new user runs it: the demo's server on a fresh data folder (no DATABASE_URL,
// no keys) creates its database from the shipped empty cluster, seeds its users and answers
// the login page; started again on the same folder, it finds its database and users there.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

/** Starts the demo on `dataDir`, waits for GET /login to answer, stops it; returns its output. */
async function startOnce (dataDir: string): Promise<{ status: number, output: string }> {
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env, DEMO_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }
  for (const name of ['DATABASE_URL', 'TWO_FACTOR_KEYS', 'SESSION_SECRET', 'DEMO_ADMIN_PASSWORD', 'DEMO_USER_PASSWORD', 'NODE_ENV', 'DEMO_EMPTY_CLUSTER']) delete env[name]
  const child = spawn(process.execPath, ['--import=tsx', 'demo-app/server.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let status = 0
  try {
    for (let waited = 0; waited < 120_000 && child.exitCode === null; waited += 100) {
      status = await fetch(`http://127.0.0.1:${port}/login`).then((response) => response.status, () => 0)
      if (status === 200) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    child.kill('SIGTERM')
    await exited
  }
  return { status, output }
}

t.test('the demo on a fresh data folder, then again on the same folder', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tf-demo-start-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))

  const first = await startOnce(dataDir)
  // The output holds the generated passwords: shown only when something went wrong.
  if (first.status !== 200) t.comment(first.output)
  t.equal(first.status, 200, 'GET /login answers')
  t.match(first.output, /from the empty cluster in demo-app\/empty-cluster\//, 'the database comes from the shipped cluster')
  t.match(first.output, /Created user "admin"/)
  t.match(first.output, /Created user "alice"/)

  const second = await startOnce(dataDir)
  if (second.status !== 200) t.comment(second.output)
  t.equal(second.status, 200, 'GET /login answers again')
  t.notMatch(second.output, /Created user|Generated/, 'its keys, database and users are found, not made again')
  t.match(second.output, /database: embedded PGlite in \S+pglite\n/, 'an existing database')
})
