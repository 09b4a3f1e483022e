import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {ImagetrustCommand} from '../../lib/command.js'
import {applyAfterEdit} from '../../plan/apply-after-edit.js'
import {applyFlag} from '../../lib/flags.js'
import {type RemoveKeyResult, removeKey} from '../../keys/manage.js'
import {type ApplyResult, trustFilePath} from '../../plan/converge.js'

export default class KeyRemove extends ImagetrustCommand {
  static override summary = 'Remove a key from the trust file.'
  static override description = 'Refuses while a scope still uses the key, unless --force, which drops it from those scopes too (never leaving a signed scope without keys).'
  static override examples = ['<%= config.bin %> key remove old-signer', '<%= config.bin %> key remove old-signer --force --apply']
  static override args = {name: Args.string({description: 'Key name.', required: true})}
  static override flags = {
    force: Flags.boolean({description: 'Also drop the key from the scopes that use it.'}),
    apply: applyFlag,
  }

  async run(): Promise<RemoveKeyResult & {apply?: Omit<ApplyResult, 'warnings'>}> {
    const {args, flags} = await this.parse(KeyRemove)
    const trustFile = trustFilePath(flags)
    const result = await removeKey(trustFile, args.name, {force: flags.force})
    this.log(`Removed key "${result.name}" from ${trustFile}${result.droppedFrom.length > 0 ? `, and from scope(s) ${result.droppedFrom.join(', ')}` : ''}.`)
    if (!flags.apply) return result
    return {...result, apply: await applyAfterEdit((l) => this.log(l), (w) => this.warnAll(w), {root: flags.root, user: flags.user, config: trustFile})}
  }
}
