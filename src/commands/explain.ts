import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {type Explanation, explainImage} from '../explain/explain.js'
import {hostRoot} from '../host/paths.js'
import {ImagetrustCommand} from '../lib/command.js'

export default class Explain extends ImagetrustCommand {
  static override summary = 'Say which policy.json scope and registries.d section containers/image uses for an image, and why.'
  static override description = 'Shows the whole precedence chain that was tried (exact reference, repository, namespaces, registry, wildcards, transport default, global default), the requirements and the keys behind them, and where the lookaside URL comes from (per key, falling through to parent sections).'
  static override examples = ['<%= config.bin %> explain registry.example.com:5000/app:1', '<%= config.bin %> explain docker.io/library/alpine --json']
  static override args = {image: Args.string({description: 'Image reference, as given to podman pull.', required: true})}
  static override flags = {namespace: Flags.string({description: 'Explain a CRI-O pull in this Kubernetes namespace (its per-namespace policy, when one exists).'})}

  async run(): Promise<Explanation> {
    const {args, flags} = await this.parse(Explain)
    const explanation = await explainImage(hostRoot(flags), args.image, {namespace: flags.namespace})
    const p = explanation.policy
    this.log(`${explanation.reference}`)
    this.log(`policy.json ${p.file}:`)
    for (const step of p.tried) this.log(`  ${step.present ? '→' : ' '} ${step.scope === '' ? '"" (docker transport default)' : step.scope}${step.present ? '' : '  (not present)'}`)
    this.log(`  uses: ${p.scope === null ? 'the global default' : p.scope === '' ? 'the docker transport default ""' : `scope "${p.scope}"`}`)
    for (const requirement of p.requirements) this.log(`  requirement: ${JSON.stringify(requirement)}`)
    for (const key of p.keys) this.log(`  ${key.role === undefined ? 'key' : key.role === 'ca-roots' ? 'CA roots' : 'CA intermediates'} ${key.source}: ${key.error ?? `${key.fingerprints.join(', ')} ${key.userIds.join(', ')}`}`)
    const r = explanation.registriesD
    this.log(`registries.d ${r.dir}:`)
    this.log(`  lookaside: ${r.lookaside.value}  (${r.lookaside.file}, section ${r.lookaside.section})`)
    if (r.lookasideStaging) this.log(`  lookaside-staging: ${r.lookasideStaging.value}  (${r.lookasideStaging.file}, section ${r.lookasideStaging.section})`)
    this.log(`  use-sigstore-attachments: ${r.sigstoreAttachments.value}  (${r.sigstoreAttachments.file}, section ${r.sigstoreAttachments.section})`)
    if (explanation.crio) this.log(`CRI-O uses ${explanation.crio.policy}${explanation.crio.namespace ? ` in namespace ${explanation.crio.namespace}` : ''} (from ${explanation.crio.configFiles.join(', ') || 'defaults'})`)
    this.warnAll(explanation.warnings)
    return explanation
  }
}
