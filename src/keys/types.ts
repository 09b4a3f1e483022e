import type {KeyKind} from '../trustfile/types.js'

/** A trusted public key after checking, ready to install. */
export interface LoadedKey {
  name: string
  type: KeyKind
  /** Where the host reads it, e.g. /etc/pki/containers/acme.gpg. */
  hostPath: string
  /** The normalized public key as installed (ASCII-armored OpenPGP, or SPKI PEM). */
  content: string
  /** Binary keyring bytes (GPG only), for combined keyrings. */
  binary?: Uint8Array
  keys: KeyInfo[]
  warnings: string[]
  /** Why apply would refuse this key (expired, revoked, pin mismatch...); empty when usable. */
  problems: string[]
  /** A pki key (trust file `pki:`): hostPath holds the CA roots; these are the rest of its sigstoreSigned `pki` block. */
  pki?: {caRootsPath: string; caIntermediates?: {hostPath: string; content: string}; subjectEmail?: string; subjectHostname?: string}
}

export interface KeyInfo {
  fingerprint: string
  algorithm: string
  userIds: string[]
  created?: string
  expires?: string
  revoked?: boolean
  expired?: boolean
  canSign?: boolean
  /** Only a subkey can sign (rejected by containers/image before 5.37). */
  subkeyOnlySigning?: boolean
}
