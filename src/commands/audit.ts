import * as Flags from '@oclif/core/flags'

import {type AuditReport, renderAudit, runAudit} from '../audit/audit.js'
import {parseSince} from '../audit/since.js'
import {hostRoot} from '../host/paths.js'
import {ImagetrustCommand} from '../lib/command.js'
import {metricsFlag, writeExposition} from '../metrics/exposition.js'
import {auditMetrics} from '../metrics/host-metrics.js'
import {DEFAULT_TIMEOUT_SECONDS} from '../registry/limits.js'
import {EXIT, ImagetrustError} from '../lib/errors.js'
import {parseUntil} from '../trustfile/expiry.js'

function auditTime(value: string): Date {
  const at = parseUntil(value)
  if (typeof at === 'string') throw new ImagetrustError(`--at: ${at.replace(/^until /, '')}`, {exitCode: EXIT.usage})
  return at
}

export default class Audit extends ImagetrustCommand {
  static override summary = 'Judge local images and running containers against the installed policy, or the one the trust file would produce: what would stop working?'
  static override description = `Lists the images in local storage (podman, and crictl where installed) and the images of running containers, with their repo digests, and says for each whether a fresh pull would be accepted, refused (with the reason) or cannot be known: the scope that applies, its requirement, and for signed scopes the signatures themselves, verified natively (GPG lookaside with openpgp, sigstore attachments with node:crypto). Image storage is never changed.
With --since, also the images this host pulled in that window (Podman's events, from the journal or events file that containers.conf sets; CRI-O's "Pulled image" log lines, from its journal or --crio-log), each reference once with its pull count, judged the same way.
Exit codes: 0 nothing running would break, 3 a running container's image would be refused, 4 that cannot be known, 1 error.`

  static override examples = [
    '<%= config.bin %> audit --candidate',
    '<%= config.bin %> audit --candidate --at 2027-02-01',
    '<%= config.bin %> audit --json',
    '<%= config.bin %> audit --candidate --since 7d',
    '<%= config.bin %> audit --metrics /var/lib/prometheus/node-exporter/imagetrust-audit.prom',
    '<%= config.bin %> audit --candidate --storage-root /tmp/store/root --runroot /tmp/store/run --storage-driver vfs',
  ]

  static override flags = {
    candidate: Flags.boolean({description: 'Judge against the policy the trust file would produce (what apply would write), not the installed one.'}),
    at: Flags.string({
      dependsOn: ['candidate'],
      helpValue: 'DATE',
      description: 'With --candidate: the policy as it will be then (UTC date or RFC 3339 time): scopes and keys whose until has passed by then are left out.',
    }),
    'storage-root': Flags.string({description: "podman's --root: the image store to read.", helpValue: 'DIR'}),
    runroot: Flags.string({description: "podman's --runroot: where its running containers' state is.", helpValue: 'DIR'}),
    'storage-driver': Flags.string({description: "podman's --storage-driver.", helpValue: 'DRIVER'}),
    crictl: Flags.boolean({default: true, allowNo: true, description: 'Read crictl images and containers too when crictl is installed.'}),
    concurrency: Flags.integer({default: 8, min: 1, max: 64, description: 'Images judged (signatures fetched) at once.'}),
    timeout: Flags.integer({
      default: DEFAULT_TIMEOUT_SECONDS,
      min: 1,
      max: 3600,
      helpValue: 'SECONDS',
      description: 'Seconds for each image, every registry and lookaside fetch for it together; then that image cannot be known.',
    }),
    'tls-verify': Flags.boolean({default: true, allowNo: true, description: 'Require HTTPS with valid certificates for registries (--no-tls-verify for plain-HTTP test registries).'}),
    since: Flags.string({description: 'Also judge the images pulled in this window, up to now: a duration (1h, 7d, 2w) or an RFC 3339 time.', helpValue: 'WHEN'}),
    'crio-log': Flags.string({description: "With --since: read CRI-O's pulls from this log file instead of its journal.", helpValue: 'FILE', dependsOn: ['since']}),
    metrics: metricsFlag(),
  }

  async run(): Promise<AuditReport> {
    const {flags} = await this.parse(Audit)
    const now = new Date()
    const window = flags.since === undefined ? undefined : parseSince(flags.since, now)
    const report = await runAudit(hostRoot(flags), {
      window,
      crioLog: flags['crio-log'],
      candidate: flags.candidate,
      at: flags.at === undefined ? undefined : auditTime(flags.at),
      config: flags.config,
      user: flags.user,
      storageRoot: flags['storage-root'],
      runroot: flags.runroot,
      storageDriver: flags['storage-driver'],
      crictl: flags.crictl,
      concurrency: flags.concurrency,
      timeoutSeconds: flags.timeout,
      tlsVerify: flags['tls-verify'],
    }).catch(async (error: unknown) => {
      if (flags.metrics) await writeExposition(flags.metrics, auditMetrics(null, now))
      throw error
    })
    if (flags.metrics) await writeExposition(flags.metrics, auditMetrics(report, now))
    this.warnAll(report.warnings)
    this.log(renderAudit(report))
    process.exitCode = report.exitCode
    return report
  }
}
