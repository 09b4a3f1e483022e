import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import type {PolicySnapshot} from '../host/snapshot.js'
import type {LoadedKey} from '../keys/types.js'
import {pkiScopeRequirement} from '../keys/pki.js'
import {ImagetrustError, locationOf} from '../lib/errors.js'
import {checkRequirement, newAcceptAnything, newReject, newSignedBy, newSigstoreSigned, PolicyRuleError} from '../policy/requirements.js'
import {broaderScopes} from '../policy/effective.js'
import {findOverrides, type OwnedRules, type Override, ownedRuleBeneath} from '../policy/overrides.js'
import {requirementValue} from '../policy/serialize.js'
import {LOCAL_TRANSPORTS, type Policy, type PolicyRequirement, type PolicyTransport} from '../policy/types.js'
import type {ScopeSpec, TrustFile} from '../trustfile/types.js'
import type {PolicyOwnership} from '../host/state.js'

/**
 * Merging the trust file's scopes into one policy file: only owned scopes
 * change; every other scope, transport and (unless the trust file sets it)
 * the default stay as found, in their order.
 */

/** The policy a host gets when it has none: what Debian and Fedora ship. */
export function fallbackPolicy(): Policy {
  return {default: [newAcceptAnything()]}
}

/** The combined keyring for a scope that trusts several GPG keys on containers/image < 5.22. */
export function combinedKeyringPath(keys: Array<Pick<LoadedKey, 'name'>>, keyDir: string): string {
  return path.posix.join(keyDir, `${keys.map((k) => k.name).join('+')}.gpg`)
}

export interface BuiltScope {
  requirements: PolicyRequirement[]
  combinedKeyring?: {hostPath: string; keys: LoadedKey[]}
}

