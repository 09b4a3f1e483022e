import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import {HOST_PATHS} from '../host/paths.js'
import type {HostFile, HostSnapshot} from '../host/snapshot.js'
import type {LoadedKey} from '../keys/types.js'
import {ImagetrustError} from '../lib/errors.js'
import {parsePolicy} from '../policy/parse.js'
import {newAcceptAnything, newReject, newSignedBy, newSigstoreSigned, PolicyRuleError} from '../policy/requirements.js'
import {detectIndent, samePolicy, serializePolicy} from '../policy/serialize.js'
import {LOCAL_TRANSPORTS, type Policy, type PolicyRequirement, type PolicyTransport} from '../policy/types.js'
import {type DesiredSection, mergeRegistriesD} from '../registries-d/merge.js'
import {findConflicts} from '../registries-d/read.js'
import type {ScopeSpec, TrustFile} from '../trustfile/types.js'
import {type OwnershipState, STATE_HOST_PATH, emptyState, serializeState} from './state.js'
import type {FileChange, Plan} from './types.js'

/**
 * plan(desired, host) → the file changes that bring the host to the trust
 * file. No I/O: every command (plan, apply, check) is a view of this.
 */
export interface PlanInput {
  trust: TrustFile
  keys: LoadedKey[]
  host: HostSnapshot
  capabilities: Capabilities
  /** Overwrite a policy.json that does not parse (it is backed up first). */
  replaceInvalid?: boolean
}

const FILE_MODE = 0o644

/** The policy a host gets when it has none: what Debian and Fedora ship. */
function fallbackPolicy(): Policy {
  return {default: [newAcceptAnything()]}
}

/** The combined keyring for a scope that trusts several GPG keys on containers/image < 5.22. */
export function combinedKeyringPath(keys: LoadedKey[]): string {
  return path.posix.join(HOST_PATHS.keyDir, `${keys.map((k) => k.name).join('+')}.gpg`)
}

interface BuiltScope {
  requirements: PolicyRequirement[]
  combinedKeyring?: {hostPath: string; keys: LoadedKey[]}
}

function buildScopeRequirements(spec: ScopeSpec, keysByName: Map<string, LoadedKey>, capabilities: Capabilities, trust: TrustFile): BuiltScope {
  const location = {file: trust.file, line: spec.line}
  try {
    if (spec.policy === 'accept') return {requirements: [newAcceptAnything()]}
    if (spec.policy === 'reject') return {requirements: [newReject()]}
    const keys = spec.keys.map((name) => keysByName.get(name)!)
    const features = capabilities.policy
    if (keys[0].type === 'sigstore') {
      // cosign signs a repository, not a tag: the default identity would never match.
      const signedIdentity = spec.identity ?? {type: 'matchRepository' as const}
      if (keys.length === 1) return {requirements: [newSigstoreSigned({keyPath: keys[0].hostPath, signedIdentity}, features)]}
      if (!features.sigstoreKeyLists) {
        throw new ImagetrustError(
          `scope "${spec.scope}" trusts ${keys.length} sigstore keys, but containers/image ${capabilities.containersImage} (${capabilities.source}) accepts only one sigstore key per scope (keyPaths needs 5.33)`,
          {location},
        )
      }

      return {requirements: [newSigstoreSigned({keyPaths: keys.map((k) => k.hostPath), signedIdentity}, features)]}
    }

    const identity = spec.identity ? {signedIdentity: spec.identity} : {}
    if (keys.length === 1) return {requirements: [newSignedBy({keyType: 'GPGKeys', keyPath: keys[0].hostPath, ...identity}, features)]}
    // Several keys must be ONE requirement: separate signedBy entries would all be required.
    if (features.signedByKeyPaths) {
      return {requirements: [newSignedBy({keyType: 'GPGKeys', keyPaths: keys.map((k) => k.hostPath), ...identity}, features)]}
    }

    const hostPath = combinedKeyringPath(keys)
    return {requirements: [newSignedBy({keyType: 'GPGKeys', keyPath: hostPath, ...identity}, features)], combinedKeyring: {hostPath, keys}}
  } catch (error) {
    if (error instanceof PolicyRuleError) throw new ImagetrustError(`scope "${spec.scope}": ${error.message}`, {location})
    throw error
  }
}

function dockerTransport(policy: Policy): PolicyTransport {
  policy.transports ??= []
  let transport = policy.transports.find((t) => t.name === 'docker')
  if (!transport) {
    transport = {name: 'docker', scopes: []}
    policy.transports.push(transport)
  }

  return transport
}

function clonePolicy(policy: Policy): Policy {
  return structuredClone(policy)
}

