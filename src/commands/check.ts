import {EXIT} from '../lib/errors.js'
import {expiryWarnFlag} from '../lib/flags.js'
import {preparePlan} from '../plan/converge.js'
import {keyDrift} from '../plan/drift.js'
import type {DriftReason, FileAction, FileKind} from '../plan/types.js'
import {ImagetrustCommand} from '../lib/command.js'

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
}

export default class Check extends ImagetrustCommand {
  static override summary = 'Report drift between the host and the trust file.'
  static override description =
    'Drift is a file that differs (content, missing key, changed key, mode) or a trusted key that expired or was revoked. Exit codes: 0 in sync, 2 drifted, 1 error. Nothing is written.'

  static override examples = ['<%= config.bin %> check', '<%= config.bin %> check --json || echo "drift or error: $?"', '<%= config.bin %> check --expiry-warn 60']
  static override flags = {'expiry-warn': expiryWarnFlag}

  async run(): Promise<CheckResult> {
    const {flags} = await this.parse(Check)
    const {plan, root, keys} = await preparePlan({root: flags.root, user: flags.user, config: flags.config, strictKeys: false})
    const keyReport = keyDrift(keys, flags['expiry-warn'], new Date())
    const warnings = [...plan.warnings, ...keyReport.warnings]
    this.warnAll(warnings)
    // The state file records ownership; it is not host configuration, so it is not drift.
    const drift: DriftEntry[] = [
      ...plan.changes.filter((c) => c.kind !== 'state').map((c) => ({path: root.resolve(c.hostPath), kind: c.kind, action: c.action, reasons: c.reasons})),
      ...keyReport.drift.map((d) => ({...d, path: root.resolve(d.path)})),
      ...plan.shadowedBy.map((p) => ({path: p, kind: 'policy' as const, action: 'none' as const, reasons: ['shadowed' as const], detail: 'containers/image reads this file instead of the managed one'})),
    ]
    if (drift.length === 0) this.log('In sync: the host matches the trust file.')
    else {
      this.log(`Drift in ${drift.length} place(s):`)
      for (const d of drift) this.log(`  ${d.path}: ${d.reasons.join(', ')}${d.detail ? ` (${d.detail})` : ''}`)
    }

    if (drift.length > 0) process.exitCode = EXIT.drift
    return {inSync: drift.length === 0, drift, warnings}
  }
}
