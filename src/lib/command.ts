import {Command} from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'

import {ImagetrustError, formatLocation} from './errors.js'

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

  override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (!(error instanceof ImagetrustError)) return super.catch(error)
    process.exitCode = error.exitCode
    if (this.jsonEnabled()) {
      this.logJson({
        error: {
          message: error.message,
          location: error.location ? {...error.location, text: formatLocation(error.location)} : undefined,
          hint: error.hint,
          exitCode: error.exitCode,
        },
      })
    } else {
      process.stderr.write(`imagetrust: error: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ''}`)
    }

    return undefined
  }
}
