// Starts a benchmarked app (bench/server.ts) in a child process and talks to it over IPC.
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { AppVariant, ServerMessage } from '../server.ts'

const SERVER_ENTRY = fileURLToPath(new URL('../server.ts', import.meta.url))

/** The Postgres client the app's drizzle database runs on (bench/server.ts; one pool size for both). */
export type Driver = 'postgres-js' | 'pg'
/** Connections in the app's pool, whichever the driver. */
export const POOL_SIZE = 10
export const DRIVER_NAMES: Record<Driver, string> = { 'postgres-js': 'postgres.js', pg: 'node-postgres' }

export interface ServerSettings {
  databaseUrl: string
  keys: string
  sessionSecret: string
  /** Plugin options for a variant of the plugin app (JSON-serialisable). */
  pluginOptions?: Record<string, unknown>
  /** postgres.js (the default) or node-postgres, with the same pool size. */
  driver?: Driver
  /** Another checkout's bench/server.ts, to measure that code (before/after a change). */
  entry?: string
}

export class ServerProcess {
  private constructor (private readonly child: ChildProcess, readonly variant: AppVariant, readonly origin: string) {}

  static async start (variant: AppVariant, settings: ServerSettings): Promise<ServerProcess> {
    const child = fork(settings.entry ?? SERVER_ENTRY, [], {
      // BENCH_APP_NODE_ARGS adds flags to the apps under test only, e.g. `--cpu-prof` to profile them.
      execArgv: ['--import=tsx', '--expose-gc', ...(process.env.BENCH_APP_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')],
      env: {
        ...process.env,
        NODE_ENV: 'production',
        BENCH_VARIANT: variant,
        BENCH_DATABASE_URL: settings.databaseUrl,
        BENCH_KEYS: settings.keys,
        BENCH_SESSION_SECRET: settings.sessionSecret,
        BENCH_DRIVER: settings.driver ?? 'postgres-js',
        ...(settings.pluginOptions === undefined ? {} : { BENCH_PLUGIN_OPTIONS: JSON.stringify(settings.pluginOptions) })
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    const port = await new Promise<number>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the ${variant} app exited with code ${code} before listening`))
      child.once('exit', onExit)
      child.once('message', (message: ServerMessage) => {
        child.off('exit', onExit)
        if (message.type === 'listening') resolve(message.port)
        else reject(new Error(`unexpected first message from the ${variant} app`))
      })
    })
    return new ServerProcess(child, variant, `http://127.0.0.1:${port}`)
  }

  get pid (): number {
    return this.child.pid!
  }

  private async ask<T extends ServerMessage['type']> (type: T): Promise<Extract<ServerMessage, { type: T }>> {
    return await new Promise((resolve) => {
      const onMessage = (message: ServerMessage) => {
        if (message.type !== type) return
        this.child.off('message', onMessage)
        resolve(message as Extract<ServerMessage, { type: T }>)
      }
      this.child.on('message', onMessage)
      this.child.send({ type })
    })
  }

  /** Resident set size and live heap after a full collection, in bytes. */
  async memory (): Promise<{ rss: number, heapUsed: number }> {
    const { rss, heapUsed } = await this.ask('memory')
    return { rss, heapUsed }
  }

  /** CPU time the app's process has used so far (user + system), µs. */
  async cpuMicros (): Promise<number> {
    return (await this.ask('cpu')).micros
  }

  async stop (): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.send({ type: 'stop' })
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
}
