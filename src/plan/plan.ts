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
import type {Policy, PolicyRequirement} from '../policy/types.js'
import type {TrustFile} from '../trustfile/types.js'
import {basePolicy, buildScopeRequirements, holdTakeOvers, mergePolicy, setDockerScopes} from './merge-policy.js'
import {planRegistries} from './plan-registries.js'
import {contentDigest, ownershipOf} from './ownership.js'
import {type OwnershipState, emptyState, serializeState} from '../host/state.js'
import type {FileChange, Plan, PolicyTarget} from './types.js'

export type {PolicyTarget} from './types.js'

export {combinedKeyringPath} from './merge-policy.js'


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
  /** Who must own the managed files (root for the system's, the user for --user); undefined: not checked. */
  owner?: Owner
  /** CRI-O per-namespace policy files that imagetrust does not generate. */
  crioNamespacePolicies?: Array<{namespace: string; file: string}>
}

const FILE_MODE = 0o644

export interface Owner {
  uid: number
  gid: number
}

/**
 * Mode and owner are part of a managed file's desired state: key files are
 * 0644 exactly (rootless pulls read them); other files keep the host's mode
 * without group and world write, 0644 when created. Anything writable by
 * others could rewrite what the host trusts.
 */
function attributeDrift(file: HostFile | undefined, kind: FileChange['kind'], owner: Owner | undefined): {mode: number; reasons: FileChange['reasons']} {
  const mode = kind === 'key' || file?.mode === undefined ? FILE_MODE : file.mode & ~0o022
  const reasons: FileChange['reasons'] = []
  if (file?.content && kind !== 'state') {
    if (file.mode !== undefined && file.mode !== mode) reasons.push('mode')
    if (owner && (file.uid !== owner.uid || file.gid !== owner.gid)) reasons.push('owner')
  }

  return {mode, reasons}
}

function fileChange(file: HostFile | undefined, hostPath: string, kind: FileChange['kind'], after: string | null, owner?: Owner): FileChange | undefined {
  const before = file?.content ? file.content.toString('utf8') : null
  if (after === null) return before === null ? undefined : {hostPath, kind, action: 'delete', before, after, mode: FILE_MODE, reasons: ['extra']}
  const attributes = attributeDrift(file, kind, owner)
  const reasons: FileChange['reasons'] = []
  if (before !== after) reasons.push(kind === 'key' ? (before === null ? 'missing key' : 'changed key') : before === null ? 'missing' : 'content')
  reasons.push(...attributes.reasons)
  if (reasons.length === 0) return undefined
  return {hostPath, kind, action: before === null ? 'create' : 'update', before, after, mode: attributes.mode, owner, reasons}
}

/**
 * A file at a path we would write that is not ours (no state record) and
 * holds something else: someone else's, perhaps used by other rules.
 * Refused, never overwritten; identical content is simply adopted.
 */
function refuseForeign(input: PlanInput, hostPath: string, file: HostFile | undefined, after: string | null | undefined, what: string): void {
  const current = file?.content?.toString('utf8') ?? null
  if (current === null || after === undefined || after === null || current === after) return
  if (ownershipOf(input.host.state.value, hostPath, current, legacyOwned(input, hostPath)) !== 'foreign') return
  const users = keyUsers(hostPolicies(input), hostPath)
  throw new ImagetrustError(
    `${file!.realPath} already exists and is not imagetrust's (no record in its state file)${users.length > 0 ? `; policy scopes use it: ${users.join(', ')}` : ''}: refusing to overwrite this ${what}`,
    {hint: what === 'key file' ? 'rename the key in the trust file (its name is the file name), or move the file away if nothing needs it' : 'move the file away, or remove the namespace from the trust file'},
  )
}

/** Paths a state file from before digests were kept lists as ours. */
function legacyOwned(input: PlanInput, hostPath: string): boolean {
  const state = input.host.state.value
  return Boolean(state && (state.keyFiles.includes(hostPath) || state.generatedPolicies.includes(hostPath)))
}

/** The rules of these policy files whose requirements name this key file. */
function keyUsers(policies: Iterable<[string, Policy | undefined]>, hostPath: string): string[] {
  const names = (r: PolicyRequirement) => {
    const keyed = r as {keyPath?: string; keyPaths?: string[]}
    return keyed.keyPath === hostPath || Boolean(keyed.keyPaths?.includes(hostPath))
  }

  const users: string[] = []
  for (const [policyPath, policy] of policies) {
    if (policy?.default.some(names)) users.push(`the default in ${policyPath}`)
    for (const transport of policy?.transports ?? []) {
      for (const scope of transport.scopes) if (scope.requirements.some(names)) users.push(`${transport.name}:${scope.scope || '""'} in ${policyPath}`)
    }
  }

  return users
}

