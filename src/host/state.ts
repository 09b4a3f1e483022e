import {ImagetrustError} from '../lib/errors.js'
import {parseStrictJson, toValue} from '../policy/json.js'
import type {ForeignEdit} from '../registries-d/merge.js'

/** What imagetrust owns in one policy file. */
export interface PolicyOwnership {
  /** docker scopes that came from the trust file. */
  scopes: string[]
  /** Transports whose "" entry we added to keep local images usable under default: reject. */
  localTransports: string[]
  /** Scopes the host already had when the trust file took them over: put back when they leave the trust file. */
  replaced?: Record<string, unknown[]>
  /**
   * Foreign scopes that overrode an owned rule, taken over with apply --take-over:
   * they carry the rule they hid (`hides`, null for the default) until it leaves
   * the trust file, then get `original` back.
   */
  takenOver?: Record<string, {hides: string | null; original: unknown[]}>
}

/** What imagetrust owns on a host; everything else is left as found. */
export interface OwnershipState {
  version: 1
  /** Per policy file (host path): the system one, CRI-O's signature_policy, a user's. */
  policies: Record<string, PolicyOwnership>
  /** Policy files imagetrust writes whole (CRI-O per-namespace policies). */
  generatedPolicies: string[]
  registriesD: {
    ownedScopes: string[]
    foreignEdits: ForeignEdit[]
    /** System files copied into a new user registries.d, which replaces the system directory. */
    carriedOver: string[]
  }
  keyFiles: string[]
  /** sha256 of what we last wrote to each file we own whole (keys, imagetrust.yaml, CRI-O namespace policies): ownership is proven, not assumed. */
  files?: Record<string, string>
}

export function emptyState(): OwnershipState {
  return {version: 1, policies: {}, generatedPolicies: [], registriesD: {ownedScopes: [], foreignEdits: [], carriedOver: []}, keyFiles: [], files: {}}
}

export function serializeState(state: OwnershipState): string {
  return JSON.stringify(state, null, 2) + '\n'
}

export function parseState(text: string, file: string): OwnershipState {
  const value = toValue(parseStrictJson(text, file)) as Partial<OwnershipState>
  const ok =
    value &&
    value.version === 1 &&
    typeof value.policies === 'object' &&
    value.policies !== null &&
    Array.isArray(value.generatedPolicies) &&
    Array.isArray(value.registriesD?.ownedScopes) &&
    Array.isArray(value.registriesD?.foreignEdits) &&
    Array.isArray(value.registriesD?.carriedOver) &&
    Array.isArray(value.keyFiles)
  if (!ok) {
    throw new ImagetrustError(`${file}: not an imagetrust state file (version 1); move it away to let imagetrust adopt the host again`)
  }

  return value as OwnershipState
}
