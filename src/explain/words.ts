import type {PolicyRequirement} from '../policy/types.js'

/** A requirement list in plain words. */
export function plainRequirements(requirements: PolicyRequirement[]): string {
  return requirements
    .map((r) => {
      switch (r.type) {
        case 'insecureAcceptAnything': {
          return 'accept anything, signed or not'
        }

        case 'reject': {
          return 'reject everything'
        }

        case 'signedBy':
        case 'sigstoreSigned': {
          const keys = [...(r.keyPath ? [r.keyPath] : []), ...(r.keyPaths ?? []), ...(r.keyData === undefined ? [] : ['inline key'])]
          const kind = r.type === 'signedBy' ? 'GPG (simple signing)' : 'sigstore'
          return `${kind} signature by ${keys.join(' or ') || 'a key'}, identity ${r.signedIdentity?.type ?? 'matchRepoDigestOrExact'}`
        }

        default: {
          return r.type
        }
      }
    })
    .join(' AND ')
}
