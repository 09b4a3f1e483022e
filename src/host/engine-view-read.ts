import {readdir, stat} from 'node:fs/promises'

import {containersImageFor, parseVersion} from './capabilities.js'
import {type CrioConfig, type EngineInfo, readCrioConfig} from './detect.js'
import {type ConfigFileReport, configFiles, type EngineContext, engineLabel, type EngineView, engineView, ETC_POLICY, type PathSnapshot, pathsToProbe, type Runner, USR_SHARE_POLICY, type ViewEngine} from './engine-view.js'
import type {HostRoot} from './paths.js'
import {readUnitEnvironment, type UnitEnvironment} from './unit-env.js'

/** The engines that read policy.json themselves (crictl asks CRI-O). */
const VIEW_ENGINES: ReadonlySet<string> = new Set<ViewEngine>(['podman', 'skopeo', 'buildah', 'crio'])

/** Who runs the engines from this shell: this uid, $HOME, $XDG_CONFIG_HOME and $CONTAINERS_POLICY_JSON. */
export function invokingRunner(home: string, env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): Runner {
  return {
    uid,
    home,
    ...(env.XDG_CONFIG_HOME === undefined ? {} : {xdgConfigHome: env.XDG_CONFIG_HOME}),
    ...(env.CONTAINERS_POLICY_JSON ? {policyEnv: env.CONTAINERS_POLICY_JSON, policyEnvSource: 'the invoking shell'} : {}),
  }
}

/** A root daemon started by systemd: HOME from the passwd entry unless its unit sets one. */
export function serviceRunner(env: Record<string, string>, unit: string): Runner {
  return {
    uid: 0,
    home: env.HOME ?? '/root',
    ...(env.XDG_CONFIG_HOME === undefined ? {} : {xdgConfigHome: env.XDG_CONFIG_HOME}),
    ...(env.CONTAINERS_POLICY_JSON ? {policyEnv: env.CONTAINERS_POLICY_JSON, policyEnvSource: unit} : {}),
  }
}

export interface ContextOptions {
  /** Who runs the command-line engines (podman, skopeo, buildah). */
  runner: Runner
  /** CRI-O's daemon: its unit's environment decides. */
  crioRunner?: Runner
  /** podman.service (the API socket), when its unit sets an environment of its own. */
  podmanServiceRunner?: Runner
  crio?: CrioConfig
}

/** The containers/image version imagetrust assumes with no engine found (capabilities.ts). */
const ASSUMED_CIMAGE = [5, 23] as const

/** One context per engine found whose containers/image version is known; the assumed library when none is. */
export function engineContexts(engines: readonly EngineInfo[], options: ContextOptions): EngineContext[] {
  const contexts: EngineContext[] = []
  for (const engine of engines) {
    if (!VIEW_ENGINES.has(engine.name)) continue
    const parsed = parseVersion(engine.version)
    const cimage = parsed && containersImageFor(engine.name, parsed)
    if (!cimage) continue
    const base = {engine: engine.name as ViewEngine, version: engine.version, containersImage: cimage}
    if (engine.name === 'crio') {
      contexts.push({
        ...base,
        service: 'crio.service',
        runner: options.crioRunner ?? serviceRunner({}, 'crio.service'),
        ...(options.crio?.signaturePolicy ? {explicitPolicy: options.crio.signaturePolicy} : {}),
        namespacePolicyDir: options.crio?.signaturePolicyDir ?? '/etc/crio/policies',
      })
      continue
    }

    contexts.push({...base, runner: options.runner})
    if (engine.name === 'podman' && options.podmanServiceRunner) contexts.push({...base, service: 'podman.service', runner: options.podmanServiceRunner})
  }

  if (contexts.length === 0) contexts.push({engine: 'assumed', containersImage: ASSUMED_CIMAGE, runner: options.runner})
  return contexts
}

/** Stats every path the contexts may look at, in the root (symlinks followed inside it). */
export async function readPathSnapshot(root: HostRoot, contexts: readonly EngineContext[]): Promise<PathSnapshot> {
  const {files: filePaths, dirs: dirPaths} = pathsToProbe(contexts)
  const files = new Set<string>()
  const dirs = new Map<string, string[]>()
  await Promise.all(
    [...new Set([...filePaths, ...dirPaths])].map(async (hostPath) => {
      const info = await stat(root.resolveFull(hostPath)).catch(() => undefined)
      if (info && !info.isDirectory()) files.add(hostPath)
      if (info?.isDirectory()) dirs.set(hostPath, await listYaml(root.resolveFull(hostPath)))
    }),
  )
  return {files, dirs}
}