const hostPolicies = (input: PlanInput): Array<[string, Policy | undefined]> => [...input.host.policies].map(([p, snapshot]) => [p, snapshot.parsed?.policy])

/**
 * A file we no longer need: deleted when it still holds what we wrote and
 * no planned policy file still names it (an adopted key a foreign rule uses);
 * otherwise left in place, no longer managed.
 */
function releaseOrDelete(input: PlanInput, hostPath: string, file: HostFile | undefined, kind: FileChange['kind'], warnings: string[], planned: Array<[string, Policy | undefined]> = []): FileChange | undefined {
  const current = file?.content?.toString('utf8') ?? null
  const ownership = ownershipOf(input.host.state.value, hostPath, current, legacyOwned(input, hostPath))
  if (ownership === 'absent') return undefined
  if (ownership !== 'ours') {
    warnings.push(`${file!.realPath} is no longer needed, but it changed since imagetrust wrote it: left in place, and no longer managed`)
    return undefined
  }

  const users = kind === 'key' ? keyUsers(planned, hostPath) : []
  if (users.length > 0) {
    warnings.push(`${file!.realPath} is no longer needed by the trust file, but ${users.join(', ')} still uses it: left in place, and no longer managed`)
    return undefined
  }

  return fileChange(file, hostPath, kind, null)
}

