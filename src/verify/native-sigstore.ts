import type {DockerReference} from '../policy/reference.js'
import type {PolicyRequirement} from '../policy/types.js'
import {RegistryUnreachable, type RegistryOptions} from '../registry/client.js'
import {attachmentTag, checkSigstoreAttachment, MalformedAttachment, fetchSigstoreAttachments, loadSigstoreKeys, type SigstoreAttachment, type SigstoreSignatureCheck} from '../sigstore/verify.js'
import {type PkiTrust, parseCertificates, pkiSigner} from '../sigstore/pki.js'
import {type IdentityVerdict, matchSignedIdentity} from './identity.js'

/**
 * One sigstoreSigned requirement, judged natively: the attachment manifest
 * from the registry, each signature verified with node:crypto against the
 * policy's PEM keys, then the signed identity per the policy's signedIdentity.
 * Shared by verify --native and audit.
 */
export type SigstoreRequirement = Extract<PolicyRequirement, {type: 'sigstoreSigned'}>

export interface SigstoreVerdict {
  outcome: 'accepted' | 'refused' | 'unknown'
  summary: string
  trustedKeys: string[]
  /** Where the signatures were looked for. */
  location: string
  signatures: Array<SigstoreSignatureCheck & {identity?: IdentityVerdict}>
}

export interface SigstoreJudgeInput {
  requirement: SigstoreRequirement
  /** The reference as pulled (pulledReference): identity is checked against it. */
  ref: DockerReference
  digest: string
  /** registries.d use-sigstore-attachments for this image. */
  attachmentsEnabled: boolean
  readKey: (hostPath: string) => Promise<Uint8Array | null>
  registry: RegistryOptions
  /** Attachments per repository@digest, shared across calls (audit reuses them). */
  cache?: Map<string, Promise<SigstoreAttachment[]>>
}

export function sigstoreKeySources(requirement: SigstoreRequirement): Array<{path?: string; data?: string}> {
  return [
    ...(requirement.keyPath ? [{path: requirement.keyPath}] : []),
    ...(requirement.keyPaths ?? []).map((p) => ({path: p})),
    ...(requirement.keyData ? [{data: requirement.keyData}] : []),
    ...(requirement.keyDatas ?? []).map((d) => ({data: d})),
  ]
}

type SignatureChecker = {trustedKeys: string[]; check: (a: SigstoreAttachment) => SigstoreSignatureCheck} | {problem: string}

/** What verifies each signature: the policy's public keys, or (pki) the signature's own certificate once the CA vouches for it. */
async function signatureChecker(input: SigstoreJudgeInput): Promise<SignatureChecker> {
  const {requirement, digest} = input
  const bytesOf = async (p: string | undefined, data: string | undefined) => (p ? {source: p, bytes: await input.readKey(p)} : {source: 'keyData', bytes: data === undefined ? null : new Uint8Array(Buffer.from(data, 'base64'))})
  if (requirement.pki) {
    const trust = await readPkiTrust(requirement.pki, bytesOf)
    if ('problem' in trust) return trust
    return {
      trustedKeys: trust.roots.map((c) => c.fingerprint256.replaceAll(':', '')),
      check: (a) => {
        const signer = pkiSigner(trust, a.certificate, a.chain)
        if ('key' in signer) return checkSigstoreAttachment(a, [signer.key], digest)
        if ('undecided' in signer) return {index: a.index, signer: 'unknown', trusted: false, valid: false, undecided: true, reasons: [...a.problems, signer.undecided]}
        return {index: a.index, signer: 'unknown', trusted: false, valid: false, reasons: [...a.problems, signer.refused]}
      },
    }
  }

  const loaded = loadSigstoreKeys(await Promise.all(sigstoreKeySources(requirement).map((s) => bytesOf(s.path, s.data))))
  if (loaded.keys.length === 0) return {problem: `no usable sigstore key: ${loaded.problems.join('; ')}`}
  return {trustedKeys: loaded.keys.map((k) => k.fingerprint), check: (a) => checkSigstoreAttachment(a, loaded.keys, digest)}
}

