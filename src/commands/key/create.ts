import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {capabilitiesOf, detectEngines} from '../../host/detect.js'
import {ALGORITHMS, type Algorithm, type CreateKeyResult, createSigningKey} from '../../keys/create.js'
import {ImagetrustCommand} from '../../lib/command.js'
import {trustFilePath} from '../../plan/converge.js'

export default class KeyCreate extends ImagetrustCommand {
  static override summary = 'Make a signing key with gpg and add its public half, pinned, to the trust file.'
  static override description = `For the signing host (podman push --sign-by). gpg makes the key in batch mode in --gnupg-home; the PRIMARY key signs, with no signing subkey, because engines built with containers/image before 5.37 (podman < 5.7, skopeo < 1.21, CRI-O < 1.35) reject signatures made by a subkey. The private key never leaves that keyring: only the public half is exported, checked, copied to keys/ beside the trust file and pinned by fingerprint.
Without --passphrase-file the private key has no passphrase, as unattended signing needs: keep the keyring readable by its owner only.`

  static override examples = [
    '<%= config.bin %> key create release --gnupg-home /var/lib/signer/gnupg --scope registry.example.com/apps',
    '<%= config.bin %> key create release --gnupg-home ~/.gnupg --algorithm rsa4096 --expires 1y --uid "Release <release@example.com>"',
  ]

  static override args = {name: Args.string({description: 'Key name in the trust file (lowercase; it becomes a file name).', required: true})}
  static override flags = {
    'gnupg-home': Flags.string({description: 'The signing keyring (created 0700 if missing).', required: true, helpValue: 'DIR'}),
    algorithm: Flags.string({options: [...ALGORITHMS], default: 'ed25519', description: 'Key algorithm.'}),
    expires: Flags.string({default: '2y', description: 'Expiry: a period (2y, 6m, 90d), a date (2030-01-01) or never.'}),
    uid: Flags.string({description: 'User ID [default: "NAME (imagetrust signing key)"].'}),
    'passphrase-file': Flags.string({description: 'Protect the private key with the passphrase in FILE (podman push then needs --sign-passphrase-file).', helpValue: 'FILE'}),
    scope: Flags.string({description: 'Trust the key for this scope (created as policy: signed if new). Repeatable.', multiple: true}),
  }

  async run(): Promise<CreateKeyResult> {
    const {args, flags} = await this.parse(KeyCreate)
    const trustFile = trustFilePath(flags)
    const result = await createSigningKey({
      trustFile,
      name: args.name,
      gnupgHome: flags['gnupg-home'],
      algorithm: flags.algorithm as Algorithm,
      expires: flags.expires,
      uid: flags.uid,
      passphraseFile: flags['passphrase-file'],
      scopes: flags.scope,
      capabilities: capabilitiesOf(await detectEngines()),
    })
    this.warnAll(result.warnings)
    this.log(`Created signing key ${result.fingerprint} (${result.algorithm}, primary key signs, expires ${result.expires}) in ${result.gnupgHome}`)
    this.log(`Added its public half as key "${result.name}" to ${trustFile}; copy at ${result.file}`)
    if (result.scopes.length > 0) this.log(`  trusted for: ${result.scopes.join(', ')}`)
    this.log(`On the signing host, add to the trust file:\n  signer:\n    fingerprint: ${result.fingerprint}\n    gnupgHome: ${result.gnupgHome}`)
    return result
  }
}
