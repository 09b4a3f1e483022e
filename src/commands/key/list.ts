import {capabilitiesOf, detectEngines} from '../../host/detect.js'
import {hostRoot} from '../../host/paths.js'
import {ImagetrustCommand} from '../../lib/command.js'
import {expiryWarnFlag} from '../../lib/flags.js'
import {type KeyListEntry, listKeys} from '../../keys/manage.js'
import {trustFilePath} from '../../plan/converge.js'
import {loadTrustFile} from '../../trustfile/load.js'

export default class KeyList extends ImagetrustCommand {
  static override summary = 'List the trust file keys: fingerprints, user IDs, expiry, scopes, installed path and status.'
  static override description = 'Status is one of valid, expires-soon, expired, revoked, missing (not installed), changed (installed file differs), invalid.'
  static override examples = ['<%= config.bin %> key list', '<%= config.bin %> key list --json --expiry-warn 60']
  static override flags = {'expiry-warn': expiryWarnFlag}

  async run(): Promise<{keys: KeyListEntry[]}> {
    const {flags} = await this.parse(KeyList)
    const trust = await loadTrustFile(trustFilePath(flags))
    const keys = await listKeys(trust, hostRoot(flags), capabilitiesOf(await detectEngines()), {expiryWarnDays: flags['expiry-warn']})
    if (keys.length === 0) this.log('No keys in the trust file.')
    for (const key of keys) {
      this.log(`${key.name} (${key.type}) ${key.status.toUpperCase()}  ${key.installedPath}  scopes: ${key.scopes.join(', ') || '-'}`)
      for (const info of key.keys) {
        this.log(`  ${info.fingerprint}  ${info.algorithm}  created ${info.created?.slice(0, 10) ?? '?'}  expires ${info.expires?.slice(0, 10) ?? 'never'}  ${info.userIds.join(', ')}`)
      }

      for (const problem of key.problems) this.log(`  problem: ${problem}`)
    }

    return {keys}
  }
}
