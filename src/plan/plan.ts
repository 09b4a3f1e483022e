import {type OwnershipState, emptyState, serializeState} from '../host/state.js'
import {describeOverride} from '../policy/overrides.js'
import {dockerScopeChain} from '../policy/match.js'
import {dockerScopeNormalization, parseImageReference} from '../policy/reference.js'
import {contentDigest} from './ownership.js'
import {fileChange} from './plan-files.js'
import {planKeyFiles} from './plan-keys.js'
import {type PlanContext, planCrioNamespaces, planPolicyFiles} from './plan-policies.js'
import {planRegistries, type RegistriesPlan} from './plan-registries.js'
import type {FileChange, Plan, PlanInput} from './types.js'

export type {Owner, PlanInput, PolicyTarget} from './types.js'

export {combinedKeyringPath} from './merge-policy.js'

/**
 * plan(desired, host) → the file changes that bring the host to the trust
 * file. No I/O: every command (plan, apply, check) is a view of this.
 * Stages, in order: messages about the input, policy files merged per
 * target, CRI-O namespace files, key files, registries.d, ownership (state
 * file), and warnings about the host the plan leaves.
 */
export async function plan(input: PlanInput): Promise<Plan> {
  const ctx = planContext(input)
  const policies = planPolicyFiles(ctx)
  const namespaces = planCrioNamespaces(ctx, policies)
  const keys = await planKeyFiles(ctx, policies.combined, [...policies.merged, ...namespaces.policies])
  const {trust, host, capabilities, layout, owner} = input
  const registries = await planRegistries({trust, host, keysByName: ctx.keysByName, capabilities, layout, previous: ctx.previous, owner, registries: input.registries})
  ctx.warnings.push(...registries.warnings)
  ctx.notes.push(...registries.notes)
  const changes = [...keys.changes, ...registries.changes, ...policies.changes, ...namespaces.changes]
  const state = ownershipState({policies: policies.ownership, generatedPolicies: namespaces.generated, keyFiles: [...keys.contents.keys()], registries}, input, changes)
  const stateChange = fileChange(input.host.state.file, input.statePath, 'state', serializeState(state))
  if (stateChange) changes.push(stateChange)
  ctx.notes.push(...crioNotes(input, changes))
  const overrides = policies.overrides
  const looseDirs = looseManagedDirs(input)
  ctx.warnings.push(...hostWarnings(input, overrides, looseDirs))
  return {
    changes,
    warnings: ctx.warnings,
    shadowedBy: input.host.shadowing.map((f) => f.realPath),
    namespaceShadows: input.crioNamespacePolicies ?? [],
    looseDirs,
    overrides,
    broken: registries.broken,
    notes: ctx.notes,
    state,
    capabilities: input.capabilities,
  }
}

/** What every stage starts from, with the warnings about the input itself: its keys, files that shadow ours, its test images. */
function planContext(input: PlanInput): PlanContext {
  const warnings: string[] = []
  for (const key of input.keys) warnings.push(...key.warnings)
  for (const file of input.host.shadowing) {
    warnings.push(`${file.realPath} takes precedence over the system's ${file.hostPath.endsWith('policy.json') ? 'policy.json' : 'registries.d'} for this user (containers/image reads $HOME/.config/containers first, for root too): the managed files are not what pulls use`)
  }

  warnings.push(...trustFileWarnings(input))
  return {input, previous: input.host.state.value ?? emptyState(), keysByName: new Map(input.keys.map((k) => [k.name, k])), warnings, notes: []}
}

