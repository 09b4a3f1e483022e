import {X509Certificate} from 'node:crypto'

import type {SigstoreKey} from './verify.js'
import {certificateExtensions, pathLength} from './x509-extensions.js'

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
const BASIC_CONSTRAINTS = '2.5.29.19'

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

/** Go's x509: an issuer with a path length allows at most that many intermediates below it. */
function allowsDepth(issuer: X509Certificate, intermediatesBelow: number): boolean {
  const basic = certificateExtensions(issuer.raw)?.find((e) => e.oid === BASIC_CONSTRAINTS)
  const limit = basic ? pathLength(basic.value) : undefined
  return limit === undefined || intermediatesBelow <= limit // NaN (unreadable) allows nothing
}

interface ChainSearch {
  trust: PkiTrust
  now: Date
  /** A link refused only for its path length, for the reason Go gives. */
  tooDeep: boolean
}

/** The certificates from `current`'s issuer up to a root, through `pool`, every link valid now, allowed to sign code and within path lengths; undefined when none. */
function chainPath(current: X509Certificate, pool: X509Certificate[], search: ChainSearch, depth = 0): X509Certificate[] | undefined {
  if (depth > MAX_DEPTH) return undefined
  const {trust, now} = search
  const fits = (issuer: X509Certificate) => {
    if (allowsDepth(issuer, depth)) return true
    search.tooDeep = true
    return false
  }

  const root = trust.roots.find((r) => validAt(r, now) && codeSigning(r) && issuedBy(current, r) && fits(r))
  if (root) return [root]
  for (const next of pool) {
    if (!(next.ca && validAt(next, now) && codeSigning(next) && issuedBy(current, next) && fits(next))) continue
    const rest = chainPath(next, pool.filter((c) => c !== next), search, depth + 1)
    if (rest) return [next, ...rest]
  }

  return undefined
}

/** Extensions this check evaluates as Go does (key and extended key usage, the CA flag, names, key ids). */
const EVALUATED = new Set(['2.5.29.15', BASIC_CONSTRAINTS, '2.5.29.17', '2.5.29.37', '2.5.29.14', '2.5.29.35'])
/** Constraints Go's x509.Verify enforces and this check does not evaluate: name and policy constraints, inhibitAnyPolicy. */
const NOT_EVALUATED: Record<string, string> = {'2.5.29.30': 'name constraints', '2.5.29.36': 'policy constraints', '2.5.29.54': 'inhibitAnyPolicy'}

/**
 * What on a chain containers/image would weigh and this check does not (name
 * or policy constraints, an unknown critical extension):
 * the verdict then cannot be known here, rather than a false accept.
 */
function unevaluatedConstraint(chain: X509Certificate[]): string | undefined {
  for (const certificate of chain) {
    const extensions = certificateExtensions(certificate.raw)
    const subject = certificate.subject.split('\n').join(', ')
    if (!extensions) return `certificate ${subject} cannot be read`
    for (const extension of extensions) {
      const named = NOT_EVALUATED[extension.oid]
      if (named) return `certificate ${subject} has ${named}`
      if (extension.critical && !EVALUATED.has(extension.oid)) return `certificate ${subject} has a critical extension ${extension.oid}`
    }
  }

  return undefined
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
export function pkiSigner(
  trust: PkiTrust,
  certificatePem: string | undefined,
  chainPem: string | undefined,
  now: Date = new Date(),
): {key: SigstoreKey} | {refused: string} | {undecided: string} {
  if (certificatePem === undefined) return {refused: 'missing dev.sigstore.cosign/certificate annotation'}
  const carried = chainPem === undefined ? [] : parseCertificates(chainPem)
  if (!carried) return {refused: 'loading certificate chain: the chain annotation does not parse as PEM certificates'}
  const leaves = parseCertificates(certificatePem)
  if (!leaves || leaves.length !== 1) return {refused: leaves?.length === 0 ? 'no certificate found in signature certificate data' : 'parsing leaf certificate: not exactly one PEM certificate'}
  const [leaf] = leaves
  const pool = [...trust.intermediates, ...carried.slice(0, -1)]
  if (!validAt(leaf, now)) return {refused: 'veryfing leaf certificate failed: x509: certificate has expired or is not yet valid'}
  if (!codeSigning(leaf)) return {refused: 'veryfing leaf certificate failed: x509: certificate specifies an incompatible key usage'}
  const search: ChainSearch = {trust, now, tooDeep: false}
  const chain = chainPath(leaf, pool, search)
  if (!chain) return {refused: `veryfing leaf certificate failed: x509: ${search.tooDeep ? 'too many intermediates for path length constraint' : 'certificate signed by unknown authority'}`}
  const unevaluated = unevaluatedConstraint([leaf, ...chain])
  if (unevaluated) return {undecided: `${unevaluated}, which containers/image enforces and --native does not check`}
  if (trust.subjectEmail && !altNames(leaf, 'email').includes(trust.subjectEmail)) {
    return {refused: `Required email ${JSON.stringify(trust.subjectEmail)} not found (got ${goList(altNames(leaf, 'email'))})`}
  }

  const hostname = trust.subjectHostname ? hostnameProblem(leaf, trust.subjectHostname) : undefined
  if (hostname) return {refused: `Unexpected subject hostname: ${hostname}`}
  const subject = leaf.subject.split('\n').join(', ')
  return {key: {source: `certificate ${subject}`, fingerprint: leaf.fingerprint256.replaceAll(':', ''), key: leaf.publicKey}}
}
