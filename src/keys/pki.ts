import {X509Certificate} from 'node:crypto'
import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import {ImagetrustError, type Location, locationOf} from '../lib/errors.js'
import {newSigstoreSigned} from '../policy/requirements.js'
import type {SignedIdentity, SigstoreSignedRequirement} from '../policy/types.js'
import type {CertificateSource, KeySpec, PkiSpec} from '../trustfile/types.js'
import {readKeyFile} from './source.js'
import type {KeyInfo, LoadedKey} from './types.js'

/**
 * CA certificates for sigstore `pki` (containers/image 5.35+): signatures
 * carry a leaf certificate that must chain to these roots and name the
 * subject. Checked before they can land on a host: PEM certificates only
 * (a private key is refused), each an X.509 CA, within its validity period.
 */

export interface CheckedCertificates {
  /** The certificates re-encoded as PEM, one after the other: what is installed. */
  pem: string
  certificates: X509Certificate[]
  infos: KeyInfo[]
  problems: string[]
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g

/** `where` names the source in errors: a file path, or caRootsData. */
export function checkCaCertificates(bytes: Uint8Array, options: {name: string; where: string; now?: Date}): CheckedCertificates {
  const now = options.now ?? new Date()
  const blocks = [...Buffer.from(bytes).toString('utf8').matchAll(PEM_BLOCK)]
  const prefix = `key "${options.name}": ${options.where}`
  if (blocks.some((b) => b[1].includes('PRIVATE KEY'))) throw new ImagetrustError(`${prefix} holds a private key; only CA certificates are accepted`)
  const other = blocks.find((b) => b[1] !== 'CERTIFICATE')
  if (other) throw new ImagetrustError(`${prefix} holds a PEM "${other[1]}" block; only CERTIFICATE blocks are accepted`)
  if (blocks.length === 0) throw new ImagetrustError(`${prefix} has no PEM certificate (-----BEGIN CERTIFICATE-----)`)
  const certificates = blocks.map((block, i) => {
    try {
      return new X509Certificate(block[0])
    } catch (error) {
      throw new ImagetrustError(`${prefix}: certificate ${i + 1} does not parse as X.509: ${(error as Error).message}`)
    }
  })
  const problems: string[] = []
  const infos = certificates.map((certificate, i) => {
    const info = certificateInfo(certificate, now)
    const label = `${prefix}: certificate ${i + 1} (${info.userIds[0]})`
    if (!certificate.ca) throw new ImagetrustError(`${label} is not a CA certificate (no basicConstraints CA:TRUE): give the certificate authority that issues the signing certificates, not a signing certificate`)
    if (info.expired) problems.push(`${label} expired on ${info.expires}`)
    else if (new Date(certificate.validFrom).getTime() > now.getTime()) problems.push(`${label} is not valid before ${info.created}`)
    return info
  })
  return {pem: certificates.map((c) => c.toString()).join(''), certificates, infos, problems}
}

function certificateInfo(certificate: X509Certificate, now: Date): KeyInfo {
  const expires = new Date(certificate.validTo)
  const key = certificate.publicKey
  const details = key.asymmetricKeyDetails ?? {}
  const algorithm = key.asymmetricKeyType === 'ec' ? `ecdsa/${details.namedCurve}` : key.asymmetricKeyType === 'rsa' ? `rsa/${details.modulusLength}` : String(key.asymmetricKeyType)
  return {
    fingerprint: certificate.fingerprint256.replaceAll(':', '').toUpperCase(),
    algorithm,
    userIds: [certificate.subject.split('\n').join(', ')],
    created: new Date(certificate.validFrom).toISOString(),
    expires: expires.toISOString(),
    expired: expires.getTime() <= now.getTime(),
    revoked: false,
    canSign: true,
  }
}

/** Where a pki key's CA files are installed. */
export function pkiHostPaths(name: string, keyDir: string): {roots: string; intermediates: string} {
  return {roots: path.posix.join(keyDir, `${name}.roots.pem`), intermediates: path.posix.join(keyDir, `${name}.intermediates.pem`)}
}

async function readCertificates(spec: KeySpec, source: CertificateSource, field: string, trust: {file: string; dir: string}, now?: Date): Promise<CheckedCertificates> {
  const location = locationOf(trust.file, source)
  try {
    if (source.data !== undefined) return checkCaCertificates(Buffer.from(source.data, 'utf8'), {name: spec.name, where: `${field}Data`, now})
    const file = path.resolve(trust.dir, source.file!)
    return checkCaCertificates(await readKeyFile(file), {name: spec.name, where: file, now})
  } catch (error) {
    if (error instanceof ImagetrustError && !error.message.startsWith(`key "${spec.name}"`)) throw new ImagetrustError(`key "${spec.name}": ${error.message}`, {location})
    if (error instanceof ImagetrustError) throw new ImagetrustError(error.message, {location, hint: error.hint})
    throw error
  }
}

/** The roots' SHA-256 fingerprints must be exactly the pinned ones, as a key's. */
function pinProblems(name: string, roots: KeyInfo[], pins: string[] | undefined): string[] {
  if (!pins || pins.length === 0) return []
  const found = roots.map((k) => k.fingerprint)
  if (pins.every((p) => found.includes(p)) && found.every((f) => pins.includes(f))) return []
  return [`key "${name}": fingerprint pin does not match the CA roots.\n  pinned: ${pins.join(', ')}\n  found:  ${found.join(', ')} (SHA-256 of each certificate)`]
}

/** An intermediate that neither a root nor another intermediate issued cannot complete a chain by itself. */
function unchainedIntermediates(name: string, roots: X509Certificate[], intermediates: X509Certificate[]): string[] {
  const issuers = [...roots, ...intermediates]
  return intermediates
    .filter((c) => !issuers.some((issuer) => issuer !== c && c.checkIssued(issuer) && c.verify(issuer.publicKey)))
    .map((c) => `key "${name}": intermediate ${c.subject.split('\n').join(', ')} was not issued by the CA roots or another intermediate: only signatures whose chain carries its issuer can be verified`)
}

export async function loadPkiKey(spec: KeySpec & {pki: PkiSpec}, trust: {file: string; dir: string}, keyDir: string, now?: Date): Promise<LoadedKey> {
  const {pki} = spec
  const roots = await readCertificates(spec, pki.caRoots, 'caRoots', trust, now)
  const intermediates = pki.caIntermediates ? await readCertificates(spec, pki.caIntermediates, 'caIntermediates', trust, now) : undefined
  const paths = pkiHostPaths(spec.name, keyDir)
  return {
    name: spec.name,
    type: 'sigstore',
    hostPath: paths.roots,
    content: roots.pem,
    keys: [...roots.infos, ...(intermediates?.infos ?? [])],
    warnings: intermediates ? unchainedIntermediates(spec.name, roots.certificates, intermediates.certificates) : [],
    problems: [...roots.problems, ...(intermediates?.problems ?? []), ...pinProblems(spec.name, roots.infos, spec.fingerprints)],
    pki: {
      caRootsPath: paths.roots,
      ...(intermediates ? {caIntermediates: {hostPath: paths.intermediates, content: intermediates.pem}} : {}),
      ...(pki.subjectEmail ? {subjectEmail: pki.subjectEmail} : {}),
      ...(pki.subjectHostname ? {subjectHostname: pki.subjectHostname} : {}),
    },
  }
}

/**
 * Every key file a plan installs: each key, and beside a pki key its
 * intermediates file, as an entry of its own (a name no trust-file key can
 * have), so that it is written, owned and recorded like any key file.
 */
export function installedKeyFiles(keys: LoadedKey[]): LoadedKey[] {
  return keys.flatMap((k) => {
    const extra = k.pki?.caIntermediates
    if (!extra) return [k]
    return [k, {name: `${k.name} (CA intermediates)`, type: 'sigstore' as const, hostPath: extra.hostPath, content: extra.content, keys: [], warnings: [], problems: []}]
  })
}

/** A scope's requirement for a pki key; refused, naming the version needed, where the oldest engine here predates pki (5.35). */
export function pkiScopeRequirement(scope: string, key: LoadedKey, signedIdentity: SignedIdentity, capabilities: Capabilities, location: Location): SigstoreSignedRequirement {
  if (!capabilities.policy.sigstorePki) {
    throw new ImagetrustError(
      `scope "${scope}" trusts key "${key.name}" (pki: certificates from a CA), but containers/image ${capabilities.containersImage} (${capabilities.source}) does not know sigstoreSigned pki (pki needs 5.35)`,
      {location},
    )
  }

  const pki = key.pki!
  const block = {
    caRootsPath: pki.caRootsPath,
    ...(pki.caIntermediates ? {caIntermediatesPath: pki.caIntermediates.hostPath} : {}),
    ...(pki.subjectEmail ? {subjectEmail: pki.subjectEmail} : {}),
    ...(pki.subjectHostname ? {subjectHostname: pki.subjectHostname} : {}),
  }
  return newSigstoreSigned({pki: block, signedIdentity}, capabilities.policy)
}
