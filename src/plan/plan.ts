import type {Capabilities} from '../host/capabilities.js'
import type {Layout} from '../host/paths.js'
import type {HostFile, HostSnapshot} from '../host/snapshot.js'
import type {LoadedKey} from '../keys/types.js'
import {ImagetrustError} from '../lib/errors.js'
import {describeOverride, findOverrides} from '../policy/overrides.js'
import {parsePolicy} from '../policy/parse.js'
import {dockerScopeChain} from '../policy/match.js'
import {dockerScopeNormalization, parseImageReference} from '../policy/reference.js'
import {detectIndent, samePolicy, serializePolicy} from '../policy/serialize.js'
import type {Policy} from '../policy/types.js'
import type {TrustFile} from '../trustfile/types.js'
import {basePolicy, buildScopeRequirements, mergePolicy, setDockerScopes} from './merge-policy.js'
import {planRegistries} from './plan-registries.js'
import {type OwnershipState, emptyState, serializeState} from './state.js'
import type {FileChange, Plan} from './types.js'

export {combinedKeyringPath} from './merge-policy.js'

/** A policy file the plan writes. */
export interface PolicyTarget {
  hostPath: string
  /** system: /etc/containers/policy.json; user: ~/.config/containers/policy.json; crio: CRI-O's signature_policy; crio-namespace: generated whole. */
  role: 'system' | 'user' | 'crio' | 'crio-namespace'
  namespace?: string
}

/**
 * plan(desired, host) → the file changes that bring the host to the trust
 * file. No I/O: every command (plan, apply, check) is a view of this.
 */
export interface PlanInput {
  trust: TrustFile
  keys: LoadedKey[]
  host: HostSnapshot
  capabilities: Capabilities
  layout: Layout
  statePath: string
  targets: PolicyTarget[]
  /** Overwrite a policy file that does not parse (it is backed up first). */
  replaceInvalid?: boolean
  /** Foreign scopes to take over (apply --take-over). */
  takeOver?: string[]
}

const FILE_MODE = 0o644

function fileChange(file: HostFile | undefined, hostPath: string, kind: FileChange['kind'], after: string | null, mode = FILE_MODE): FileChange | undefined {
  const before = file?.content ? file.content.toString('utf8') : null
  if (before === after) {
    if (after !== null && kind === 'key' && file?.mode !== undefined && file.mode !== mode) {
      return {hostPath, kind, action: 'update', before, after, mode, reasons: ['mode']}
    }

    return undefined
  }

  if (after === null) return {hostPath, kind, action: 'delete', before, after, mode, reasons: ['extra']}
  const action = before === null ? 'create' : 'update'
  const reasons: FileChange['reasons'] = kind === 'key' ? [before === null ? 'missing key' : 'changed key'] : [before === null ? 'missing' : 'content']
  if (kind === 'key' && file?.mode !== undefined && file.mode !== mode) reasons.push('mode')
  return {hostPath, kind, action, before, after, mode, reasons}
}

/** Writes a policy file only when its meaning changes; checks the result with the strict parser first. */
function policyChange(target: PolicyTarget, input: PlanInput, policy: Policy): FileChange | undefined {
  const snapshot = input.host.policies.get(target.hostPath)!
  if (snapshot.parsed && samePolicy(snapshot.parsed.policy, policy)) return undefined
  const before = snapshot.file.content?.toString('utf8') ?? null
  const after = serializePolicy(policy, before ? detectIndent(before) : 4)
  try {
    parsePolicy(after, `${target.hostPath} (planned)`, {features: input.capabilities.policy})
  } catch (error) {
    throw new ImagetrustError(`refusing to write a policy that containers/image would reject: ${(error as Error).message}`)
  }

  return {
    hostPath: target.hostPath,
    kind: 'policy',
    action: before === null ? 'create' : 'update',
    before,
    after,
    mode: snapshot.file.mode ?? FILE_MODE,
    reasons: [before === null ? 'missing' : 'content'],
    replacesSymlink: snapshot.file.symlinkTarget !== undefined,
  }
}

