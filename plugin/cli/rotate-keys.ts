// `two-factor rotate-keys`: re-seal every secret under the current key, and say which old keys
// are still needed (recovery codes can't be re-sealed: they are digests under the old pepper).
import { rotateKeys, type RotationReport } from '../db/rotate-keys.ts'
import type { Keyring } from '../core/keyring.ts'
import { batchSizeOnly } from './args.ts'
import type { Command, CommandContext } from './command.ts'
import { CLI_ACTOR } from './service.ts'
import { terminalText } from './terminal-text.ts'

export const rotate: Command<{ batchSize: number | undefined }> = {
  needsKeys: true,
  parse: batchSizeOnly,
  async run ({ batchSize }, ctx) {
    const keyring = ctx.keyring()
    const started = Date.now()
    const report = await rotateKeys(ctx.db, keyring, {
      batchSize,
      audit: ctx.core.services.audit,
      actor: CLI_ACTOR,
      onBatch: ctx.json ? undefined : (r) => ctx.err(`… ${r.secrets + r.pendingSecrets} re-sealed so far`)
    })
    if (ctx.json) {
      ctx.out(JSON.stringify({ ...report, ms: Date.now() - started }))
    } else {
      printRotation(report, keyring, Date.now() - started, ctx)
    }
    return report.failures.length > 0 ? 1 : 0
  }
}

function printRotation (report: RotationReport, keyring: Keyring, ms: number, ctx: CommandContext): void {
  ctx.out(`Re-sealed ${report.secrets} secret${report.secrets === 1 ? '' : 's'} and ${report.pendingSecrets} pending setup${report.pendingSecrets === 1 ? '' : 's'} under key "${terminalText(report.currentKeyId)}" in ${ms} ms (${report.batches} batch${report.batches === 1 ? '' : 'es'}).`)
  if (report.changedMeanwhile > 0) ctx.out(`${report.changedMeanwhile} changed while rotating and were left as the app wrote them.`)
  for (const failure of report.failures) {
    const why = failure.reason === 'unknown-key'
      ? 'sealed under a key that is not in TWO_FACTOR_KEYS (add the old key after the new one)'
      : 'could not be decrypted (damaged or altered); reset this user'
    ctx.err(`Failed: ${terminalText(failure.userId)} (${failure.column}): ${why}.`)
  }
  if (report.remaining > 0) ctx.out(`${report.remaining} account${report.remaining === 1 ? '' : 's'} still hold a secret under an older key.`)
  const old = Object.entries(report.recoveryCodesByOldKey)
  if (old.length > 0) {
    ctx.out(`Unused recovery codes made under older keys: ${old.map(([id, n]) => `${n} under "${terminalText(id)}"`).join(', ')}. ` +
      'Keep those keys in TWO_FACTOR_KEYS (after the current one) until their owners regenerate their codes.')
  } else if (report.remaining === 0) {
    const others = keyring.keyIds.filter((id) => id !== report.currentKeyId)
    if (others.length > 0) ctx.out(`Nothing uses ${others.map((id) => `"${terminalText(id)}"`).join(', ')} any more: ${others.length === 1 ? 'it' : 'they'} may be removed from TWO_FACTOR_KEYS.`)
  }
}
