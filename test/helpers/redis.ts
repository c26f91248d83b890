// The machine's Redis for the tests that need one: where it is (REDIS_URL, default the local
// server) and whether it answers, so those tests skip with a reason where there is none.
import { Redis } from 'ioredis'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

export async function redisReachable (): Promise<boolean> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return await redis.ping() === 'PONG'
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}