async function listYaml(realDir: string): Promise<string[]> {
  const entries = await readdir(realDir, {withFileTypes: true}).catch(() => [])
  // Go's DirEntry.IsDir() does not follow links: a link to a directory counts as a file there too.
  return entries.filter((e) => !e.isDirectory() && e.name.endsWith('.yaml')).map((e) => e.name)
}

export interface HostViews {
  contexts: EngineContext[]
  views: EngineView[]
  snapshot: PathSnapshot
  /** The engines' service units found under --root, with the environment they set. */
  units: UnitEnvironment[]
  crio?: CrioConfig
}

/** Sets a policy, a config home or HOME: the unit's engine reads other files than the shell's. */
const VIEW_VARIABLES = ['CONTAINERS_POLICY_JSON', 'XDG_CONFIG_HOME', 'HOME']

/**
 * Every engine's view of the host under --root: the system layout is read by
 * root (HOME as this run has it); --user by this uid. CRI-O and podman.service
 * run with their units' environment.
 */
export async function readHostViews(root: HostRoot, engines: readonly EngineInfo[], options: {env?: NodeJS.ProcessEnv} = {}): Promise<HostViews> {
  const env = options.env ?? process.env
  const uid = root.layout.kind === 'system' ? 0 : (process.getuid?.() ?? 0)
  const runner = invokingRunner(root.layout.home, env, uid)
  const hasCrio = engines.some((e) => e.name === 'crio')
  const [crio, crioUnit, podmanUnit] = await Promise.all([
    root.layout.kind === 'system' ? readCrioConfig(root) : undefined,
    hasCrio ? readUnitEnvironment(root, 'crio.service') : undefined,
    engines.some((e) => e.name === 'podman') ? readUnitEnvironment(root, 'podman.service') : undefined,
  ])
  const podmanOwnEnv = podmanUnit && VIEW_VARIABLES.some((v) => v in podmanUnit.env)
  const contexts = engineContexts(root.layout.kind === 'system' ? engines : engines.filter((e) => e.name !== 'crio'), {
    runner,
    crioRunner: serviceRunner(crioUnit?.env ?? {}, 'crio.service'),
    ...(podmanOwnEnv ? {podmanServiceRunner: serviceRunner(podmanUnit.env, 'podman.service')} : {}),
    crio,
  })
  const snapshot = await readPathSnapshot(root, contexts)
  const units = [crioUnit, podmanUnit].filter((u): u is UnitEnvironment => u !== undefined)
  return {contexts, views: contexts.map((c) => engineView(c, snapshot)), snapshot, units, ...(crio ? {crio} : {})}
}

/** detect's list of config files: every one some engine considers, as real paths under --root. */
export function configPathReports(root: HostRoot, views: readonly EngineView[]): ConfigFileReport[] {
  return configFiles(views, {policy: root.layout.policy, registriesD: root.layout.registriesD}).map((r) => ({...r, path: root.resolve(r.path)}))
}

/** Warnings the views alone give: a vendor policy some engine here does not read, a policy an engine cannot find. */
export function viewWarnings(root: HostRoot, views: readonly EngineView[], snapshot: PathSnapshot): string[] {
  const warnings: string[] = []
  const etcMissing = !snapshot.files.has(ETC_POLICY)
  const notReading = views.filter((v) => !v.policy.candidates.some((c) => c.path === USR_SHARE_POLICY))
  if (etcMissing && snapshot.files.has(USR_SHARE_POLICY) && notReading.length > 0 && root.layout.kind === 'system') {
    const start = notReading.length < views.length ? 'from it' : 'from the distribution default'
    warnings.push(`${root.resolve(USR_SHARE_POLICY)} is not read by ${notReading.map((v) => engineLabel(v)).join(', ')}: only containers/image 5.40 and later fall back to it; apply writes ${root.resolve(ETC_POLICY)} ${start}`)
  }

  // A missing /etc policy is apply's to write; a missing file named by the environment or CRI-O is not.
  for (const view of views) if (view.policy.error && view.policy.candidates[0]?.source !== 'user') warnings.push(`${engineLabel(view)}: ${view.policy.error}`)
  return warnings
}
