import {hostRoot, trustFilePath} from '../host/paths.js'
import {checkTime} from '../lib/clock.js'
import {ImagetrustCommand} from '../lib/command.js'
import {EXIT} from '../lib/errors.js'
import {expiryWarnFlag} from '../lib/flags.js'
import {cachedKeys, type DriftEntry, driftLine, explainExpired, expiryDrift, keyDrift, planDrift} from '../plan/drift.js'
import {fingerprintHolds} from '../plan/fingerprint.js'
import {fingerprintContext} from '../plan/fingerprint-inputs.js'
import {checkErrorMetrics, checkMetrics} from '../metrics/host-metrics.js'
import {metricsFlag, writeExposition} from '../metrics/exposition.js'
import {readStamp, stamp} from '../status/stamp.js'

export type {DriftChange, DriftEntry} from '../plan/drift.js'

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
    'Drift is a file that differs (content, missing key, changed key, mode), a trusted key that expired or was revoked, a trust file scope or key past its until (expired, naming it and its reason), a file that shadows the managed one, or a foreign policy.json rule that overrides the trust file\'s for some images (overridden: a more specific scope, or a transport-wide "" accepting what default: reject refuses). Exit codes: 0 in sync, 2 drifted, 1 error. Nothing is written.'

  static override examples = [
    '<%= config.bin %> check',
    '<%= config.bin %> check --json || echo "drift or error: $?"',
    '<%= config.bin %> check --expiry-warn 60',
    '<%= config.bin %> check --metrics /var/lib/prometheus/node-exporter/imagetrust.prom',
  ]

  static override flags = {'expiry-warn': expiryWarnFlag, metrics: metricsFlag('IMAGETRUST_METRICS')}

  async run(): Promise<CheckResult> {
    const {flags} = await this.parse(Check)
    const now = checkTime()
    let checked: Awaited<ReturnType<Check['check']>>
    try {
      checked = await this.check(flags, now)
    } catch (error) {
      // The metrics file still says that the check failed: a silent collector would look in sync.
      if (flags.metrics) await writeExposition(flags.metrics, checkErrorMetrics(now))
      throw error
    }

    const {result, keys, root} = checked
    await stamp(root, 'check', now)
    if (flags.metrics) await writeExposition(flags.metrics, checkMetrics({drift: result.drift, keys, lastApply: await readStamp(root, 'apply'), now}))
    this.warnAll(result.warnings)
    if (result.drift.length === 0) this.log('In sync: the host matches the trust file.')
    else {
      this.log(`Drift in ${result.drift.length} place(s):`)
      for (const d of result.drift) this.log(`  ${driftLine(d)}`)
    }

    if (result.drift.length > 0) process.exitCode = EXIT.drift
    return result
  }

  private async check(flags: {root: string; user: boolean; config?: string; 'expiry-warn': number}, now: Date) {
    const root = hostRoot(flags)
    // Nothing changed since the last apply: its plan is still empty, so no parsing is needed.
    const unchanged = await fingerprintHolds(root, trustFilePath(flags), await fingerprintContext(root), now)
    if (!unchanged) return {root, ...(await this.fullCheck(flags, now))}
    const keys = cachedKeys(unchanged.keys, now)
    const result = this.fromKeys('unchanged since apply', unchanged.warnings, keys, flags['expiry-warn'], now, root, [
      unchanged.drift,
      expiryDrift(unchanged.expiries, unchanged.trustFile, now, flags['expiry-warn']),
    ])
    return {root, keys, result}
  }

  private fromKeys(
    basis: CheckResult['basis'],
    warnings: string[],
    keys: Parameters<typeof keyDrift>[0],
    expiryWarnDays: number,
    now: Date,
    root: ReturnType<typeof hostRoot>,
    [drift, expiry]: [DriftEntry[], {drift: DriftEntry[]; warnings: string[]}],
  ): CheckResult {
    const keyReport = keyDrift(keys, expiryWarnDays, now)
    const all = [...drift, ...keyReport.drift.map((d) => ({...d, path: root.resolve(d.path)})), ...expiry.drift]
    return {inSync: all.length === 0, drift: all, warnings: [...warnings, ...keyReport.warnings, ...expiry.warnings], basis}
  }

  private async fullCheck(flags: {root: string; user: boolean; config?: string; 'expiry-warn': number}, now: Date) {
    const {preparePlan} = await import('../plan/converge.js')
    const {describeChanges} = await import('../plan/changes.js')
    const {plan, root, keys, expiry} = await preparePlan({root: flags.root, user: flags.user, config: flags.config, strictKeys: false, at: now})
    const result = this.fromKeys('full plan', plan.warnings, keys, flags['expiry-warn'], now, root, [
      planDrift(plan, (p) => root.resolve(p), explainExpired(await describeChanges(plan.changes), expiry.expired)),
      expiryDrift(expiry.entries, expiry.source.file, now, flags['expiry-warn']),
    ])
    return {keys, result}
  }
}
