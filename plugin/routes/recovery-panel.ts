// What the recovery-code panel shows besides the codes: the account as the authenticator names
// it and the day they were made, so a printed or downloaded sheet says what it is for.
import type { FastifyRequest } from 'fastify'
import type { TwoFactorService } from '../service.ts'

export interface RecoveryPanel {
  codes: string[]
  issuer: string
  account: string
  generatedAt: Date
}

export async function recoveryPanel (service: TwoFactorService, request: FastifyRequest, userId: string, codes: string[], now: number): Promise<RecoveryPanel> {
  const profile = await service.profile(userId)
  return { codes, issuer: service.issuerFor(request), account: profile?.label ?? userId, generatedAt: new Date(now) }
}
