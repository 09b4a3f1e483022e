import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {HostRoot} from '../host/paths.js'
import {readHostFile, readRegistriesDir} from '../host/snapshot.js'
import {ImagetrustError} from '../lib/errors.js'
import {parsePolicy} from '../policy/parse.js'
import {serializePolicy} from '../policy/serialize.js'
import type {Policy, PolicyRequirement} from '../policy/types.js'

/**
 * Where the engines read their config during a verification:
 * - live: the host as it is (engines use their own defaults, shadowing files included);
 * - sandbox: a temp copy of the config under --root, or of a candidate config
 *   not yet installed, with every key path pointed at a readable file.
 */
export interface VerifyContext {
  mode: 'live' | 'sandbox'
  policyPath?: string
  registriesDir?: string
  /** HOME for podman, whose only registries.d switch is $HOME/.config/containers/registries.d. */
  home?: string
  /** A short scratch directory (podman refuses a runroot longer than 50 characters). */
  scratch: string
  cleanup(): Promise<void>
}

export async function liveContext(): Promise<VerifyContext> {
  const scratch = await mkdtemp('/tmp/it-')
  return {mode: 'live', scratch, cleanup: () => rm(scratch, {recursive: true, force: true})}
}

const PATH_FIELDS = ['keyPath', 'rekorPublicKeyPath'] as const
const PATH_LIST_FIELDS = ['keyPaths', 'rekorPublicKeyPaths'] as const

function rewriteRequirement(requirement: PolicyRequirement, map: (hostPath: string) => string): PolicyRequirement {
  const out = {...requirement} as Record<string, unknown>
  for (const field of PATH_FIELDS) if (typeof out[field] === 'string') out[field] = map(out[field] as string)
  for (const field of PATH_LIST_FIELDS) if (Array.isArray(out[field])) out[field] = (out[field] as string[]).map((p) => map(p))
  for (const block of ['fulcio', 'pki'] as const) {
    const value = out[block] as Record<string, string> | undefined
    if (!value) continue
    out[block] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, /Path$/.test(k) ? map(v) : v]))
  }

  return out as unknown as PolicyRequirement
}

/**
 * A sandbox config built from the files under `root`, with `overrides`
 * (host path → new content, null for deleted) laid over them: the candidate
 * that apply would install.
 */
export async function sandboxContext(root: HostRoot, overrides: Map<string, string | null> = new Map()): Promise<VerifyContext> {
  const scratch = await mkdtemp('/tmp/it-')
  const cleanup = () => rm(scratch, {recursive: true, force: true})
  try {
    const keysDir = path.join(scratch, 'keys')
    await mkdir(keysDir)
    const mapPath = (hostPath: string): string => {
      if (!overrides.has(hostPath)) return root.resolve(hostPath)
      return path.join(keysDir, hostPath.replaceAll('/', '_'))
    }

    for (const [hostPath, content] of overrides) {
      if (content !== null && hostPath.startsWith(`${root.layout.keyDir}/`)) await writeFile(mapPath(hostPath), content)
    }

    const policyHostPath = root.layout.policy
    const policyText = overrides.has(policyHostPath) ? overrides.get(policyHostPath) : (await readHostFile(root, policyHostPath)).content?.toString('utf8')
    if (!policyText) throw new ImagetrustError(`no policy.json to verify under ${root.resolve(policyHostPath)}`)
    const {policy} = parsePolicy(policyText, root.resolve(policyHostPath))
    const rewritten: Policy = {
      default: policy.default.map((r) => rewriteRequirement(r, mapPath)),
      transports: policy.transports?.map((t) => ({name: t.name, scopes: t.scopes.map((s) => ({scope: s.scope, requirements: s.requirements.map((r) => rewriteRequirement(r, mapPath))}))})),
    }
    if (!rewritten.transports) delete rewritten.transports
    const policyPath = path.join(scratch, 'policy.json')
    await writeFile(policyPath, serializePolicy(rewritten))

    const home = path.join(scratch, 'home')
    const registriesDir = path.join(home, '.config/containers/registries.d')
    await mkdir(registriesDir, {recursive: true})
    const current = await readRegistriesDir(root, root.layout.registriesD)
    const files = new Map(current.files.map((f) => [f.hostPath, f.text]))
    for (const [hostPath, content] of overrides) {
      if (path.posix.dirname(hostPath) === root.layout.registriesD) files.set(hostPath, content as string)
    }

    for (const [hostPath, content] of files) if (content !== null) await writeFile(path.join(registriesDir, path.posix.basename(hostPath)), content)
    return {mode: 'sandbox', policyPath, registriesDir, home, scratch, cleanup}
  } catch (error) {
    await cleanup()
    throw error
  }
}
