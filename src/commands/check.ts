import {hostRoot, trustFilePath} from '../host/paths.js'
import {ImagetrustCommand} from '../lib/command.js'
import {EXIT} from '../lib/errors.js'
import {expiryWarnFlag} from '../lib/flags.js'
import {cachedKeys, keyDrift} from '../plan/drift.js'
import {fingerprintHolds} from '../plan/fingerprint.js'
import {fingerprintContext} from '../plan/fingerprint-inputs.js'
import type {DriftReason, FileAction, FileKind} from '../plan/types.js'

export interface DriftEntry {
  path: string
  kind: FileKind
  action: FileAction | 'none'
  reasons: DriftReason[]
  detail?: string
}

export interface CheckResult {
  inSync: boolean
  drift: DriftEntry[]
  warnings: string[]
  /** How it was decided: every input unchanged since the last apply, or a full plan. */
  basis: 'unchanged since apply' | 'full plan'
}

export default class Check extends ImagetrustCommand {
  static override summary = 'Report drift between the host and the trust file.'
  static override description =
    'Drift is a file that differs (content, missing key, changed key, mode), a trusted key that expired or was revoked, or a file that shadows the managed one. Exit codes: 0 in sync, 2 drifted, 1 error. Nothing is written.'

  static override examples = ['<%= config.bin %> check', '<%= config.bin %> check --json || echo "drift or error: $?"', '<%= config.bin %> check --expiry-warn 60']
  static override flags = {'expiry-warn': expiryWarnFlag}

  async run(): Promise<CheckResult> {
    const {flags} = await this.parse(Check)
    const root = hostRoot(flags)
    const now = new Date()
    // Nothing changed since the last apply: its plan is still empty, so no parsing is needed.
    const unchanged = await fingerprintHolds(root, trustFilePath(flags), fingerprintContext(root))
    const result = unchanged ? this.fromKeys(unchanged.warnings, cachedKeys(unchanged.keys, now), flags['expiry-warn'], now, root) : await this.fullCheck(flags, now)
    this.warnAll(result.warnings)
    if (result.drift.length === 0) this.log('In sync: the host matches the trust file.')
    else {
      this.log(`Drift in ${result.drift.length} place(s):`)
      for (const d of result.drift) this.log(`  ${d.path}: ${d.reasons.join(', ')}${d.detail ? ` (${d.detail})` : ''}`)
    }

    if (result.drift.length > 0) process.exitCode = EXIT.drift
    return result
  }

  private fromKeys(warnings: string[], keys: Parameters<typeof keyDrift>[0], expiryWarnDays: number, now: Date, root: ReturnType<typeof hostRoot>, drift?: DriftEntry[]): CheckResult {
    const keyReport = keyDrift(keys, expiryWarnDays, now)
    const all = [...(drift ?? []), ...keyReport.drift.map((d) => ({...d, path: root.resolve(d.path)}))]
    return {inSync: all.length === 0, drift: all, warnings: [...warnings, ...keyReport.warnings], basis: drift === undefined ? 'unchanged since apply' : 'full plan'}
  }

  private async fullCheck(flags: {root: string; user: boolean; config?: string; 'expiry-warn': number}, now: Date): Promise<CheckResult> {
    const {preparePlan} = await import('../plan/converge.js')
    const {plan, root, keys} = await preparePlan({root: flags.root, user: flags.user, config: flags.config, strictKeys: false})
    // The state file records ownership; it is not host configuration, so it is not drift.
    const drift: DriftEntry[] = [
      ...plan.changes.filter((c) => c.kind !== 'state').map((c) => ({path: root.resolve(c.hostPath), kind: c.kind, action: c.action, reasons: c.reasons})),
      ...plan.shadowedBy.map((p) => ({path: p, kind: 'policy' as const, action: 'none' as const, reasons: ['shadowed' as const], detail: 'containers/image reads this file instead of the managed one'})),
    ]
    return this.fromKeys(plan.warnings, keys, flags['expiry-warn'], now, root, drift)
  }
}
