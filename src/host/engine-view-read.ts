import {readdir, stat} from 'node:fs/promises'
import os from 'node:os'

import {containersImageFor, parseVersion} from './capabilities.js'
import type {CrioConfig, EngineInfo} from './detect.js'
import {type EngineContext, type EngineView, engineView, type PathSnapshot, pathsToProbe, type Runner, type ViewEngine} from './engine-view.js'
import type {HostRoot} from './paths.js'

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
  crio?: CrioConfig
}

/** One context per engine found whose containers/image version is known. */
export function engineContexts(engines: readonly EngineInfo[], options: ContextOptions): EngineContext[] {
  const contexts: EngineContext[] = []
  for (const engine of engines) {
    if (!VIEW_ENGINES.has(engine.name)) continue
    const parsed = parseVersion(engine.version)
    const cimage = parsed && containersImageFor(engine.name, parsed)
    if (!cimage) continue
    const isCrio = engine.name === 'crio'
    contexts.push({
      engine: engine.name as ViewEngine,
      version: engine.version,
      containersImage: cimage,
      runner: (isCrio && options.crioRunner) || options.runner,
      ...(isCrio && options.crio?.signaturePolicy ? {explicitPolicy: options.crio.signaturePolicy} : {}),
      ...(isCrio ? {namespacePolicyDir: options.crio?.signaturePolicyDir ?? '/etc/crio/policies'} : {}),
    })
  }

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

/** Every engine's view of the host under --root. */
export async function readEngineViews(root: HostRoot, engines: readonly EngineInfo[], options: ContextOptions): Promise<EngineView[]> {
  const contexts = engineContexts(engines, options)
  const snapshot = await readPathSnapshot(root, contexts)
  return contexts.map((c) => engineView(c, snapshot))
}

/** The home used when nothing says otherwise. */
export const defaultHome = (): string => process.env.HOME ?? os.homedir()
