import {Flags} from '@oclif/core'

import {type ApplyResult, applyTrust} from '../plan/converge.js'
import {renderDiff} from '../plan/render.js'
import {ImagetrustCommand} from '../lib/command.js'

export default class Apply extends ImagetrustCommand {
  static override summary = 'Converge policy.json, registries.d and key files to the trust file.'
  static override description =
    'Writes only what differs: a lock against concurrent runs, a backup of every changed file, and an atomic rename for each write. A second run with the same input changes nothing.'

  static override examples = [
    '<%= config.bin %> apply',
    '<%= config.bin %> apply --dry-run --config ./trust.yaml',
    '<%= config.bin %> apply --root /srv/image-root --json',
  ]

  static override flags = {
    'dry-run': Flags.boolean({description: 'Show what would change and write nothing.'}),
    'replace-invalid': Flags.boolean({description: 'Back up and replace a policy.json that does not parse.'}),
    'lock-timeout': Flags.integer({description: 'Seconds to wait for another run to finish.', default: 60, min: 0}),
  }

  async run(): Promise<Omit<ApplyResult, 'warnings'> & {warnings: string[]}> {
    const {flags} = await this.parse(Apply)
    const result = await applyTrust({
      root: flags.root,
      config: flags.config,
      dryRun: flags['dry-run'],
      replaceInvalid: flags['replace-invalid'],
      lockTimeoutMs: flags['lock-timeout'] * 1000,
    })
    this.warnAll(result.warnings)
    if (flags['dry-run'] && result.changed && !this.jsonEnabled()) {
      this.log(await renderDiff(result.prepared.plan.changes, (p) => result.prepared.root.resolve(p)))
    }

    if (!result.changed) this.log('No changes: the host already matches the trust file.')
    else {
      this.log(`${flags['dry-run'] ? 'Would change' : 'Changed'} ${result.files.length} file(s)${result.backup ? ` (backup ${result.backup})` : ''}:`)
      for (const file of result.files) this.log(`  ${file.action.padEnd(6)} ${file.path}`)
    }

    const {prepared: _prepared, ...json} = result
    return json
  }
}