/** A pki block's CA certificates, read as the engine reads them (paths, or base64 data). */
async function readPkiTrust(pki: Record<string, string>, bytesOf: (p: string | undefined, data: string | undefined) => Promise<{source: string; bytes: Uint8Array | null}>): Promise<PkiTrust | {problem: string}> {
  const roots = await bytesOf(pki.caRootsPath || undefined, pki.caRootsData)
  const rootCerts = roots.bytes && parseCertificates(Buffer.from(roots.bytes).toString('utf8'))
  if (!rootCerts || rootCerts.length === 0) return {problem: `no usable CA roots: ${roots.bytes ? `${roots.source} holds no PEM certificate` : `${roots.source} does not exist`}`}
  const wanted = Boolean(pki.caIntermediatesPath) || pki.caIntermediatesData !== undefined
  const intermediates = wanted ? await bytesOf(pki.caIntermediatesPath || undefined, pki.caIntermediatesData) : undefined
  const intermediateCerts = intermediates?.bytes ? parseCertificates(Buffer.from(intermediates.bytes).toString('utf8')) : []
  if (intermediates && (!intermediates.bytes || !intermediateCerts)) return {problem: `no usable CA intermediates: ${intermediates.source} ${intermediates.bytes ? 'does not parse' : 'does not exist'}`}
  return {roots: rootCerts, intermediates: intermediateCerts ?? [], subjectEmail: pki.subjectEmail || undefined, subjectHostname: pki.subjectHostname || undefined}
}

export async function judgeSigstore(input: SigstoreJudgeInput): Promise<SigstoreVerdict> {
  const {requirement, ref, digest} = input
  const location = `${ref.domain}/${ref.path}:${attachmentTag(digest)}`
  const base = {location, trustedKeys: [] as string[], signatures: [] as SigstoreVerdict['signatures']}
  const extra = ['fulcio', 'rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas'].filter((k) => (requirement as unknown as Record<string, unknown>)[k] !== undefined)
  if (extra.length > 0) return {...base, outcome: 'unknown', summary: `sigstoreSigned with ${extra.join(', ')} is not checked natively (only public keys and pki are)`}
  const checker = await signatureChecker(input)
  if ('problem' in checker) return {...base, outcome: 'refused', summary: checker.problem}
  const {trustedKeys} = checker
  if (!input.attachmentsEnabled) {
    return {...base, trustedKeys, outcome: 'refused', summary: 'use-sigstore-attachments is not enabled in registries.d for this image: containers/image does not look for sigstore signatures'}
  }

  let attachments: SigstoreAttachment[]
  const key = `${ref.domain}/${ref.path}@${digest}`
  try {
    let pending = input.cache?.get(key)
    if (!pending) {
      pending = fetchSigstoreAttachments(ref.domain, ref.path, digest, input.registry)
      input.cache?.set(key, pending)
    }

    attachments = await pending
  } catch (error) {
    if (error instanceof RegistryUnreachable) return {...base, trustedKeys, outcome: 'unknown', summary: `cannot be known: ${error.message}`}
    // containers/image fails the pull on a manifest it cannot parse.
    if (error instanceof MalformedAttachment) return {...base, trustedKeys, outcome: 'refused', summary: `refused: ${error.message} (containers/image fails the pull)`}
    throw error
  }

  const signatures = attachments.map((a) => {
    const check: SigstoreVerdict['signatures'][number] = checker.check(a)
    if (check.valid) {
      check.identity = matchSignedIdentity(requirement.signedIdentity, ref, check.dockerReference ?? '')
      if (check.identity.verdict !== 'match') {
        check.valid = false
        check.reasons.push(`identity ${check.identity.verdict === 'mismatch' ? 'mismatch' : 'not evaluated'}: ${check.identity.reason}`)
      }
    }

    if (check.valid) check.reasons.push('valid')
    return check
  })
  const accepted = signatures.find((s) => s.valid)
  if (accepted) return {...base, trustedKeys, signatures, outcome: 'accepted', summary: `valid sigstore signature by ${accepted.signer}`}
  const undecided = signatures.filter((s) => s.undecided || s.identity?.verdict === 'unknown')
  if (undecided.length > 0) return {...base, trustedKeys, signatures, outcome: 'unknown', summary: `cannot be known: ${undecided.map((s) => `#${s.index} ${s.reasons.join('; ')}`).join(' | ')}`}
  if (signatures.length === 0) return {...base, trustedKeys, signatures, outcome: 'refused', summary: `no sigstore signature at ${location}`}
  return {...base, trustedKeys, signatures, outcome: 'refused', summary: `no valid sigstore signature by a trusted key: ${signatures.map((s) => `#${s.index} ${s.reasons.join('; ')}`).join(' | ')}`}
}
