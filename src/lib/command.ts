import {Command} from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'

import {isExitRequest, reportError} from './errors.js'

/** Shared flags and error handling: every error becomes one clear message and a reliable exit code. */
export abstract class ImagetrustCommand extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    root: Flags.string({
      description: 'Treat DIR as the host root (like rpm --root): host files are read and written below it.',
      default: '/',
      helpValue: 'DIR',
    }),
    config: Flags.string({
      char: 'c',
      description: 'Trust file [default: /etc/imagetrust/trust.yaml under --root; with --user, ~/.config/imagetrust/trust.yaml].',
      helpValue: 'FILE',
    }),
    'no-color': Flags.boolean({description: 'No colour in the output (NO_COLOR is honoured too).'}),
    user: Flags.boolean({
      description:
        "Manage the invoking user's files instead of the system's: ~/.config/containers/policy.json and registries.d (which containers/image reads before /etc for that user), keys in ~/.local/share/imagetrust/keys, state in ~/.local/state/imagetrust.",
    }),
  }

  protected warnAll(warnings: string[]): void {
    for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`)
  }

  /**
   * Every error leaves the same way (docs/json-output.md): ours, oclif's usage
   * errors (exit 64, never 2, which means drift) and raw system errors alike.
   * Only oclif's this.exit() passes through, to end the process with its code.
   */
  override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (isExitRequest(error)) return super.catch(error)
    reportError(error, {json: this.jsonEnabled(), commandId: this.id})
    return undefined
  }
}
