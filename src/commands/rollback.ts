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

  async run(): Promise<RollbackResult> {
    const {flags} = await this.parse(Rollback)
    const root = hostRoot(flags)
    const lock = await acquireLock(root.resolve(root.lockPath), 60_000)
    try {
      const result = await rollbackLatest(root, {force: flags.force, dryRun: flags['dry-run']})
      this.log(`${flags['dry-run'] ? 'Would roll back' : 'Rolled back'} apply ${result.backup}:`)
      for (const file of result.files) this.log(`  ${file.action.padEnd(7)} ${file.path}`)
      return result
    } finally {
      await lock.release()
    }
  }
}