/** Scopes that do not mean what they seem to: a test image outside its scope, a bare name that misses the official image. */
function trustFileWarnings(input: PlanInput): string[] {
  const warnings: string[] = []
  for (const spec of input.trust.scopes) {
    for (const image of [spec.test?.signed, spec.test?.unsigned]) {
      const ref = image === undefined ? undefined : parseImageReference(image)
      if (ref && typeof ref !== 'string' && !dockerScopeChain(ref).includes(spec.scope)) {
        warnings.push(`${input.trust.file}:${spec.line}: test image ${image} is not under scope "${spec.scope}": verify reports it as a misconfigured test`)
      }
    }

    const normalization = dockerScopeNormalization(spec.scope)
    if (normalization?.kind === 'namespace-only') {
      warnings.push(`${input.trust.file}:${spec.line}: scope "${spec.scope}" covers repositories below ${spec.scope}/, not the official image ${normalization.official} (containers/image's name for it); write "${normalization.official}" if that is what you meant`)
    }
  }

  return warnings
}

/** What the state file records after this apply: per policy file what is ours, and a digest of each file we own whole (the proof of ownership next time). */
function ownershipState(
  owned: {policies: OwnershipState['policies']; generatedPolicies: string[]; keyFiles: string[]; registries: RegistriesPlan},
  input: PlanInput,
  changes: FileChange[],
): OwnershipState {
  const written = new Map(changes.map((c) => [c.hostPath, c.after]))
  const files: Record<string, string> = {}
  const own = (hostPath: string, current: Buffer | null | undefined) => {
    const text = written.has(hostPath) ? written.get(hostPath) : current?.toString('utf8')
    if (text !== null && text !== undefined) files[hostPath] = contentDigest(text)
  }

  for (const hostPath of owned.keyFiles) own(hostPath, input.host.keyFiles.get(hostPath)?.content)
  for (const hostPath of owned.generatedPolicies) own(hostPath, input.host.policies.get(hostPath)?.file.content)
  for (const file of owned.registries.ownedFiles) files[file.hostPath] = contentDigest(file.text)
  return {version: 1, policies: owned.policies, generatedPolicies: owned.generatedPolicies, registriesD: owned.registries.state, keyFiles: owned.keyFiles, files}
}

function crioNotes(input: PlanInput, changes: FileChange[]): string[] {
  const crioPaths = new Set(input.targets.filter((t) => t.role === 'crio' || t.role === 'crio-namespace').map((t) => t.hostPath))
  if (changes.some((c) => crioPaths.has(c.hostPath)) || (crioPaths.size > 0 && changes.some((c) => c.kind !== 'state'))) {
    return ['CRI-O re-reads its policy files and registries.d on every pull: no restart or reload is needed.']
  }

  return []
}

/**
 * Directories of managed files writable by others without the sticky bit:
 * anyone there can swap a key or policy by rename. A user's own directories
 * may be group-writable for their private group (umask 002).
 */
function looseManagedDirs(input: PlanInput): Plan['looseDirs'] {
  const openBits = input.layout.kind === 'user' ? 0o002 : 0o022
  return input.host.dirs.filter((d) => (d.mode & openBits) !== 0 && (d.mode & 0o1000) === 0).map((d) => ({path: d.realPath, mode: d.mode, kind: d.kind}))
}

/** Warnings about the host the plan leaves: foreign rules that decide instead of ours, loose directories, CRI-O namespace policies we do not write. */
function hostWarnings(input: PlanInput, overrides: Plan['overrides'], looseDirs: Plan['looseDirs']): string[] {
  const warnings: string[] = []
  for (const o of overrides) {
    warnings.push(`${o.policyPath}: ${describeOverride(o)}${o.effect === 'weaker' ? `; take it over with apply --take-over ${o.scope === '' ? '""' : JSON.stringify(o.scope)}, or remove it` : ''}`)
  }

  for (const d of looseDirs) warnings.push(`${d.path} is writable by ${d.mode & 0o002 ? 'everyone' : 'its group'} (mode ${d.mode.toString(8).padStart(4, '0')}): anyone who can write there can replace what this host trusts; chmod go-w ${d.path}`)
  for (const n of input.crioNamespacePolicies ?? []) {
    warnings.push(`${n.file}: CRI-O uses this policy for pods in namespace ${n.namespace}, not the managed one; add the namespace under crio.namespaces in the trust file, or remove the file`)
  }

  return warnings
}
