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
  /** When it stops being trusted (ISO 8601, UTC; see expiry.ts), and why it was trusted until then. */
  until?: string
  reason?: string
  /** Instead of file/url/data: certificates from a private CA (sigstoreSigned pki, containers/image 5.35+). */
  pki?: PkiSpec
  line: number
}

/** One PEM source of CA certificates: a file (relative to the trust file) or inline data. */
export interface CertificateSource {
  file?: string
  data?: string
  line: number
}

/**
 * `pki:` of a sigstore key: signatures carry a leaf certificate, which must
 * chain to one of the CA roots (through the intermediates, or those the
 * signature carries) and name the subject (email and/or hostname).
 */
export interface PkiSpec {
  caRoots: CertificateSource
  caIntermediates?: CertificateSource
  subjectEmail?: string
  subjectHostname?: string
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
  /** When the scope ends (ISO 8601, UTC; see expiry.ts), and why it exists until then. */
  until?: string
  reason?: string
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
  /** The signing host: its GPG key, and the scopes it signs for (those with lookasideStaging). */
  signer?: SignerSpec
  /** Absolute path of the file, and its directory (key files are relative to it). */
  file: string
  dir: string
  /** sha256 of the text it was read from (loadTrustFile): apply re-plans from it only while the file still holds that text. */
  digest?: string
}

/**
 * `signer:`: the host that runs `podman push --sign-by`. Its private key
 * stays in its GnuPG keyring; the trust file names it by fingerprint only.
 */
export interface SignerSpec {
  /** Primary key fingerprint, upper case. */
  fingerprint: string
  /** The keyring holding the private key, as written (absolute, ~/..., or relative to the trust file); absent: $GNUPGHOME or ~/.gnupg. */
  gnupgHome?: string
  /** Hostnames that are the signing host; absent: every host that applies this file. */
  hosts?: string[]
  line: number
}
