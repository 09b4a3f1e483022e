import {hostRoot} from '../host/paths.js'
import {ImagetrustCommand} from '../lib/command.js'
import {hostStatus, renderStatus, type StatusReport} from '../status/status.js'

export default class Status extends ImagetrustCommand {
  static override summary = 'Show what is in force on this host, and whose it is.'
  static override description =
    "For every policy file an engine reads (system, this user's, CRI-O's global and per-namespace ones): the default, each scope's requirement in plain words, its keys (fingerprint, expiry, installed path), its lookaside or sigstore attachments, its owner (imagetrust, foreign, or taken over) and what shadows or overrides it; the transport-wide rules, warnings, and when apply last changed the host and check last ran. Nothing is written."

  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json']

  async run(): Promise<StatusReport> {
    const {flags} = await this.parse(Status)
    const report = await hostStatus(hostRoot(flags), {config: flags.config, user: flags.user})
    this.log(renderStatus(report))
    this.warnAll(report.warnings)
    return report
  }
}
