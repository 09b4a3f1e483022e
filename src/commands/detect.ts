import type {Capabilities} from '../host/capabilities.js'
import {capabilitiesOf, type CrioConfig, crioUnitState, detectEngines, type EngineInfo} from '../host/detect.js'
import type {ConfigFileReport, EngineView} from '../host/engine-view.js'
import {configPathReports, readHostViews, viewWarnings} from '../host/engine-view-read.js'
import {readRegistriesDir} from '../host/snapshot.js'
import {registriesConflicts} from '../plan/registries-views.js'
import {hostRoot} from '../host/paths.js'
import {ImagetrustCommand} from '../lib/command.js'
import type {SigstoreProbe} from '../sigstore/probe.js'

export interface DetectResult {
  engines: EngineInfo[]
  capabilities: Capabilities
  /** Every policy file and registries.d directory some engine considers, and who reads it. */
  configPaths: ConfigFileReport[]
  /** Each engine's view: the policy it reads (and its fallbacks), the registries.d files it loads. */
  views: EngineView[]
  crio: (CrioConfig & {unit: string}) | null
  registriesD: {dir: string; files: string[]; problems: string[]}
  /** Whether each engine verifies sigstore signatures, probed for real (cached per engine version). */
  sigstore: SigstoreProbe[]
  warnings: string[]
}

export default class Detect extends ImagetrustCommand {
  static override summary = 'Find container engines, their containers/image features, and the config files they really read.'
  static override examples = ['<%= config.bin %> detect', '<%= config.bin %> detect --json']

  async run(): Promise<DetectResult> {
    const {flags} = await this.parse(Detect)
    const root = hostRoot(flags)
    const [engines, registries] = await Promise.all([detectEngines(), readRegistriesDir(root, root.layout.registriesD)])
    const {views, snapshot, crio: crioConfig} = await readHostViews(root, engines)
    const paths = configPathReports(root, views)
    const capabilities = capabilitiesOf(engines)
    const {sigstoreSupport} = await import('../sigstore/probe.js')
    const sigstore = capabilities.policy.sigstoreSigned ? await sigstoreSupport(root, {engines}) : []
    const crio = crioConfig ?? (engines.some((e) => e.name === 'crio') ? {files: [], effectivePolicy: root.layout.policy, namespaces: []} : undefined)
    const unit = crio ? await crioUnitState() : 'unknown'
    // .yml files, keys containers/image ignores, and scopes or default-docker defined twice, across every directory an engine reads.
    const problems = [...registries.warnings, ...(await registriesConflicts(root, views))]
    const refusing = sigstore.filter((p) => p.canVerify === false)
    const warnings = [
      ...paths.filter((p) => p.shadows).map((p) => `${p.path} shadows ${p.shadows}`),
      ...viewWarnings(root, views, snapshot),
      ...problems,
      ...refusing.map((p) => `${p.engine} ${p.version} cannot verify sigstore signatures: a sigstoreSigned scope refuses every image here (verify --native and audit check them natively)`),
    ]
    this.log('Engines:')
    if (engines.length === 0) this.log('  none found on PATH')
    for (const e of engines) this.log(`  ${e.name.padEnd(8)} ${e.version.padEnd(8)} ${e.path}${e.containersImage ? `  (containers/image ${e.containersImage})` : ''}`)
    this.log(`containers/image features (from ${capabilities.source}): keyPaths=${capabilities.policy.signedByKeyPaths} sigstoreSigned=${capabilities.policy.sigstoreSigned} lookaside keys=${capabilities.lookasideKeys} subkey signatures=${capabilities.subkeySignatures}`)
    for (const p of sigstore) this.log(`sigstore verification by ${p.engine} ${p.version}: ${p.canVerify === null ? 'unknown' : p.canVerify ? 'yes' : 'NO'} (${p.detail}; probed ${p.probedAt})`)
    this.log('Config files:')
    for (const p of paths) this.log(`  ${p.exists ? 'present' : 'absent '} ${p.path}  ${p.role}${p.readBy.length > 0 ? `; read by ${p.readBy.join(', ')}` : ''}`)
    if (crio) {
      this.log(`CRI-O (unit ${unit}): signature_policy=${crio.signaturePolicy || '(default)'} signature_policy_dir=${crio.signaturePolicyDir ?? '(unset)'} → pulls use ${crio.effectivePolicy}`)
      for (const ns of crio.namespaces) this.log(`  namespace ${ns.namespace}: ${ns.file}`)
    }

    this.warnAll(warnings)
    return {
      engines,
      capabilities,
      configPaths: paths,
      views,
      crio: crio ? {...crio, unit} : null,
      registriesD: {dir: root.resolve(root.layout.registriesD), files: registries.files.map((f) => f.displayPath), problems},
      sigstore,
      warnings,
    }
  }
}
