import * as Args from '@oclif/core/args'
import {Command} from '@oclif/core/command'
import {loadHelpClass} from '@oclif/core/help'

export default class HelpCommand extends Command {
  static override summary = 'Show help for imagetrust, or for a command.'
  static override strict = false
  static override args = {command: Args.string({description: 'The command (e.g. "key add").', required: false})}
  static override examples = ['<%= config.bin %> help', '<%= config.bin %> help init', '<%= config.bin %> help key add']

  async run(): Promise<void> {
    const {argv} = await this.parse(HelpCommand)
    const Help = await loadHelpClass(this.config)
    await new Help(this.config, this.config.pjson.oclif.helpOptions ?? {}).showHelp(argv as string[])
  }
}
