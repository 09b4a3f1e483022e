import * as Flags from '@oclif/core/flags'

import {hostRoot} from '../host/paths.js'
import {rollbackLatest, type RollbackResult} from '../plan/backup.js'
import {acquireLock} from '../fs/lock.js'
import {ImagetrustCommand} from '../lib/command.js'

export default class Rollback extends ImagetrustCommand {
  static override summary = 'Restore the files of the last apply from its backup.'
  static override description = 'Refuses when a file changed after that apply (that change would be lost), unless --force.'
  static override examples = ['<%= config.bin %> rollback', '<%= config.bin %> rollback --dry-run --json']
  static override flags = {
    force: Flags.boolean({description: 'Restore even files that changed after the apply.'}),
    'dry-run': Flags.boolean({description: 'Show what would be restored.'}),
  }

  async run(): Promise<RollbackResult & {stillWanted: string[]; settle?: string}> {
    const {flags} = await this.parse(Rollback)
    const root = hostRoot(flags)
    const lock = await acquireLock(root.resolve(root.lockPath), 60_000)
    try {
      const result = await rollbackLatest(root, {force: flags.force, dryRun: flags['dry-run']})
      this.log(`${flags['dry-run'] ? 'Would roll back' : 'Rolled back'} apply ${result.backup}:`)
      for (const file of result.files) this.log(`  ${file.action.padEnd(7)} ${file.path}`)
      const stillWanted = flags['dry-run'] ? [] : await this.stillWanted(flags)
      if (stillWanted.length === 0) return {...result, stillWanted}
      const settle =
        'The trust file still asks for what was rolled back, so the next check reports drift in: ' +
        `${stillWanted.join(', ')}. Settle it: change the trust file back to what the host now has (then check is clean), or run apply to install it again.`
      this.warnAll([settle])
      return {...result, stillWanted, settle}
    } finally {
      await lock.release()
    }
  }

  /** The files a plan would write again now: the trust file still asks for them. */
  private async stillWanted(flags: {root: string; user: boolean; config?: string}): Promise<string[]> {
    const {preparePlan} = await import('../plan/converge.js')
    const prepared = await preparePlan({root: flags.root, user: flags.user, config: flags.config, strictKeys: false}).catch(() => undefined)
    if (!prepared) return []
    return prepared.plan.changes.filter((c) => c.kind !== 'state').map((c) => prepared.root.resolve(c.hostPath))
  }
}
