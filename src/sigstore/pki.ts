import {X509Certificate} from 'node:crypto'

import type {SigstoreKey} from './verify.js'

/**
 * sigstoreSigned `pki`, checked natively as containers/image 5.35+ does
 * (signature/pki_cert.go): the signature's leaf certificate
 * (dev.sigstore.cosign/certificate) must chain, through the configured
 * intermediates and those its chain annotation carries (all but the last),
 * to a CA root, for code signing, at the current time; then carry the
 * subject email and be valid for the subject hostname (DNS names, as Go's
 * VerifyHostname). Its public key then verifies the signature. Reasons use
 * the engine's words.
 */
export interface PkiTrust {
  roots: X509Certificate[]
  intermediates: X509Certificate[]
  subjectEmail?: string
  subjectHostname?: string
}

const CODE_SIGNING = '1.3.6.1.5.5.7.3.3'
const ANY_USAGE = '2.5.29.37.0'
const MAX_DEPTH = 10

/** Every certificate of a PEM text; undefined when one does not parse. */
export function parseCertificates(pem: string): X509Certificate[] | undefined {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []
  try {
    return blocks.map((b) => new X509Certificate(b))
  } catch {
    return undefined
  }
}

const validAt = (c: X509Certificate, now: Date) => new Date(c.validFrom).getTime() <= now.getTime() && now.getTime() <= new Date(c.validTo).getTime()
/** Go treats a certificate without extended key usages as good for any. */
const codeSigning = (c: X509Certificate) => !c.keyUsage || c.keyUsage.includes(CODE_SIGNING) || c.keyUsage.includes(ANY_USAGE)
const issuedBy = (c: X509Certificate, issuer: X509Certificate) => c.checkIssued(issuer) && c.verify(issuer.publicKey)

/** Whether `current` chains to a root through `pool`, every link valid now and allowed to sign code. */
function chains(current: X509Certificate, trust: PkiTrust, pool: X509Certificate[], now: Date, depth = 0): boolean {
  if (depth > MAX_DEPTH) return false
  if (trust.roots.some((root) => validAt(root, now) && codeSigning(root) && issuedBy(current, root))) return true
  return pool.some((next) => next.ca && validAt(next, now) && codeSigning(next) && issuedBy(current, next) && chains(next, trust, pool.filter((c) => c !== next), now, depth + 1))
}

/** The subjectAltName entries of one kind (email, DNS, URI). */
function altNames(certificate: X509Certificate, kind: string): string[] {
  return (certificate.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith(`${kind}:`))
    .map((entry) => entry.slice(kind.length + 1))
    .map((value) => (value.startsWith('"') ? (JSON.parse(value) as string) : value))
}

/** Go's %q of a []string: ["a" "b"]. */
const goList = (values: string[]) => `[${values.map((v) => JSON.stringify(v)).join(' ')}]`

function hostnameProblem(leaf: X509Certificate, hostname: string): string | undefined {
  const ip = /^[0-9.]+$|:/.test(hostname)
  if (ip ? leaf.checkIP(hostname) : leaf.checkHost(hostname, {subject: 'never'})) return undefined
  const names = [...altNames(leaf, 'DNS'), ...altNames(leaf, 'IP Address')]
  return names.length === 0 ? `x509: certificate is not valid for any names, but wanted to match ${hostname}` : `x509: certificate is valid for ${names.join(', ')}, not ${hostname}`
}

/** The leaf's public key when the certificate passes, or the engine's reason for refusing it. */
export function pkiSigner(trust: PkiTrust, certificatePem: string | undefined, chainPem: string | undefined, now: Date = new Date()): {key: SigstoreKey} | {refused: string} {
  if (certificatePem === undefined) return {refused: 'missing dev.sigstore.cosign/certificate annotation'}
  const chain = chainPem === undefined ? [] : parseCertificates(chainPem)
  if (!chain) return {refused: 'loading certificate chain: the chain annotation does not parse as PEM certificates'}
  const leaves = parseCertificates(certificatePem)
  if (!leaves || leaves.length !== 1) return {refused: leaves?.length === 0 ? 'no certificate found in signature certificate data' : 'parsing leaf certificate: not exactly one PEM certificate'}
  const [leaf] = leaves
  const pool = [...trust.intermediates, ...chain.slice(0, -1)]
  if (!validAt(leaf, now)) return {refused: 'veryfing leaf certificate failed: x509: certificate has expired or is not yet valid'}
  if (!codeSigning(leaf)) return {refused: 'veryfing leaf certificate failed: x509: certificate specifies an incompatible key usage'}
  if (!chains(leaf, trust, pool, now)) return {refused: 'veryfing leaf certificate failed: x509: certificate signed by unknown authority'}
  if (trust.subjectEmail && !altNames(leaf, 'email').includes(trust.subjectEmail)) {
    return {refused: `Required email ${JSON.stringify(trust.subjectEmail)} not found (got ${goList(altNames(leaf, 'email'))})`}
  }

  const hostname = trust.subjectHostname ? hostnameProblem(leaf, trust.subjectHostname) : undefined
  if (hostname) return {refused: `Unexpected subject hostname: ${hostname}`}
  const subject = leaf.subject.split('\n').join(', ')
  return {key: {source: `certificate ${subject}`, fingerprint: leaf.fingerprint256.replaceAll(':', ''), key: leaf.publicKey}}
}
