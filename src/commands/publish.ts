import * as Flags from '@oclif/core/flags'

import {hostRoot} from '../host/paths.js'
import {ImagetrustCommand} from '../lib/command.js'
import {trustFilePath} from '../plan/converge.js'
import {type PublishResult, publishSignatures, stagingSources} from '../signing/publish.js'
import {loadTrustFile} from '../trustfile/load.js'

export default class Publish extends ImagetrustCommand {
  static override summary = 'Copy new signatures from the staging directory to the lookaside web root.'
  static override description = `Run on the signing host after podman push --sign-by. Copies every staged signature the web root does not have yet: to a local directory, or with rsync to user@host:DIR. A file already published with the same bytes is left alone; a file of the same name with different bytes is a CONFLICT: never overwritten, reported, exit 1 (the other files are still copied). Symlinks and other non-regular files are never published.
The staging directories are the trust file's lookasideStaging (below --root), or --from.`

  static override examples = [
    '<%= config.bin %> publish --to /srv/sigstore',
    '<%= config.bin %> publish --to www@sigs.example.com:/srv/sigstore --json',
  ]

  static override flags = {
    to: Flags.string({description: 'The web root: a directory, or user@host:DIR (rsync over ssh).', required: true, helpValue: 'DIR|USER@HOST:DIR'}),
    from: Flags.string({description: "Staging directory [default: the trust file's lookasideStaging]. Repeatable.", multiple: true, helpValue: 'DIR'}),
  }

  async run(): Promise<PublishResult> {
    const {flags} = await this.parse(Publish)
    const trust = flags.from?.length ? undefined : await loadTrustFile(trustFilePath(flags))
    const result = await publishSignatures({from: stagingSources(hostRoot(flags), trust, flags.from), to: flags.to})
    this.log(`Published ${result.copied.length} new signature file(s) from ${result.from.join(', ')} to ${result.to}${result.unchanged ? `; ${result.unchanged} already there` : ''}.`)
    for (const file of result.copied) this.log(`  copied ${file}`)
    for (const file of result.skipped) this.warnAll([`skipped ${file}: not a regular file`])
    for (const c of result.conflicts) process.stderr.write(`CONFLICT ${c.file}: ${c.reason}; not overwritten\n`)
    if (result.conflicts.length > 0) process.exitCode = 1
    return result
  }
}
