import type {OwnershipState} from '../host/state.js'
import type {LoadedKey} from '../keys/types.js'
import {ImagetrustError} from '../lib/errors.js'
import {findOverrides} from '../policy/overrides.js'
import type {Policy} from '../policy/types.js'
import {basePolicy, buildScopeRequirements, holdTakeOvers, mergePolicy, setDockerScopes} from './merge-policy.js'
import {policyChange, refuseForeign, releaseOrDelete} from './plan-files.js'
import type {FileChange, Plan, PlanInput} from './types.js'

/** What every stage of plan() shares: the input, the state found, and the messages collected so far (in order). */
export interface PlanContext {
  input: PlanInput
  previous: OwnershipState
  keysByName: Map<string, LoadedKey>
  warnings: string[]
  notes: string[]
}

/** The policy files merged with the trust file (system, user, CRI-O's signature_policy). */
export interface PolicyStage {
  changes: FileChange[]
  ownership: OwnershipState['policies']
  merged: Map<string, Policy>
  overrides: Plan['overrides']
  /** Combined GPG keyrings the planned requirements name (host path → keys). */
  combined: Map<string, LoadedKey[]>
}

/** Scopes that live only in CRI-O namespace files, not in the global policies. */
function namespacedScopes(input: PlanInput): Set<string> {
  return new Set(input.trust.crioNamespaces.flatMap((n) => n.scopes))
}

/** Merge per target: each policy file keeps what is not ours and gets the trust file's global scopes. */
export function planPolicyFiles(ctx: PlanContext): PolicyStage {
  const {input, previous} = ctx
  const namespaced = namespacedScopes(input)
  const scopes = input.trust.scopes.filter((s) => !namespaced.has(s.scope))
  const mergeInput = {trust: input.trust, keysByName: ctx.keysByName, capabilities: input.capabilities, keyDir: input.layout.keyDir, takeOver: input.takeOver, scopes}
  const stage: PolicyStage = {changes: [], ownership: {}, merged: new Map(), overrides: [], combined: new Map()}
  const unmatched: string[][] = []
  for (const target of input.targets.filter((t) => t.role !== 'crio-namespace')) {
    const base = basePolicy(input.host.policies.get(target.hostPath)!, Boolean(input.replaceInvalid), ctx.warnings, ctx.notes)
    const result = mergePolicy(base, mergeInput, previous.policies[target.hostPath] ?? {scopes: [], localTransports: []})
    for (const [p, keys] of result.combinedKeyrings) stage.combined.set(p, keys)
    stage.ownership[target.hostPath] = result.ownership
    stage.merged.set(target.hostPath, result.policy)
    stage.overrides.push(...result.overrides.map((o) => ({...o, policyPath: target.hostPath})))
    unmatched.push(result.unmatchedTakeOver)
    const change = policyChange(target, input, result.policy)
    if (change) stage.changes.push(change)
  }

  refuseUnmatchedTakeOver(input.takeOver ?? [], unmatched, stage.overrides)
  return stage
}

/** A take-over names a foreign scope in any of the policy files (CRI-O's own may lack it). */
function refuseUnmatchedTakeOver(takeOver: string[], unmatched: string[][], overrides: Plan['overrides']): void {
  const nowhere = takeOver.filter((scope) => unmatched.every((list) => list.includes(scope)))
  if (nowhere.length === 0) return
  const quote = (s: string) => (s === '' ? '""' : s)
  const candidates = [...new Set(overrides.filter((o) => o.effect === 'weaker').map((o) => quote(o.scope)))]
  throw new ImagetrustError(`--take-over ${nowhere.map(quote).join(', ')}: no such foreign scope overrides a rule of the trust file`, {
    hint: candidates.length > 0 ? `scopes that do: ${candidates.join(', ')}` : 'no foreign scope overrides the trust file here',
  })
}

/** The CRI-O namespace files imagetrust writes whole, and the ones it wrote before and no longer needs. */
export interface NamespaceStage {
  changes: FileChange[]
  policies: Array<[string, Policy]>
  generated: string[]
}

/** CRI-O namespace files: the policy CRI-O uses globally, plus that namespace's scopes, written whole. */
export function planCrioNamespaces(ctx: PlanContext, global: PolicyStage): NamespaceStage {
  const {input} = ctx
  const targets = input.targets.filter((t) => t.role === 'crio-namespace')
  const crioGlobal = input.targets.find((t) => t.role === 'crio') ?? input.targets.find((t) => t.role === 'system')
  const namespaced = namespacedScopes(input)
  const globalScopes = input.trust.scopes.filter((s) => !namespaced.has(s.scope)).map((s) => s.scope)
  // Taken-over scopes carry, in each namespace file, the rule this namespace means for their images.
  const takenOver = global.ownership[crioGlobal?.hostPath ?? '']?.takenOver ?? {}
  const stage: NamespaceStage = {changes: [], policies: [], generated: targets.map((t) => t.hostPath)}
  for (const target of targets) {
    const policy = structuredClone(global.merged.get(crioGlobal!.hostPath)!)
    const names = input.trust.crioNamespaces.find((n) => n.namespace === target.namespace)!.scopes
    const entries = input.trust.scopes
      .filter((s) => names.includes(s.scope))
      .map((spec) => {
        const built = buildScopeRequirements(spec, ctx.keysByName, input.capabilities, input.trust, input.layout.keyDir)
        if (built.combinedKeyring) global.combined.set(built.combinedKeyring.hostPath, built.combinedKeyring.keys)
        return {scope: spec.scope, requirements: built.requirements}
      })
    setDockerScopes(policy, entries)
    const owned = {scopes: new Set([...names, ...Object.keys(takenOver), ...globalScopes]), ownsDefault: input.trust.default !== undefined}
    holdTakeOvers(policy, takenOver, owned)
    stage.policies.push([target.hostPath, policy])
    global.overrides.push(...findOverrides(policy, owned).map((o) => ({...o, policyPath: target.hostPath})))
    const change = policyChange(target, input, policy)
    if (change) stage.changes.push(change)
  }

  for (const target of targets) {
    refuseForeign(input, target.hostPath, input.host.policies.get(target.hostPath)?.file, stage.changes.find((c) => c.hostPath === target.hostPath)?.after, 'CRI-O namespace policy')
  }

  for (const hostPath of ctx.previous.generatedPolicies.filter((p) => !stage.generated.includes(p))) {
    const change = releaseOrDelete(input, hostPath, input.host.policies.get(hostPath)?.file, 'policy', ctx.warnings)
    if (change) stage.changes.push(change)
  }

  return stage
}
