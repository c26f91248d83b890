// One load run with autocannon, reduced to the figures the report prints. Percentiles come
// from every response's own latency (autocannon's histogram has no p95).
import autocannon from 'autocannon'

export interface LoadOptions {
  url: string
  connections: number
  /** Seconds to run; or `amount` requests, whichever is given. */
  duration?: number
  amount?: number
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  /** Builds each request (a fresh user, code or session per request). */
  setupRequest?: (request: autocannon.Request) => autocannon.Request
}

export interface LoadResult {
  requests: number
  seconds: number
  requestsPerSecond: number
  p50: number
  p95: number
  p99: number
  /** Responses by status code, to check every request did what it was meant to. */
  statuses: Record<string, number>
  errors: number
  /** Responses in each whole second since the run started (index 0: the first second). */
  perSecond: number[]
}

export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]!
}

export async function load (options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  const started = process.hrtime.bigint()
  let instance!: autocannon.Instance
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon({
      url: options.url,
      connections: options.connections,
      ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.duration ?? 5 }),
      method: options.method ?? 'GET',
      headers: options.headers,
      body: options.body,
      requests: options.setupRequest === undefined ? undefined : [{ setupRequest: options.setupRequest }],
      timeout: 30
    }, (error, result) => error === null || error === undefined ? resolve(result) : reject(error))
  })
  // The rate runs to the last response, not to autocannon's callback: with `amount`, that comes
  // on its next one-second tick, which made a 3.0x s run out of a 2.1 s one (a fixed-size run's
  // rate was quantised to amount / whole seconds).
  let lastResponseAt = started
  const perSecond: number[] = []
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    lastResponseAt = process.hrtime.bigint()
    const second = Number((lastResponseAt - started) / 1_000_000_000n)
    while (perSecond.length <= second) perSecond.push(0)
    perSecond[second]!++
    latencies.push(responseTime)
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1
  })
  const result = await finished
  const seconds = Number(lastResponseAt - started) / 1e9
  latencies.sort((a, b) => a - b)
  return {
    requests: latencies.length,
    seconds,
    requestsPerSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    statuses,
    errors: result.errors,
    perSecond
  }
}

/** Requests of `count` in `result` with the given status. */
export const countOf = (result: LoadResult, status: number): number => result.statuses[String(status)] ?? 0

export interface TimedResult { samples: number, p50: number, p95: number }

/**
 * One request at a time, for `seconds` and at least `minSamples` requests: the latency an
 * admin waits for a page, without queueing behind other requests.
 */
export async function timeRequests (url: string, headers: Record<string, string>, seconds: number, minSamples: number): Promise<TimedResult> {
  const latencies: number[] = []
  const until = Date.now() + seconds * 1000
  while (Date.now() < until || latencies.length < minSamples) {
    const started = process.hrtime.bigint()
    const response = await fetch(url, { headers })
    await response.arrayBuffer()
    if (response.status !== 200) throw new Error(`GET ${url}: HTTP ${response.status}`)
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  latencies.sort((a, b) => a - b)
  return { samples: latencies.length, p50: percentile(latencies, 50), p95: percentile(latencies, 95) }
}
