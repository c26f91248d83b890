// What the recovery-code panel shows besides the codes: the account as the authenticator names
// it and the day they were made, so a printed or downloaded sheet says what it is for.
import type { Core } from '../services/core.ts'

export interface RecoveryPanel {
  codes: string[]
  issuer: string
  account: string
  generatedAt: Date
}

export async function recoveryPanel (core: Core, issuer: string, userId: string, codes: string[], now: number): Promise<RecoveryPanel> {
  const profile = await core.services.profiles.find(userId)
  return { codes, issuer, account: profile?.label ?? userId, generatedAt: new Date(now) }
}
