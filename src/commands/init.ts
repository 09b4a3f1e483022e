import * as Flags from '@oclif/core/flags'

import {ImagetrustCommand} from '../lib/command.js'
import {colorEnabled} from '../lib/color.js'
import {type InitResult, runInit} from '../init/run.js'
import {verifyFlags} from '../verify/flags.js'

export default class Init extends ImagetrustCommand {
  static override summary = 'Set up image trust step by step: engines, scopes, keys, signatures, default, test images, plan, verify.'
  static override description = `Asks on a terminal; every question has a flag, so --yes with flags does the same with no terminal. Nothing is written until the plan is confirmed: Ctrl-C or "no" leaves the host untouched. On a host that already has a trust file, init adds a scope or a key to it, keeping its comments.
--key takes a file, an https:// URL (with --fingerprint), armor, or gpg:FINGERPRINT for a key of the local GnuPG keyring. --test-signed and --test-unsigned go to the scope they fall under.`

  static override examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --yes --scope registry.example.com/team --key ./team.asc --lookaside https://sigs.example.com --default reject',
    '<%= config.bin %> init --yes --scope quay.io/acme --key ./cosign.pub --sigstore-attachments --default reject --test-signed quay.io/acme/app:1',
    '<%= config.bin %> init --yes --accept quay.io/vendor --until 2027-02-01 --reason "unsigned until their CI signs"',
  ]

  static override flags = {
    yes: Flags.boolean({char: 'y', description: 'Take every answer from flags, ask nothing, and apply.'}),
    scope: Flags.string({description: 'Registry, namespace or repository to protect (host[:port][/path] or *.domain). Repeatable.', multiple: true, helpValue: 'SCOPE'}),
    key: Flags.string({description: 'Key for the scopes (one for all, or one per --scope): FILE, https://URL, armor, or gpg:FINGERPRINT.', multiple: true, helpValue: 'SOURCE'}),
    fingerprint: Flags.string({description: 'Pin for the --key at the same position (required for a URL).', multiple: true}),
    'key-name': Flags.string({description: "Name for the --key at the same position [default: from the key's user ID].", multiple: true}),
    lookaside: Flags.string({description: 'Where signatures are served (one for all scopes, or one per --scope).', multiple: true, helpValue: 'URL'}),
    'sigstore-attachments': Flags.boolean({description: 'Signatures are attached to the images (sigstore, cosign).'}),
    default: Flags.string({options: ['reject', 'accept', 'unset'], description: 'What happens to images of registries no scope lists.'}),
    'test-signed': Flags.string({description: 'A signed test image (must be accepted); it goes to the scope it is under. Repeatable.', multiple: true, helpValue: 'IMAGE'}),
    'test-unsigned': Flags.string({description: 'An unsigned test image (must be refused). Repeatable.', multiple: true, helpValue: 'IMAGE'}),
    accept: Flags.string({description: 'A registry or namespace to accept unsigned for now: an exception that ends at --until. Repeatable.', multiple: true, helpValue: 'SCOPE'}),
    until: Flags.string({
      description: 'When the --accept exception ends (one for all, or one per --accept): a date (00:00 UTC of that day) or an RFC 3339 time.',
      multiple: true,
      helpValue: 'DATE',
    }),
    reason: Flags.string({description: 'Why the --accept exception exists (one for all, or one per --accept); check and status show it.', multiple: true, helpValue: 'TEXT'}),
    'no-apply': Flags.boolean({description: 'Write the trust file (and key copies) but do not apply.'}),
    'no-verify': Flags.boolean({description: 'Skip the test pulls after apply.'}),
    engine: verifyFlags.engine,
    'tls-verify': verifyFlags['tls-verify'],
  }

  async run(): Promise<InitResult> {
    const {flags} = await this.parse(Init)
    const json = this.jsonEnabled()
    return runInit(flags, {
      log: (line) => (json ? undefined : this.log(line)),
      warn: (line) => process.stderr.write(`warning: ${line}\n`),
      color: colorEnabled({noColor: flags['no-color']}),
      interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY) && !json,
      quiet: json,
    })
  }
}