export function buildScopeRequirements(
  spec: ScopeSpec,
  keysByName: Map<string, LoadedKey>,
  capabilities: Capabilities,
  trust: TrustFile,
  keyDir: string,
): BuiltScope {
  const location = locationOf(trust.file, spec)
  try {
    if (spec.policy === 'accept') return {requirements: [newAcceptAnything()]}
    if (spec.policy === 'reject') return {requirements: [newReject()]}
    const keys = spec.keys.map((name) => keysByName.get(name)!)
    const features = capabilities.policy
    if (keys[0].type === 'sigstore') {
      // cosign signs a repository, not a tag: the default identity would never match.
      const signedIdentity = spec.identity ?? {type: 'matchRepository' as const}
      if (keys[0].pki) return {requirements: [pkiScopeRequirement(spec.scope, keys[0], signedIdentity, capabilities, location)]}
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

    const hostPath = combinedKeyringPath(keys, keyDir)
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

/** Sets docker scopes in place, or appends them, in one pass (a find per scope is quadratic at 10,000 scopes). */
export function setDockerScopes(policy: Policy, entries: Array<{scope: string; requirements: PolicyRequirement[]}>): void {
  const transport = dockerTransport(policy)
  const index = new Map(transport.scopes.map((s) => [s.scope, s]))
  for (const {scope, requirements} of entries) {
    const existing = index.get(scope)
    if (existing) {
      existing.requirements = requirements
    } else {
      const added = {scope, requirements}
      transport.scopes.push(added)
      index.set(scope, added)
    }
  }
}

/**
 * What a policy file is merged onto: its parsed content (shared and frozen:
 * mergePolicy copies it), or the distribution default when missing (or
 * invalid and replaced).
 */
export function basePolicy(snapshot: PolicySnapshot, replaceInvalid: boolean, warnings: string[], notes: string[]): Policy {
  if (snapshot.error) {
    if (!replaceInvalid) {
      throw new ImagetrustError(`${snapshot.error.reason}\ncontainers/image would refuse this policy file; nothing was changed`, {
        location: snapshot.error.location,
        hint: 'Fix the file by hand, or run apply --replace-invalid to back it up and replace it.',
      })
    }

    notes.push(`${snapshot.file.realPath} is invalid and is replaced (a backup is kept): ${snapshot.error.message}`)
    return fallbackPolicy()
  }

  if (!snapshot.parsed && snapshot.vendor?.parsed) {
    notes.push(`${snapshot.file.realPath} does not exist; it starts from ${snapshot.vendor.realPath} (every vendor rule kept) plus the trust file, and from now on takes precedence over it`)
    warnings.push(...snapshot.vendor.parsed.warnings)
    return snapshot.vendor.parsed.policy
  }

  if (!snapshot.parsed) {
    if (snapshot.vendor?.error) warnings.push(`${snapshot.vendor.realPath} cannot be used as a starting point: ${snapshot.vendor.error.message}`)
    notes.push(`${snapshot.file.realPath} does not exist; it starts from the distribution default (accept anything) plus the trust file`)
    return fallbackPolicy()
  }

  warnings.push(...snapshot.parsed.warnings)
  return snapshot.parsed.policy
}

export interface PolicyMergeInput {
  trust: TrustFile
  scopes: ScopeSpec[]
  keysByName: Map<string, LoadedKey>
  capabilities: Capabilities
  keyDir: string
  /** Foreign scopes to take over (apply --take-over): each must override an owned rule. */
  takeOver?: string[]
}

export interface PolicyMerge {
  policy: Policy
  ownership: PolicyOwnership
  combinedKeyrings: Map<string, LoadedKey[]>
  /** Foreign rules still deciding for images the trust file meant to decide for. */
  overrides: Override[]
  /** --take-over scopes that override nothing in this file (another target may have them). */
  unmatchedTakeOver: string[]
}

/**
 * Taken-over scopes carry the rule the trust file meant for their images
 * (the owned rule beneath them, taken-over ones included) for as long as
 * there is one; then they get their own requirements back. Broader ones
 * first, so a take-over beneath another is settled before it is read.
 */
export function holdTakeOvers(policy: Policy, records: NonNullable<PolicyOwnership['takenOver']>, owned: OwnedRules): NonNullable<PolicyOwnership['takenOver']> {
  const docker = policy.transports?.find((t) => t.name === 'docker')
  const held: NonNullable<PolicyOwnership['takenOver']> = {}
  const depth = (scope: string) => (scope === '' ? -1 : (broaderScopes(scope)?.length ?? 0))
  for (const [scope, record] of Object.entries(records).sort(([a], [b]) => depth(a) - depth(b))) {
    const entry = docker?.scopes.find((s) => s.scope === scope)
    if (!entry) continue // removed by hand: nothing left to hold
    const intended = ownedRuleBeneath(policy, scope, {...owned, scopes: new Set([...owned.scopes].filter((s) => s !== scope))})
    if (intended) {
      entry.requirements = structuredClone(intended.requirements)
      held[scope] = {hides: intended.scope, original: record.original}
    } else {
      entry.requirements = record.original.map((r) => checkRequirement(r as PolicyRequirement))
    }
  }

  return held
}

/** New take-overs must name a scope that overrides a rule of the trust file right now, in this file. */
function applyTakeOvers(policy: Policy, input: PolicyMergeInput, previous: PolicyOwnership, wanted: Set<string>): {records: PolicyOwnership['takenOver']; unmatched: string[]} {
  const ownsDefault = input.trust.default !== undefined
  const kept: NonNullable<PolicyOwnership['takenOver']> = Object.fromEntries(Object.entries(previous.takenOver ?? {}).filter(([scope]) => !wanted.has(scope)))
  const current = findOverrides(policy, {scopes: new Set([...wanted, ...Object.keys(kept)]), ownsDefault})
  const unmatched: string[] = []
  for (const scope of input.takeOver ?? []) {
    if (scope in kept || wanted.has(scope)) continue
    const override = current.find((o) => o.scope === scope)
    if (override) kept[scope] = {hides: override.hides, original: override.requirements.map((r) => requirementValue(r))}
    else unmatched.push(scope)
  }

  const held = holdTakeOvers(policy, kept, {scopes: new Set([...wanted, ...Object.keys(kept)]), ownsDefault})
  return {records: Object.keys(held).length > 0 ? held : undefined, unmatched}
}

export function mergePolicy(base: Policy, input: PolicyMergeInput, previous: PolicyOwnership): PolicyMerge {
  const policy = structuredClone(base) // the base may be a shared, frozen parse
  const wanted = new Set(input.scopes.map((s) => s.scope))
  const touched = new Set<string>()
  const combinedKeyrings = new Map<string, LoadedKey[]>()

  // Scopes we added earlier and the trust file no longer has (here): removed, or put back as they were.
  const replaced: Record<string, unknown[]> = {...previous.replaced}
  // A taken-over scope the trust file now names itself: it is replaced like any host scope, its original kept.
  for (const [scope, record] of Object.entries(previous.takenOver ?? {})) if (wanted.has(scope)) replaced[scope] = record.original
  releaseDroppedScopes(policy, previous, wanted, replaced, touched)

  const entries = input.scopes.map((spec) => {
    const built = buildScopeRequirements(spec, input.keysByName, input.capabilities, input.trust, input.keyDir)
    if (built.combinedKeyring) combinedKeyrings.set(built.combinedKeyring.hostPath, built.combinedKeyring.keys)
    return {scope: spec.scope, requirements: built.requirements}
  })
  if (entries.length > 0) {
    setDockerScopes(policy, entries)
    touched.add('docker')
  }

  if (input.trust.default === 'reject') policy.default = [newReject()]
  if (input.trust.default === 'accept') policy.default = [newAcceptAnything()]
  const localTransports = mergeLocalTransports(policy, input.trust, previous, touched)
  dropEmptiedTransports(policy, base, touched)

  for (const scope of Object.keys(replaced)) if (!wanted.has(scope)) delete replaced[scope]
  const ownership: PolicyOwnership = {scopes: input.scopes.map((s) => s.scope), localTransports}
  if (Object.keys(replaced).length > 0) ownership.replaced = replaced
  const {records: takenOver, unmatched} = applyTakeOvers(policy, input, previous, wanted)
  if (takenOver) ownership.takenOver = takenOver
  const overrides = findOverrides(policy, {scopes: new Set([...wanted, ...Object.keys(takenOver ?? {})]), ownsDefault: input.trust.default !== undefined})
  return {policy, ownership, combinedKeyrings, overrides, unmatchedTakeOver: unmatched}
}

/**
 * Our docker scopes that the trust file no longer wants: removed, or given
 * back the rule they replaced. Host scopes the trust file now names are
 * remembered in `replaced` before they are overwritten.
 */
function releaseDroppedScopes(policy: Policy, previous: PolicyOwnership, wanted: Set<string>, replaced: Record<string, unknown[]>, touched: Set<string>): void {
  const docker = policy.transports?.find((t) => t.name === 'docker')
  if (!docker) return
  const owned = new Set([...previous.scopes, ...Object.keys(previous.takenOver ?? {}).filter((s) => wanted.has(s))])
  const before = docker.scopes.length
  docker.scopes = docker.scopes.flatMap((s) => {
    if (wanted.has(s.scope) || !owned.has(s.scope)) return [s]
    const original = replaced[s.scope]
    delete replaced[s.scope]
    return original ? [{scope: s.scope, requirements: original.map((r) => checkRequirement(r as PolicyRequirement))}] : []
  })
  if (docker.scopes.length !== before || Object.keys(replaced).length !== Object.keys(previous.replaced ?? {}).length) touched.add('docker')
  // A scope the host defined itself, now taken over: remember it first.
  for (const s of docker.scopes) {
    if (wanted.has(s.scope) && !owned.has(s.scope)) replaced[s.scope] = s.requirements.map((r) => requirementValue(r))
  }
}

/** Local transports (docker-archive, oci, ...) keep accepting under default: reject; we own only the rules we add. */
function mergeLocalTransports(policy: Policy, trust: TrustFile, previous: PolicyOwnership, touched: Set<string>): string[] {
  const keepLocal = trust.default === 'reject' && trust.localTransports === 'accept'
  const localTransports: string[] = []
  for (const name of LOCAL_TRANSPORTS) {
    const ours = previous.localTransports.includes(name)
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

  return localTransports
}

/** Transports we emptied are dropped; never ones the host had empty on purpose. */
function dropEmptiedTransports(policy: Policy, base: Policy, touched: Set<string>): void {
  if (!policy.transports) return
  policy.transports = policy.transports.filter(
    (t) => t.scopes.length > 0 || !touched.has(t.name) || base.transports?.some((b) => b.name === t.name && b.scopes.length === 0),
  )
  // Empty because we emptied it (or it did not exist): gone, as it was before we added to it.
  if (policy.transports.length === 0 && (touched.size > 0 || !base.transports)) delete policy.transports
}
