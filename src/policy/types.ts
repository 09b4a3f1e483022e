/** policy.json as containers/image models it (containers-policy.json(5)). */

export type SignedIdentity =
  | {type: 'matchExact'}
  | {type: 'matchRepoDigestOrExact'}
  | {type: 'matchRepository'}
  | {type: 'exactReference'; dockerReference: string}
  | {type: 'exactRepository'; dockerRepository: string}
  | {type: 'remapIdentity'; prefix: string; signedPrefix: string}

export type SignedIdentityType = SignedIdentity['type']

export const GPG_KEY_TYPES = ['GPGKeys', 'signedByGPGKeys', 'X509Certificates', 'signedByX509CAs'] as const
export type GpgKeyType = (typeof GPG_KEY_TYPES)[number]

export interface SignedByRequirement {
  type: 'signedBy'
  keyType: GpgKeyType
  keyPath?: string
  keyPaths?: string[]
  keyData?: string
  signedIdentity?: SignedIdentity
}

/** Fulcio and PKI blocks are kept as validated plain objects; imagetrust never writes them. */
export interface SigstoreSignedRequirement {
  type: 'sigstoreSigned'
  keyPath?: string
  keyPaths?: string[]
  keyData?: string
  keyDatas?: string[]
  fulcio?: Record<string, string>
  pki?: Record<string, string>
  rekorPublicKeyPath?: string
  rekorPublicKeyPaths?: string[]
  rekorPublicKeyData?: string
  rekorPublicKeyDatas?: string[]
  signedIdentity?: SignedIdentity
}

export type PolicyRequirement =
  | {type: 'insecureAcceptAnything'}
  | {type: 'reject'}
  | SignedByRequirement
  | SigstoreSignedRequirement
  | {type: 'signedBaseLayer'; baseLayerIdentity: SignedIdentity}

export type RequirementType = PolicyRequirement['type']

export interface PolicyScope {
  /** "" is the transport-wide default. */
  scope: string
  requirements: PolicyRequirement[]
}

export interface PolicyTransport {
  name: string
  scopes: PolicyScope[]
}

export interface Policy {
  default: PolicyRequirement[]
  /** Absent when the file has no "transports" key; order is the file's. */
  transports?: PolicyTransport[]
}

/** Transports containers/image knows; others load and never match. */
export const KNOWN_TRANSPORTS = [
  'docker',
  'atomic',
  'containers-storage',
  'dir',
  'docker-archive',
  'docker-daemon',
  'oci',
  'oci-archive',
  'sif',
  'tarball',
  'ostree',
] as const

/** Transports that read images already on the host; `default: reject` keeps them accepting. */
export const LOCAL_TRANSPORTS = ['containers-storage', 'docker-daemon', 'oci', 'oci-archive', 'docker-archive', 'dir'] as const

/** Which optional policy features the target containers/image understands. */
export interface PolicyFeatures {
  remapIdentity: boolean // 5.9
  signedByKeyPaths: boolean // 5.22
  sigstoreSigned: boolean // 5.22
  sigstoreFulcioRekor: boolean // 5.24
  sigstoreKeyLists: boolean // 5.33
  sigstorePki: boolean // 5.35
  /**
   * The atomic (OpenShift) transport validates its scopes (hostname/namespace/stream:tag).
   * Debian 12's containers/image 5.23 build does not (observed); upstream builds do (the lab's 5.29-5.40).
   */
  atomicScopes: boolean
}

export const ALL_FEATURES: PolicyFeatures = {
  remapIdentity: true,
  signedByKeyPaths: true,
  sigstoreSigned: true,
  sigstoreFulcioRekor: true,
  sigstoreKeyLists: true,
  sigstorePki: true,
  atomicScopes: true,
}
