import {stat} from 'node:fs/promises'

import {ImagetrustError} from '../lib/errors.js'
import {parsePolicy, type ParsedPolicy} from '../policy/parse.js'
import type {PolicyFeatures} from '../policy/types.js'
import type {RegistriesFile} from '../registries-d/read.js'
import {type HostFile, readHostFile, readRegistriesDir, type RegistriesDirRead} from './host-files.js'
import {parseState, type OwnershipState} from './state.js'
import {managedPaths} from './managed-paths.js'
import {ETC_POLICY, type EngineView, shadowingPolicies, USR_SHARE_POLICY} from './engine-view.js'
import {HOST_PATHS, type HostRoot, managedDirs} from './paths.js'

export {type HostFile, readHostFile, readRegistriesDir, type RegistriesDirRead} from './host-files.js'

export interface PolicySnapshot {
  file: HostFile
  parsed?: ParsedPolicy
  error?: ImagetrustError
  /**
   * /etc/containers/policy.json is missing and an engine here falls back to
   * /usr/share/containers/policy.json (5.40+): apply starts from the vendor's
   * file, so every vendor rule survives the copy-up.
   */
  vendor?: {hostPath: string; realPath: string; parsed?: ParsedPolicy; error?: ImagetrustError}
}

/** A file named by $CONTAINERS_POLICY_JSON (a shell's or a service unit's) that an engine reads instead of the managed ones. */
export interface EnvironmentShadow {
  hostPath: string
  realPath: string
  /** Who sets it: "the invoking shell", "crio.service". */
  setBy: string
  engines: string[]
}

export interface HostSnapshot {
  /** Every policy file the plan writes, by host path. */
  policies: Map<string, PolicySnapshot>
  registriesD: RegistriesDirRead
  /** The system registries.d, when managing a user's (which replaces it). */
  systemRegistriesD?: {dirHostPath: string; files: RegistriesFile[]; warnings: string[]}
  /** Files that take precedence over the managed ones for this user (its ~/.config, read before /etc). */
  shadowing: HostFile[]
  /** $CONTAINERS_POLICY_JSON shadows: engines that read that file instead of any managed one. */
  environmentShadows: EnvironmentShadow[]
  /** Each engine's view of the host (engine-view.ts). */
  views: EngineView[]
  /** What the views say that the plan cannot: a /usr/share file no engine reads, a copy-up. */
  viewWarnings: string[]
  /** The directories holding the managed files, as found (absent ones left out). */
  dirs: Array<{hostPath: string; realPath: string; mode: number; kind: 'policy' | 'registries.d' | 'key'}>
  keyFiles: Map<string, HostFile>
  state: {file: HostFile; value: OwnershipState | null}
}

export async function readPolicy(root: HostRoot, hostPath: string, features: PolicyFeatures): Promise<PolicySnapshot> {
  const file = await readHostFile(root, hostPath)
  const snapshot: PolicySnapshot = {file}
  if (file.content) {
    try {
      snapshot.parsed = parsePolicy(file.content, file.realPath, {features})
    } catch (error) {
      if (!(error instanceof ImagetrustError)) throw error
      snapshot.error = error
    }
  }

  return snapshot
}