function basePolicy(input: PlanInput, warnings: string[]): Policy {
  const {policy} = input.host
  if (policy.error) {
    if (!input.replaceInvalid) {
      throw new ImagetrustError(`${policy.error.reason}\ncontainers/image would refuse this policy.json; nothing was changed`, {
        location: policy.error.location,
        hint: 'Fix the file by hand, or run apply --replace-invalid to back it up and replace it.',
      })
    }

    warnings.push(`${policy.file.realPath} is invalid and will be replaced (a backup is kept): ${policy.error.message}`)
    return fallbackPolicy()
  }

  if (!policy.parsed) {
    warnings.push(`${policy.file.realPath} does not exist; starting from the distribution default (accept anything) plus the trust file`)
    return fallbackPolicy()
  }

  warnings.push(...policy.parsed.warnings)
  return clonePolicy(policy.parsed.policy)
}

interface PolicyMerge {
  policy: Policy
  ownedScopes: string[]
  localTransports: string[]
  combinedKeyrings: Map<string, LoadedKey[]>
}

export function mergePolicy(base: Policy, input: PlanInput, previous: OwnershipState): PolicyMerge {
  const policy = clonePolicy(base)
  const keysByName = new Map(input.keys.map((k) => [k.name, k]))
  const wanted = new Set(input.trust.scopes.map((s) => s.scope))
  const touched = new Set<string>()
  const combinedKeyrings = new Map<string, LoadedKey[]>()

  // Scopes we added earlier and the trust file no longer has.
  for (const transport of policy.transports ?? []) {
    if (transport.name === 'docker') {
      const before = transport.scopes.length
      transport.scopes = transport.scopes.filter((s) => wanted.has(s.scope) || !previous.policy.scopes.includes(s.scope))
      if (transport.scopes.length !== before) touched.add('docker')
    }
  }

  for (const spec of input.trust.scopes) {
    const built = buildScopeRequirements(spec, keysByName, input.capabilities, input.trust)
    if (built.combinedKeyring) combinedKeyrings.set(built.combinedKeyring.hostPath, built.combinedKeyring.keys)
    const transport = dockerTransport(policy)
    touched.add('docker')
    const existing = transport.scopes.find((s) => s.scope === spec.scope)
    if (existing) existing.requirements = built.requirements
    else transport.scopes.push({scope: spec.scope, requirements: built.requirements})
  }

  if (input.trust.default === 'reject') policy.default = [newReject()]
  if (input.trust.default === 'accept') policy.default = [newAcceptAnything()]

  // Local transports: keep them accepting under default: reject, owning only what we add.
  const keepLocal = input.trust.default === 'reject' && input.trust.localTransports === 'accept'
  const localTransports: string[] = []
  for (const name of LOCAL_TRANSPORTS) {
    const ours = previous.policy.localTransports.includes(name)
    let transport = policy.transports?.find((t) => t.name === name)
    const hasDefault = transport?.scopes.some((s) => s.scope === '') ?? false
    if (keepLocal && (!hasDefault || ours)) {
      if (!transport) {
        transport = {name, scopes: []}
        policy.transports ??= []
        policy.transports.push(transport)
      }

      if (!hasDefault) transport.scopes.unshift({scope: '', requirements: [newAcceptAnything()]})
      localTransports.push(name)
    } else if (!keepLocal && ours && transport) {
      transport.scopes = transport.scopes.filter((s) => s.scope !== '')
      touched.add(name)
    }
  }

  // Drop transports we emptied; never ones the host had empty on purpose.
  if (policy.transports) {
    policy.transports = policy.transports.filter((t) => t.scopes.length > 0 || !touched.has(t.name) || base.transports?.some((b) => b.name === t.name && b.scopes.length === 0))
    if (policy.transports.length === 0 && !base.transports) delete policy.transports
  }

  return {policy, ownedScopes: input.trust.scopes.map((s) => s.scope), localTransports, combinedKeyrings}
}

