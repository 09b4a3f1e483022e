import type {Capabilities} from '../host/capabilities.js'
import {capabilitiesOf, type ConfigPathReport, type CrioConfig, detectEngines, type EngineInfo, configPaths, readCrioConfig} from '../host/detect.js'
import {hostRoot} from '../host/paths.js'
import {ImagetrustCommand} from '../lib/command.js'

export interface DetectResult {
  engines: EngineInfo[]
  capabilities: Capabilities
  configPaths: ConfigPathReport[]
  crio: CrioConfig | null
  warnings: string[]
}

export default class Detect extends ImagetrustCommand {
  static override summary = 'Find container engines, their containers/image features, and the config files they really read.'
  static override examples = ['<%= config.bin %> detect', '<%= config.bin %> detect --json']

  async run(): Promise<DetectResult> {
    const {flags} = await this.parse(Detect)
    const root = hostRoot(flags)
    const [engines, paths, crio] = await Promise.all([detectEngines(), configPaths(root), readCrioConfig(root)])
    const capabilities = capabilitiesOf(engines)
    const warnings = paths.filter((p) => p.shadows).map((p) => `${p.path} shadows ${p.shadows}`)
    this.log('Engines:')
    if (engines.length === 0) this.log('  none found on PATH')
    for (const e of engines) this.log(`  ${e.name.padEnd(8)} ${e.version.padEnd(8)} ${e.path}${e.containersImage ? `  (containers/image ${e.containersImage})` : ''}`)
    this.log(`containers/image features (from ${capabilities.source}): keyPaths=${capabilities.policy.signedByKeyPaths} sigstoreSigned=${capabilities.policy.sigstoreSigned} lookaside keys=${capabilities.lookasideKeys} subkey signatures=${capabilities.subkeySignatures}`)
    this.log('Config files:')
    for (const p of paths) this.log(`  ${p.exists ? 'present' : 'absent '} ${p.path}  ${p.role}`)
    if (crio) this.log(`CRI-O: signature_policy=${crio.signaturePolicy || '(default)'} signature_policy_dir=${crio.signaturePolicyDir ?? '(unset)'} → pulls use ${crio.effectivePolicy}`)
    this.warnAll(warnings)
    return {engines, capabilities, configPaths: paths, crio: crio ?? null, warnings}
  }
}
