import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {capabilitiesOf, detectEngines} from '../../host/detect.js'
import {ImagetrustCommand} from '../../lib/command.js'
import {applyAfterEdit} from '../../plan/apply-after-edit.js'
import {applyFlag} from '../../lib/flags.js'
import {readStdin} from '../../lib/stdin.js'
import {type AddKeyResult, addKey, readKeyArgument} from '../../keys/manage.js'
import {KEY_SIZE_LIMIT} from '../../keys/source.js'
import {type ApplyResult, trustFilePath} from '../../plan/converge.js'
import {withProgress} from '../../lib/progress.js'
import {defaultUnsetWarning, unusedKeyWarnings} from '../../trustfile/hints.js'
import {loadTrustFile} from '../../trustfile/load.js'

export default class KeyAdd extends ImagetrustCommand {
  static override summary = 'Check a public key and add it, pinned, to the trust file.'
  static override description =
    'SOURCE is a file, - for standard input, an https:// URL (only with --fingerprint), or the armored key itself. Secret keys, expired, revoked and non-signing keys are refused. A normalized copy is kept in keys/ beside the trust file; comments and order of the trust file are kept.'

  static override examples = [
    '<%= config.bin %> key add acme ./acme.asc --scope registry.example.com/acme',
    '<%= config.bin %> key add acme https://example.com/acme.asc --fingerprint 7C0142B7EA5C7977ADB07789C60D470ADECBC6C3',
    'gpg --export --armor ops@example.com | <%= config.bin %> key add ops - --apply',
    '<%= config.bin %> key add cosign ./cosign.pub --type sigstore --scope quay.io/acme',
  ]

  static override args = {
    name: Args.string({description: 'Key name (lowercase; it becomes a file name).', required: true}),
    source: Args.string({description: 'File, -, https:// URL, or the key itself.', required: true}),
  }

  static override flags = {
    type: Flags.string({options: ['gpg', 'sigstore'], description: 'Key type [default: detected].'}),
    fingerprint: Flags.string({description: 'Pin: the key must have this fingerprint (repeat for a file with several keys).', multiple: true}),
    scope: Flags.string({description: 'Trust the key for this scope (created as policy: signed if new). Repeatable.', multiple: true}),
    apply: applyFlag,
  }

  async run(): Promise<AddKeyResult & {apply?: Omit<ApplyResult, 'warnings'>}> {
    const {args, flags} = await this.parse(KeyAdd)
    const read = () => readKeyArgument(args.source, {fingerprints: flags.fingerprint, readStdin: () => readStdin(KEY_SIZE_LIMIT)})
    const {bytes, origin} = /^https:\/\//i.test(args.source) ? await withProgress(`fetching ${args.source}`, read, {quiet: this.jsonEnabled()}) : await read()
    const capabilities = capabilitiesOf(await detectEngines())
    const trustFile = trustFilePath(flags)
    const result = await addKey({
      trustFile,
      name: args.name,
      bytes,
      type: flags.type as 'gpg' | 'sigstore' | undefined,
      fingerprints: flags.fingerprint,
      scopes: flags.scope,
      capabilities,
    })
    const trust = await loadTrustFile(trustFile)
    result.warnings.push(...[defaultUnsetWarning(trust)].filter((w): w is string => w !== undefined), ...unusedKeyWarnings(trust))
    this.warnAll(result.warnings)
    this.log(`Added key "${result.name}" (${result.type}) from ${origin} to ${trustFile}; copy kept at ${result.file}`)
    for (const key of result.keys) {
      this.log(`  ${key.fingerprint}  ${key.algorithm}  ${key.userIds.join(', ') || '(no user ID)'}${key.expires ? `  expires ${key.expires}` : ''}`)
    }

    if (result.scopes.length > 0) this.log(`  trusted for: ${result.scopes.join(', ')}`)
    if (!flags.apply) return result
    return {...result, apply: await applyAfterEdit((l) => this.log(l), (w) => this.warnAll(w), {root: flags.root, user: flags.user, config: trustFile, capabilities})}
  }
}
