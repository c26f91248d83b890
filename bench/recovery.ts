// 3. Recovery-code cost: one check is normalise, one HMAC per key, and one indexed
// UPDATE on (user_id, digest), so it must cost the same with 1 000 users (≈ 10 000 codes) as
// with 100 000 (≈ 900 000 codes). Two databases hold the two sizes and the same 300 users with
// the same kind of codes; the checks alternate between them in blocks, so that warm-up and
// drift fall on both alike. Measured in this process through the plugin's own service
// (the challenge service's check of a recovery code, audit events included), one check at
// a time: Node CPU per check (process.cpuUsage) and wall time per check, round trips included.
//
// Per user, in order: an unknown code (a failure: counter 1), a valid code (a success: counter
// cleared), the same code again (used: a failure, counter 1). No account nears the lock.
import Fastify from 'fastify'
import type { Keyring } from '../plugin/index.ts'
import { generateRecoveryCodes } from '../plugin/core/recovery.ts'
import { createCliCore } from '../plugin/cli/service.ts'
import type { Core } from '../plugin/services/core.ts'
import type { BenchDatabase } from './lib/database.ts'
import { percentile } from './lib/load.ts'
import { idsOf, POOLS } from './lib/population.ts'
import { figure, type Figure } from './lib/report.ts'
import type { Seeder } from './lib/seed.ts'

const KINDS = ['unknown', 'valid', 'used'] as const
type Kind = typeof KINDS[number]
const BLOCK = 50
const WARM_UP_CHECKS = 100

export interface Population {
  database: BenchDatabase
  seeder: Seeder
}

interface Side {
  service: Core['services']['challenge']
  population: Population
  cpu: Record<Kind, number>
  walls: Record<Kind, number[]>
}

function serviceFor (database: BenchDatabase, keyring: Keyring, _sessionSecret: string): Core['services']['challenge'] {
  return createCliCore(database.db, keyring, Fastify({ logger: false }).log).services.challenge
}

const context = { ip: '127.0.0.1', userAgent: 'bench', sessionId: 'bench' }

async function sizeOf (database: BenchDatabase): Promise<{ users: number, codes: number, plan: string }> {
  const [{ users, codes }] = await database.sql<[{ users: number, codes: number }]>`
    select (select count(*)::int from demo_users) as users, (select count(*)::int from two_factor.recovery_codes) as codes`
  const planRows = await database.sql<Array<{ 'QUERY PLAN': string }>>`
    explain update two_factor.recovery_codes set used_at = now()
    where user_id = 'u000001' and digest in (${'0'.repeat(64)}) and used_at is null`
  const scan = planRows.map((r) => r['QUERY PLAN']).find((line) => /Scan/.test(line)) ?? 'unknown'
  return { users, codes, plan: scan.trim().replace(/^->\s*/, '').replace(/\s+\(cost.*$/, '') }
}

export async function recoveryCodeCost (keyring: Keyring, sessionSecret: string, small: Population, large: Population): Promise<Figure[]> {
  const sides: Side[] = [small, large].map((population) => ({
    service: serviceFor(population.database, keyring, sessionSecret),
    population,
    cpu: { unknown: 0, valid: 0, used: 0 },
    walls: { unknown: [], valid: [], used: [] }
  }))
  const unknownCode = generateRecoveryCodes(1)[0]!
  const ids = [...idsOf(POOLS.recovery)]
  const spare = ids.pop()!

  // Warm the JIT, the statement paths and the connection pools, then clear the spare's counter.
  for (const side of sides) {
    for (let i = 0; i < WARM_UP_CHECKS; i++) await side.service.verify(spare, { recoveryCode: unknownCode }, context, 'sign-in')
    await side.population.database.sql`update two_factor.accounts set failed_attempts = 0, lockouts = 0, locked_until = null where user_id = ${spare}`
  }

  for (const kind of KINDS) {
    for (let from = 0; from < ids.length; from += BLOCK) {
      for (const side of sides) {
        const codes = side.population.seeder.recoveryCodes
        const cpuBefore = process.cpuUsage()
        for (const id of ids.slice(from, from + BLOCK)) {
          const code = kind === 'unknown' ? unknownCode : codes.get(id)![0]!
          const started = process.hrtime.bigint()
          const outcome = await side.service.verify(id, { recoveryCode: code }, context, 'sign-in')
          side.walls[kind].push(Number(process.hrtime.bigint() - started) / 1000)
          if (outcome.ok !== (kind === 'valid')) throw new Error(`recovery ${kind} for ${id}: unexpected outcome ${JSON.stringify(outcome)}`)
        }
        const cpu = process.cpuUsage(cpuBefore)
        side.cpu[kind] += cpu.user + cpu.system
      }
    }
  }

  const [smallSize, largeSize] = [await sizeOf(small.database), await sizeOf(large.database)]
  const baselineName = `${smallSize.users.toLocaleString('en')} users, ${smallSize.codes.toLocaleString('en')} codes`
  const scale = `${largeSize.users.toLocaleString('en')} users, ${largeSize.codes.toLocaleString('en')} codes`
  const [s, l] = sides as [Side, Side]
  return KINDS.flatMap((kind) => {
    const wall = (side: Side) => percentile([...side.walls[kind]].sort((a, b) => a - b), 50)
    return [
      figure({ key: 'recovery-cpu', section: 'Recovery code', name: `${kind}: Node CPU per check, ${scale}`, value: l.cpu[kind] / ids.length, baselineName, baseline: s.cpu[kind] / ids.length, unit: 'µs' }),
      figure({ section: 'Recovery code', name: `${kind}: wall time per check (p50), ${scale}`, value: wall(l), baselineName, baseline: wall(s), unit: 'µs', note: `plan at 100 000 users: ${largeSize.plan}` })
    ]
  })
}
