/**
 * containers/image's caps on what it reads from a registry or lookaside
 * (internal/iolimits/iolimits.go): a body over its limit is an error, never
 * read further. Ours are the same, so a hostile server costs no more here.
 */
export const MiB = 1024 * 1024
export const MAX_MANIFEST_BODY = 4 * MiB
export const MAX_AUTH_TOKEN_BODY = MiB
export const MAX_SIGNATURE_BODY = 4 * MiB
export const MAX_ERROR_BODY = MiB