function fileChange(
  file: HostFile | undefined,
  hostPath: string,
  kind: FileChange['kind'],
  after: string | null,
  mode = FILE_MODE,
): FileChange | undefined {
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

function registriesValues(spec: ScopeSpec, keysByName: Map<string, LoadedKey>, capabilities: Capabilities): Record<string, string | boolean> {
  const names = capabilities.lookasideKeys === 'lookaside' ? ['lookaside', 'lookaside-staging'] : ['sigstore', 'sigstore-staging']
  const values: Record<string, string | boolean> = {}
  if (spec.lookaside) values[names[0]] = spec.lookaside
  if (spec.lookasideStaging) values[names[1]] = spec.lookasideStaging
  const usesSigstore = spec.policy === 'signed' && keysByName.get(spec.keys[0])?.type === 'sigstore'
  const attachments = spec.sigstoreAttachments ?? (usesSigstore ? true : undefined)
  if (attachments !== undefined) values['use-sigstore-attachments'] = attachments
  return values
}

export async function plan(input: PlanInput): Promise<Plan> {
  const warnings: string[] = [...input.host.registriesD.warnings]
  for (const conflict of findConflicts(input.host.registriesD.files)) warnings.push(`registries.d is broken, containers/image fails every pull: ${conflict}`)
  for (const key of input.keys) warnings.push(...key.warnings)
  const previous = input.host.state.value ?? emptyState()
  const changes: FileChange[] = []

  // Keys first: policy.json points at them.
  const keyContents = new Map<string, string>()
  for (const key of input.keys) keyContents.set(key.hostPath, key.content)
  const base = basePolicy(input, warnings)
  const merged = mergePolicy(base, input, previous)
  if (merged.combinedKeyrings.size > 0) {
    const {armorPublicKeys, concat} = await import('../keys/gpg.js')
    for (const [hostPath, keys] of merged.combinedKeyrings) {
      keyContents.set(hostPath, await armorPublicKeys(concat(keys.map((k) => k.binary!))))
    }
  }

  for (const [hostPath, content] of keyContents) {
    const change = fileChange(input.host.keyFiles.get(hostPath), hostPath, 'key', content)
    if (change) changes.push(change)
  }

  for (const hostPath of previous.keyFiles) {
    if (keyContents.has(hostPath)) continue
    const change = fileChange(input.host.keyFiles.get(hostPath), hostPath, 'key', null)
    if (change) changes.push(change)
  }

  // registries.d
  const keysByName = new Map(input.keys.map((k) => [k.name, k]))
  const desiredSections: DesiredSection[] = []
  for (const spec of input.trust.scopes) {
    const values = registriesValues(spec, keysByName, input.capabilities)
    if (Object.keys(values).length > 0) desiredSections.push({scope: spec.scope, values, line: spec.line})
    if (spec.policy === 'signed' && !spec.lookaside && !input.host.registriesD.files.some((f) => f.scopes.has(spec.scope))) {
      warnings.push(`scope "${spec.scope}" is signed but has no lookaside: pulls read signatures from registries.d's default-docker or the built-in local directory`)
    }
  }

  const registries = await mergeRegistriesD({
    dirHostPath: input.host.registriesD.dirHostPath,
    files: input.host.registriesD.files,
    desired: desiredSections,
    previousEdits: previous.registriesD.foreignEdits,
    trustFile: input.trust.file,
  })
  for (const change of registries.changes) {
    const action = change.before === null ? 'create' : change.after === null ? 'delete' : 'update'
    changes.push({
      hostPath: change.hostPath,
      kind: 'registries.d',
      action,
      before: change.before,
      after: change.after,
      mode: FILE_MODE,
      reasons: [action === 'create' ? 'missing' : action === 'delete' ? 'extra' : 'content'],
    })
  }

  // policy.json last: once it lands, keys and lookaside config are in place.
  const policyFile = input.host.policy.file
  const policyChanged = !input.host.policy.parsed || !samePolicy(input.host.policy.parsed.policy, merged.policy)
  if (policyChanged) {
    const before = policyFile.content?.toString('utf8') ?? null
    const after = serializePolicy(merged.policy, before ? detectIndent(before) : 4)
    // What we write must load in containers/image: check it with the strict parser.
    try {
      parsePolicy(after, `${policyFile.hostPath} (planned)`, {features: input.capabilities.policy})
    } catch (error) {
      throw new ImagetrustError(`refusing to write a policy.json that containers/image would reject: ${(error as Error).message}`)
    }

    changes.push({
      hostPath: policyFile.hostPath,
      kind: 'policy',
      action: before === null ? 'create' : 'update',
      before,
      after,
      mode: policyFile.mode ?? FILE_MODE,
      reasons: [before === null ? 'missing' : 'content'],
      replacesSymlink: policyFile.symlinkTarget !== undefined,
    })
  }

  const state: OwnershipState = {
    version: 1,
    policy: {scopes: merged.ownedScopes, localTransports: merged.localTransports},
    registriesD: {ownedScopes: registries.ownedScopes, foreignEdits: registries.foreignEdits},
    keyFiles: [...keyContents.keys()],
  }
  const stateChange = fileChange(input.host.state.file, STATE_HOST_PATH, 'state', serializeState(state))
  if (stateChange) changes.push(stateChange)
  return {changes, warnings, state, capabilities: input.capabilities}
}
