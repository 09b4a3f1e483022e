
import {crioPolicyFor, detectEngines, type EngineInfo, readCrioConfig, type CrioConfig} from '../host/detect.js'
import {engineView, overlaySnapshot} from '../host/engine-view.js'
import {configPathReports, readHostViews} from '../host/engine-view-read.js'
import type {HostRoot} from '../host/paths.js'
import {readHostFile} from '../host/snapshot.js'
import {ImagetrustError} from '../lib/errors.js'
import {parsePolicy} from '../policy/parse.js'
import type {Policy} from '../policy/types.js'
import {parseRegistriesFile, type RegistriesFile} from '../registries-d/read.js'

/**
 * The configuration an image is judged against: what is installed (as the
 * engines read it, shadowing user files included), or the candidate that
 * apply would write from the trust file (plan output laid over the host).
 */
export interface PolicyView {
  source: 'installed' | 'candidate'
  /** Reads a host file as the view sees it (a candidate's new key files included). */
  read(hostPath: string): Promise<Uint8Array | null>
  /** The policy podman uses, parsed. */
  podman: {file: string; policy: Policy}
  /** CRI-O's policy for a namespace (global when none), parsed on demand. */
  crio(namespace?: string): Promise<{file: string; policy: Policy} | undefined>
  registries: RegistriesFile[]
  warnings: string[]
}

export async function policyView(root: HostRoot, options: {candidate?: {config?: string; user?: boolean; at?: Date}}): Promise<PolicyView> {
  const overrides = new Map<string, string | null>()
  const warnings: string[] = []
  let engines: EngineInfo[] | undefined
  if (options.candidate) {
    const {preparePlan} = await import('../plan/converge.js')
    const {user, config, at} = options.candidate
    const prepared = await preparePlan({root: root.root, user, config, strictKeys: false, at})
    for (const change of prepared.plan.changes) overrides.set(change.hostPath, change.after)
    warnings.push(...prepared.plan.warnings, ...prepared.plan.notes.filter((n) => / expired on /.test(n)))
    engines = prepared.engines
  }

  const read = async (hostPath: string): Promise<Uint8Array | null> => {
    if (overrides.has(hostPath)) {
      const value = overrides.get(hostPath)
      return value === null || value === undefined ? null : new Uint8Array(Buffer.from(value))
    }

    const file = await readHostFile(root, hostPath)
    return file.content ? new Uint8Array(file.content) : null
  }

  const parsed = new Map<string, Promise<{file: string; policy: Policy}>>()
  const load = (hostPath: string) => {
    let pending = parsed.get(hostPath)
    if (!pending) {
      pending = (async () => {
        const bytes = await read(hostPath)
        const file = root.resolve(hostPath)
        if (!bytes) throw new ImagetrustError(`${file} does not exist: containers/image refuses every pull without a policy`)
        return {file, policy: parsePolicy(Buffer.from(bytes).toString('utf8'), file).policy}
      })()
      parsed.set(hostPath, pending)
    }

    return pending
  }

  // As the engines read it (engine-view.ts), once the candidate's files are in place.
  const host = await readHostViews(root, engines ?? (await detectEngines()))
  const snapshot = overlaySnapshot(host.snapshot, overrides)
  const views = host.contexts.map((c) => engineView(c, snapshot))
  const judging = views.find((v) => v.engine !== 'crio') ?? views[0]
  warnings.push(...configPathReports(root, views).filter((p) => p.shadows).map((p) => `${p.path} shadows ${p.shadows}${options.candidate ? '; podman keeps using it after apply' : ''}`))
  const registries: RegistriesFile[] = []
  for (const file of judging.registriesD.files) {
    const bytes = await read(file.path)
    if (bytes) registries.push((await parseRegistriesFile(file.name, file.path, Buffer.from(bytes).toString('utf8'), root.resolve(file.path))).file)
  }

  const crioView = views.find((v) => v.engine === 'crio')
  const podmanPolicy = judging.policy.reads ?? root.layout.policy
  let crioConfig: Promise<CrioConfig | undefined> | undefined
  return {
    source: options.candidate ? 'candidate' : 'installed',
    read,
    podman: await load(podmanPolicy),
    async crio(namespace) {
      crioConfig ??= readCrioConfig(root)
      const config = await crioConfig
      if (!config) return undefined
      const namespaced = config.namespaces.find((n) => n.namespace === namespace)?.file
      return load(namespaced ?? crioView?.policy.reads ?? crioPolicyFor(config, namespace))
    },
    registries,
    warnings,
  }
}