/** Writes a policy file only when its meaning changes; checks the result with the strict parser first. */
function policyChange(target: PolicyTarget, input: PlanInput, policy: Policy): FileChange | undefined {
  const snapshot = input.host.policies.get(target.hostPath)!
  const attributes = attributeDrift(snapshot.file, 'policy', input.owner)
  const before = snapshot.file.content?.toString('utf8') ?? null
  if (snapshot.parsed && samePolicy(snapshot.parsed.policy, policy)) {
    if (attributes.reasons.length === 0 || before === null) return undefined
    return {hostPath: target.hostPath, kind: 'policy', action: 'update', before, after: before, mode: attributes.mode, owner: input.owner, reasons: attributes.reasons, replacesSymlink: snapshot.file.symlinkTarget !== undefined}
  }

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
    mode: attributes.mode,
    owner: input.owner,
    reasons: [before === null ? 'missing' : 'content', ...attributes.reasons],
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
  const unmatched: string[][] = []
  const namespacePolicies: Array<[string, Policy]> = []
  const keyContents = new Map<string, string>(input.keys.map((k) => [k.hostPath, k.content]))
  const combined = new Map<string, LoadedKey[]>()

  for (const target of input.targets.filter((t) => t.role !== 'crio-namespace')) {
    const base = basePolicy(input.host.policies.get(target.hostPath)!, Boolean(input.replaceInvalid), warnings, notes)
    const result = mergePolicy(base, {...mergeInput, scopes: globalScopes}, previous.policies[target.hostPath] ?? {scopes: [], localTransports: []})
    for (const [p, keys] of result.combinedKeyrings) combined.set(p, keys)
    policies[target.hostPath] = result.ownership
    merged.set(target.hostPath, result.policy)
    overrides.push(...result.overrides.map((o) => ({...o, policyPath: target.hostPath})))
    unmatched.push(result.unmatchedTakeOver)
    const change = policyChange(target, input, result.policy)
    if (change) policyChanges.push(change)
  }

  // A take-over names a foreign scope in any of the policy files (CRI-O's own may lack it).
  const nowhere = (input.takeOver ?? []).filter((scope) => unmatched.every((list) => list.includes(scope)))
  if (nowhere.length > 0) {
    const candidates = [...new Set(overrides.filter((o) => o.effect === 'weaker').map((o) => (o.scope === '' ? '""' : o.scope)))]
    throw new ImagetrustError(`--take-over ${nowhere.map((s) => (s === '' ? '""' : s)).join(', ')}: no such foreign scope overrides a rule of the trust file`, {
      hint: candidates.length > 0 ? `scopes that do: ${candidates.join(', ')}` : 'no foreign scope overrides the trust file here',
    })
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
    // Taken-over scopes carry, in this file, the rule this namespace means for their images.
    const takenOver = policies[crioGlobal!.hostPath]?.takenOver ?? {}
    const owned = {scopes: new Set([...names, ...Object.keys(takenOver), ...globalScopes.map((s) => s.scope)]), ownsDefault: input.trust.default !== undefined}
    holdTakeOvers(policy, takenOver, owned)
    namespacePolicies.push([target.hostPath, policy])
    overrides.push(...findOverrides(policy, owned).map((o) => ({...o, policyPath: target.hostPath})))

    const change = policyChange(target, input, policy)
    if (change) policyChanges.push(change)
  }

  const generatedPolicies = input.targets.filter((t) => t.role === 'crio-namespace').map((t) => t.hostPath)
  for (const target of input.targets.filter((t) => t.role === 'crio-namespace')) {
    refuseForeign(input, target.hostPath, input.host.policies.get(target.hostPath)?.file, policyChanges.find((c) => c.hostPath === target.hostPath)?.after, 'CRI-O namespace policy')
  }

  for (const hostPath of previous.generatedPolicies.filter((p) => !generatedPolicies.includes(p))) {
    const change = releaseOrDelete(input, hostPath, input.host.policies.get(hostPath)?.file, 'policy', warnings)
    if (change) policyChanges.push(change)
  }

  // Keys first: policy files point at them.
  if (combined.size > 0) {
    const {armorPublicKeys, concat} = await import('../keys/gpg.js')
    for (const [hostPath, keys] of combined) keyContents.set(hostPath, await armorPublicKeys(concat(keys.map((k) => k.binary!))))
  }

  const changes: FileChange[] = []
  for (const [hostPath, content] of keyContents) {
    refuseForeign(input, hostPath, input.host.keyFiles.get(hostPath), content, 'key file')
    const change = fileChange(input.host.keyFiles.get(hostPath), hostPath, 'key', content, input.owner)
    if (change) changes.push(change)
  }

  for (const hostPath of previous.keyFiles.filter((p) => !keyContents.has(p))) {
    const change = releaseOrDelete(input, hostPath, input.host.keyFiles.get(hostPath), 'key', warnings, [...merged, ...namespacePolicies])
    if (change) changes.push(change)
  }

  const registries = await planRegistries({trust: input.trust, host: input.host, keysByName, capabilities: input.capabilities, layout: input.layout, previous, owner: input.owner})
  warnings.push(...registries.warnings)
  notes.push(...registries.notes)
  changes.push(...registries.changes, ...policyChanges)

  // What each file we own whole holds after this apply: the proof of ownership next time.
  const written = new Map(changes.map((c) => [c.hostPath, c.after]))
  const files: Record<string, string> = {}
  const own = (hostPath: string, current: Buffer | null | undefined) => {
    const text = written.has(hostPath) ? written.get(hostPath) : current?.toString('utf8')
    if (text !== null && text !== undefined) files[hostPath] = contentDigest(text)
  }

  for (const hostPath of keyContents.keys()) own(hostPath, input.host.keyFiles.get(hostPath)?.content)
  for (const hostPath of generatedPolicies) own(hostPath, input.host.policies.get(hostPath)?.file.content)
  if (registries.owned) files[registries.owned.hostPath] = contentDigest(registries.owned.text)
  const state: OwnershipState = {version: 1, policies, generatedPolicies, registriesD: registries.state, keyFiles: [...keyContents.keys()], files}
  const stateChange = fileChange(input.host.state.file, input.statePath, 'state', serializeState(state))
  if (stateChange) changes.push(stateChange)
  const crioPaths = new Set(input.targets.filter((t) => t.role === 'crio' || t.role === 'crio-namespace').map((t) => t.hostPath))
  if (changes.some((c) => crioPaths.has(c.hostPath)) || (crioPaths.size > 0 && changes.some((c) => c.kind !== 'state'))) {
    notes.push('CRI-O re-reads its policy files and registries.d on every pull: no restart or reload is needed.')
  }

  for (const o of overrides) {
    warnings.push(`${o.policyPath}: ${describeOverride(o)}${o.effect === 'weaker' ? `; take it over with apply --take-over ${o.scope === '' ? '""' : JSON.stringify(o.scope)}, or remove it` : ''}`)
  }

  // Writable by others without the sticky bit: anyone there can swap a key or policy by rename.
  // A user's own directories may be group-writable for their private group (umask 002).
  const openBits = input.layout.kind === 'user' ? 0o002 : 0o022
  const looseDirs = input.host.dirs.filter((d) => (d.mode & openBits) !== 0 && (d.mode & 0o1000) === 0).map((d) => ({path: d.realPath, mode: d.mode, kind: d.kind}))
  for (const d of looseDirs) warnings.push(`${d.path} is writable by ${d.mode & 0o002 ? 'everyone' : 'its group'} (mode ${d.mode.toString(8).padStart(4, '0')}): anyone who can write there can replace what this host trusts; chmod go-w ${d.path}`)
  const namespaceShadows = input.crioNamespacePolicies ?? []
  for (const n of namespaceShadows) {
    warnings.push(`${n.file}: CRI-O uses this policy for pods in namespace ${n.namespace}, not the managed one; add the namespace under crio.namespaces in the trust file, or remove the file`)
  }

  return {changes, warnings, shadowedBy: input.host.shadowing.map((f) => f.realPath), namespaceShadows, looseDirs, overrides, broken: registries.broken, notes, state, capabilities: input.capabilities}
}