/** Reads every host file a plan depends on. Parse errors of policy files are kept, not thrown, so --replace-invalid can act. */
export async function readHostSnapshot(
  root: HostRoot,
  options: {keyHostPaths: string[]; policyPaths: string[]; features: PolicyFeatures; views: EngineView[]},
): Promise<HostSnapshot> {
  const {layout} = root
  const policies = new Map<string, PolicySnapshot>()
  for (const p of options.policyPaths) policies.set(p, await readPolicy(root, p, options.features))
  const viewWarnings: string[] = []
  const systemPolicy = policies.get(ETC_POLICY)
  if (layout.kind === 'system' && systemPolicy) await copyUpVendorPolicy(root, systemPolicy, options, viewWarnings)
  const registriesD = await readRegistriesDir(root, layout.registriesD)
  const keyFiles = new Map<string, HostFile>()
  await Promise.all(options.keyHostPaths.map(async (p) => keyFiles.set(p, await readHostFile(root, p))))
  const stateFile = await readHostFile(root, root.statePath)
  const stateValue = stateFile.content ? parseState(stateFile.content.toString('utf8'), stateFile.realPath, await managedPaths(root)) : null
  const systemRegistriesD = layout.kind === 'user' ? await readRegistriesDir(root, HOST_PATHS.registriesD) : undefined
  const managed = new Set(options.policyPaths)
  const shadowing = layout.kind === 'system' ? userShadows(root, options.views, managed) : []
  const environmentShadows = environmentShadowsOf(root, options.views, managed)
  const dirs: HostSnapshot['dirs'] = []
  for (const {dir, kind} of managedDirs(root.layout)) {
    const realPath = root.resolveFull(dir)
    const info = await stat(realPath).catch(() => undefined)
    if (info?.isDirectory()) dirs.push({hostPath: dir, realPath, mode: info.mode & 0o7777, kind})
  }

  return {policies, registriesD, systemRegistriesD, shadowing, environmentShadows, views: options.views, viewWarnings, keyFiles, dirs, state: {file: stateFile, value: stateValue}}
}

/** The user files some engine reads before the managed system ones: its policy.json, or (before 5.40) its whole registries.d. */
function userShadows(root: HostRoot, views: EngineView[], managed: ReadonlySet<string>): HostFile[] {
  const paths = new Set<string>()
  for (const shadow of shadowingPolicies(views, managed)) if (shadow.source === 'user') paths.add(shadow.path)
  for (const view of views) {
    const [used] = view.registriesD.dirs
    if (view.registriesD.merge === 'single' && used.role === 'user') paths.add(used.path)
  }

  return [...paths].sort().map((p) => ({hostPath: p, realPath: root.resolve(p), content: null}))
}

function environmentShadowsOf(root: HostRoot, views: EngineView[], managed: ReadonlySet<string>): EnvironmentShadow[] {
  const byPath = new Map<string, EnvironmentShadow>()
  for (const shadow of shadowingPolicies(views, managed)) {
    if (shadow.source !== 'environment') continue
    const view = views.find((v) => v.engine === shadow.engine && v.policy.candidates[0]?.path === shadow.path)
    const entry = byPath.get(shadow.path) ?? {hostPath: shadow.path, realPath: root.resolve(shadow.path), setBy: view?.runner.policyEnvSource ?? 'the environment', engines: []}
    entry.engines.push(`${shadow.engine}${view?.version ? ` ${view.version}` : ''}`)
    byPath.set(shadow.path, entry)
  }

  return [...byPath.values()]
}

/**
 * /etc/containers/policy.json missing and /usr/share/containers/policy.json
 * present: engines from 5.40 read the vendor file, older ones nothing. Apply
 * starts /etc from the vendor file when some engine falls back to it; with
 * only older engines, the vendor file is named as not read.
 */
async function copyUpVendorPolicy(root: HostRoot, snapshot: PolicySnapshot, options: {features: PolicyFeatures; views: EngineView[]}, warnings: string[]): Promise<void> {
  if (snapshot.file.content || snapshot.file.symlinkTarget !== undefined) return
  const vendor = await readPolicy(root, USR_SHARE_POLICY, options.features)
  if (!vendor.file.content) return
  const readers = options.views.filter((v) => v.policy.candidates.some((c) => c.path === USR_SHARE_POLICY))
  if (readers.length === 0) {
    const engines = options.views.map((v) => `${v.engine}${v.version ? ` ${v.version}` : ''} (containers/image ${v.containersImage})`).join(', ')
    warnings.push(`${vendor.file.realPath} is not read by ${engines}: /usr/share/containers/policy.json is a fallback from containers/image 5.40 on; apply writes ${snapshot.file.realPath}, starting from the distribution default`)
    return
  }

  snapshot.vendor = {hostPath: USR_SHARE_POLICY, realPath: vendor.file.realPath, ...(vendor.parsed ? {parsed: vendor.parsed} : {}), ...(vendor.error ? {error: vendor.error} : {})}
}
