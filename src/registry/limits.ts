/**
 * containers/image's caps on what it reads from a registry or lookaside
 * (internal/iolimits/iolimits.go): a body over its limit is an error, never
 * read further. Ours are the same, so a hostile server costs no more here.
 */
export const MiB = 1024 * 1024

export interface BodyLimit {
  bytes: number
  /** The containers/image constant it copies. */
  name: string
}

export const MANIFEST_LIMIT: BodyLimit = {bytes: 4 * MiB, name: 'MaxManifestBodySize'}
export const AUTH_TOKEN_LIMIT: BodyLimit = {bytes: MiB, name: 'MaxAuthTokenBodySize'}
export const SIGNATURE_LIMIT: BodyLimit = {bytes: 4 * MiB, name: 'MaxSignatureBodySize'}
export const MAX_SIGNATURE_BODY = SIGNATURE_LIMIT.bytes

/** One deadline for a whole command (or one image of audit), shared by every fetch it makes. */
export interface Budget {
  signal: AbortSignal
  seconds: number
}

export const DEFAULT_TIMEOUT_SECONDS = 60

export function deadline(seconds = DEFAULT_TIMEOUT_SECONDS): Budget {
  return {signal: AbortSignal.timeout(seconds * 1000), seconds}
}
