import {EXIT} from '../lib/errors.js'
import {preparePlan} from '../plan/converge.js'
import type {DriftReason, FileAction, FileKind} from '../plan/types.js'
import {ImagetrustCommand} from '../lib/command.js'

export interface CheckResult {
  inSync: boolean
  drift: Array<{path: string; kind: FileKind; action: FileAction; reasons: DriftReason[]}>
  warnings: string[]
}

export default class Check extends ImagetrustCommand {
  static override summary = 'Report drift between the host and the trust file.'
  static override description = 'Exit codes: 0 in sync, 2 drifted, 1 error. Nothing is written.'
  static override examples = ['<%= config.bin %> check', '<%= config.bin %> check --json || echo "drift or error: $?"']

  async run(): Promise<CheckResult> {
    const {flags} = await this.parse(Check)
    const {plan, root} = await preparePlan({root: flags.root, config: flags.config})
    this.warnAll(plan.warnings)
    // The state file records ownership; it is not host configuration, so it is not drift.
    const drift = plan.changes
      .filter((c) => c.kind !== 'state')
      .map((c) => ({path: root.resolve(c.hostPath), kind: c.kind, action: c.action, reasons: c.reasons}))
    if (drift.length === 0) this.log('In sync: the host matches the trust file.')
    else {
      this.log(`Drift in ${drift.length} file(s):`)
      for (const d of drift) this.log(`  ${d.path}: ${d.reasons.join(', ')}`)
    }

    if (drift.length > 0) process.exitCode = EXIT.drift
    return {inSync: drift.length === 0, drift, warnings: plan.warnings}
  }
}
