import {Command} from '@oclif/core/command'

export interface VersionResult {
  version: string
  node: string
  platform: string
  arch: string
}

export default class Version extends Command {
  static override summary = 'Print the imagetrust version (--json for the parts).'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version --json']

  async run(): Promise<VersionResult> {
    await this.parse(Version)
    this.log(this.config.userAgent)
    return {version: this.config.version, node: process.versions.node, platform: this.config.platform, arch: this.config.arch}
  }
}