export async function plan(input: PlanInput): Promise<Plan> {
  const warnings: string[] = []
  const notes: string[] = []
  for (const key of input.keys) warnings.push(...key.warnings)
  for (const file of input.host.shadowing) {
    warnings.push(`${file.realPath} takes precedence over the system's ${file.hostPath.endsWith('policy.json') ? 'policy.json' : 'registries.d'} for this user (containers/image reads $HOME/.config/containers first, for root too): the managed files are not what pulls use`)
  }

  const previous = input.host.state.value ?? emptyState()
  const keysByName = new Map(input.keys.map((k) => [k.name, k]))
  const namespaced = new Set(input.trust.crioNamespaces.flatMap((n) => n.scopes))
  const globalScopes = input.trust.scopes.filter((s) => !namespaced.has(s.scope))
  const mergeInput = {trust: input.trust, keysByName, capabilities: input.capabilities, keyDir: input.layout.keyDir, takeOver: input.takeOver}
  const overrides: Plan['overrides'] = []
  for (const spec of input.trust.scopes) {
    const normalization = dockerScopeNormalization(spec.scope)
    for (const image of [spec.test?.signed, spec.test?.unsigned]) {
      const ref = image === undefined ? undefined : parseImageReference(image)
      if (ref && typeof ref !== 'string' && !dockerScopeChain(ref).includes(spec.scope)) {
        warnings.push(`${input.trust.file}:${spec.line}: test image ${image} is not under scope "${spec.scope}": verify reports it as a misconfigured test`)
      }
    }

    if (normalization?.kind === 'namespace-only') {
      warnings.push(`${input.trust.file}:${spec.line}: scope "${spec.scope}" covers repositories below ${spec.scope}/, not the official image ${normalization.official} (containers/image's name for it); write "${normalization.official}" if that is what you meant`)
    }
  }

  const policyChanges: FileChange[] = []
  const policies: OwnershipState['policies'] = {}
  const merged = new Map<string, Policy>()
  const keyContents = new Map<string, string>(input.keys.map((k) => [k.hostPath, k.content]))
  const combined = new Map<string, LoadedKey[]>()

  for (const target of input.targets.filter((t) => t.role !== 'crio-namespace')) {
    const base = basePolicy(input.host.policies.get(target.hostPath)!, Boolean(input.replaceInvalid), warnings, notes)
    const result = mergePolicy(base, {...mergeInput, scopes: globalScopes}, previous.policies[target.hostPath] ?? {scopes: [], localTransports: []})
    for (const [p, keys] of result.combinedKeyrings) combined.set(p, keys)
    policies[target.hostPath] = result.ownership
    merged.set(target.hostPath, result.policy)
    overrides.push(...result.overrides.map((o) => ({...o, policyPath: target.hostPath})))
    const change = policyChange(target, input, result.policy)
    if (change) policyChanges.push(change)
  }

  // CRI-O namespace files: the policy CRI-O uses globally, plus that namespace's scopes, written whole.
  const crioGlobal = input.targets.find((t) => t.role === 'crio') ?? input.targets.find((t) => t.role === 'system')
  for (const target of input.targets.filter((t) => t.role === 'crio-namespace')) {
    const policy = structuredClone(merged.get(crioGlobal!.hostPath)!)
    const names = input.trust.crioNamespaces.find((n) => n.namespace === target.namespace)!.scopes
    const entries = input.trust.scopes
      .filter((s) => names.includes(s.scope))
      .map((spec) => {
        const built = buildScopeRequirements(spec, keysByName, input.capabilities, input.trust, input.layout.keyDir)
        if (built.combinedKeyring) combined.set(built.combinedKeyring.hostPath, built.combinedKeyring.keys)
        return {scope: spec.scope, requirements: built.requirements}
      })
    setDockerScopes(policy, entries)
    const owned = new Set([...names, ...Object.keys(policies[crioGlobal!.hostPath]?.takenOver ?? {}), ...globalScopes.map((s) => s.scope)])
    overrides.push(...findOverrides(policy, {scopes: owned, ownsDefault: input.trust.default !== undefined}).map((o) => ({...o, policyPath: target.hostPath})))

    const change = policyChange(target, input, policy)
    if (change) policyChanges.push(change)
  }

  const generatedPolicies = input.targets.filter((t) => t.role === 'crio-namespace').map((t) => t.hostPath)
  for (const hostPath of previous.generatedPolicies.filter((p) => !generatedPolicies.includes(p))) {
    const change = fileChange(input.host.policies.get(hostPath)?.file, hostPath, 'policy', null)
    if (change) policyChanges.push(change)
  }

  // Keys first: policy files point at them.
  if (combined.size > 0) {
    const {armorPublicKeys, concat} = await import('../keys/gpg.js')
    for (const [hostPath, keys] of combined) keyContents.set(hostPath, await armorPublicKeys(concat(keys.map((k) => k.binary!))))
  }

  const changes: FileChange[] = []
  for (const [hostPath, content] of keyContents) {
    const change = fileChange(input.host.keyFiles.get(hostPath), hostPath, 'key', content)
    if (change) changes.push(change)
  }

  for (const hostPath of previous.keyFiles.filter((p) => !keyContents.has(p))) {
    const change = fileChange(input.host.keyFiles.get(hostPath), hostPath, 'key', null)
    if (change) changes.push(change)
  }

  const registries = await planRegistries({trust: input.trust, host: input.host, keysByName, capabilities: input.capabilities, layout: input.layout, previous})
  warnings.push(...registries.warnings)
  notes.push(...registries.notes)
  changes.push(...registries.changes, ...policyChanges)

  const state: OwnershipState = {version: 1, policies, generatedPolicies, registriesD: registries.state, keyFiles: [...keyContents.keys()]}
  const stateChange = fileChange(input.host.state.file, input.statePath, 'state', serializeState(state))
  if (stateChange) changes.push(stateChange)
  const crioPaths = new Set(input.targets.filter((t) => t.role === 'crio' || t.role === 'crio-namespace').map((t) => t.hostPath))
  if (changes.some((c) => crioPaths.has(c.hostPath)) || (crioPaths.size > 0 && changes.some((c) => c.kind !== 'state'))) {
    notes.push('CRI-O re-reads its policy files and registries.d on every pull: no restart or reload is needed.')
  }

  for (const o of overrides) {
    warnings.push(`${o.policyPath}: ${describeOverride(o)}${o.effect === 'weaker' ? `; take it over with apply --take-over ${o.scope === '' ? '""' : JSON.stringify(o.scope)}, or remove it` : ''}`)
  }

  return {changes, warnings, shadowedBy: input.host.shadowing.map((f) => f.realPath), overrides, notes, state, capabilities: input.capabilities}
}
