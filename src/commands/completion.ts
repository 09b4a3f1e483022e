import * as Args from '@oclif/core/args'
import {Command} from '@oclif/core/command'

import {bashCompletion, type CompletionCommand, zshCompletion} from '../lib/completion.js'

export default class Completion extends Command {
  static override summary = 'Print a shell completion script for bash or zsh.'
  static override description = 'bash: `imagetrust completion bash > /etc/bash_completion.d/imagetrust` (or `source <(imagetrust completion bash)`). zsh: `eval "$(imagetrust completion zsh)"` in ~/.zshrc.'
  static override args = {shell: Args.string({options: ['bash', 'zsh'], required: true, description: 'The shell.'})}
  static override examples = ['source <(<%= config.bin %> completion bash)', 'eval "$(<%= config.bin %> completion zsh)"']

  async run(): Promise<void> {
    const {args} = await this.parse(Completion)
    const commands: CompletionCommand[] = this.config.commands
      .filter((c) => !c.hidden)
      .map((c) => ({
        id: c.id.replaceAll(':', ' '),
        flags: Object.entries(c.flags ?? {})
          .filter(([, f]) => !f.hidden)
          .map(([name, f]) => ({name, char: f.char, options: f.type === 'option' ? f.options : undefined})),
      }))
    process.stdout.write(args.shell === 'zsh' ? zshCompletion(this.config.bin, commands) : bashCompletion(this.config.bin, commands))
  }
}
