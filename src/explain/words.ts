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

        case 'sigstoreSigned':
        case 'signedBy': {
          if (r.type === 'sigstoreSigned' && r.pki) return plainPki(r.pki, r.signedIdentity?.type ?? 'matchRepoDigestOrExact')
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

/** sigstoreSigned pki: a signing certificate from these CAs, for this subject. */
function plainPki(pki: Record<string, string>, identity: string): string {
  const subject = [pki.subjectEmail && `email ${pki.subjectEmail}`, pki.subjectHostname && `hostname ${pki.subjectHostname}`].filter(Boolean).join(' and ')
  const roots = pki.caRootsPath ?? 'inline CA roots'
  const intermediates = pki.caIntermediatesPath ? ` (intermediates ${pki.caIntermediatesPath})` : pki.caIntermediatesData === undefined ? '' : ' (inline intermediates)'
  return `sigstore signature with a certificate issued under CA ${roots}${intermediates} for ${subject || 'no subject'}, identity ${identity}`
}
