import path from 'node:path'

import {configPaths, crioPolicyFor, readCrioConfig, type CrioConfig} from '../host/detect.js'
import type {HostRoot} from '../host/paths.js'
import {readHostFile, readRegistriesDir} from '../host/snapshot.js'
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
  if (options.candidate) {
    const {preparePlan} = await import('../plan/converge.js')
    const {user, config, at} = options.candidate
    const prepared = await preparePlan({root: root.root, user, config, strictKeys: false, at})
    for (const change of prepared.plan.changes) overrides.set(change.hostPath, change.after)
    warnings.push(...prepared.plan.warnings, ...prepared.plan.notes.filter((n) => / expired on /.test(n)))
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

  // As the engines read it: a user policy or registries.d shadows the managed system one.
  let podmanPolicy = root.layout.policy
  let registriesDir = root.layout.registriesD
  if (root.layout.kind === 'system') {
    const shadows = (await configPaths(root, root.layout.home)).filter((p) => p.shadows)
    const userPolicy = path.posix.join(root.layout.home, '.config/containers/policy.json')
    const userRegistries = path.posix.join(root.layout.home, '.config/containers/registries.d')
    for (const s of shadows) warnings.push(`${s.path} shadows ${s.shadows}${options.candidate ? '; podman keeps using it after apply' : ''}`)
    if (shadows.some((s) => s.path === root.resolve(userPolicy))) podmanPolicy = userPolicy
    if (shadows.some((s) => s.path === root.resolve(userRegistries))) registriesDir = userRegistries
  }

  const current = await readRegistriesDir(root, registriesDir)
  warnings.push(...current.warnings)
  const files = new Map(current.files.map((f) => [f.hostPath, f]))
  for (const [hostPath, content] of overrides) {
    if (path.posix.dirname(hostPath) !== registriesDir || !hostPath.endsWith('.yaml')) continue
    if (content === null) files.delete(hostPath)
    else files.set(hostPath, (await parseRegistriesFile(path.posix.basename(hostPath), hostPath, content, root.resolve(hostPath))).file)
  }

  let crioConfig: Promise<CrioConfig | undefined> | undefined
  return {
    source: options.candidate ? 'candidate' : 'installed',
    read,
    podman: await load(podmanPolicy),
    async crio(namespace) {
      crioConfig ??= readCrioConfig(root)
      const config = await crioConfig
      return config ? load(crioPolicyFor(config, namespace)) : undefined
    },
    registries: [...files.values()].sort((a, b) => a.name.localeCompare(b.name)),
    warnings,
  }
}
