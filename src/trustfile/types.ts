import type {SignedIdentity} from '../policy/types.js'

/** The declarative trust file (/etc/imagetrust/trust.yaml), after validation. */

export type KeyKind = 'gpg' | 'sigstore'
export type ScopePolicy = 'signed' | 'reject' | 'accept'

export interface KeySpec {
  name: string
  type: KeyKind
  /** Exactly one source: a file (relative to the trust file), an https URL, or inline data. */
  file?: string
  url?: string
  data?: string
  /** Pinned fingerprints: every key in the source must be listed, and each listed one found. */
  fingerprints?: string[]
  line: number
}

export interface ScopeSpec {
  scope: string
  policy: ScopePolicy
  keys: string[]
  identity?: SignedIdentity
  lookaside?: string
  lookasideStaging?: string
  sigstoreAttachments?: boolean
  test?: {signed?: string; unsigned?: string}
  line: number
}

export interface TrustFile {
  version: 1
  /** Absent: policy.json's default is left as found. */
  default?: 'reject' | 'accept'
  /** With default: reject, keep local transports (containers-storage, oci, dir ...) accepting. */
  localTransports: 'accept' | 'default'
  keys: KeySpec[]
  scopes: ScopeSpec[]
  /**
   * CRI-O per-namespace policies (CRI-O 1.28+): a scope listed under a
   * namespace applies only in that namespace's policy file, not globally.
   */
  crioNamespaces: Array<{namespace: string; scopes: string[]; line: number}>
  /** Absolute path of the file, and its directory (key files are relative to it). */
  file: string
  dir: string
}
