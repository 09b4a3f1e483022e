import type {DockerReference} from '../policy/reference.js'
import type {PolicyRequirement} from '../policy/types.js'
import {RegistryUnreachable, type RegistryOptions} from '../registry/client.js'
import {attachmentTag, checkSigstoreAttachment, MalformedAttachment, fetchSigstoreAttachments, loadSigstoreKeys, type SigstoreAttachment, type SigstoreSignatureCheck} from '../sigstore/verify.js'
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

export async function judgeSigstore(input: SigstoreJudgeInput): Promise<SigstoreVerdict> {
  const {requirement, ref, digest} = input
  const location = `${ref.domain}/${ref.path}:${attachmentTag(digest)}`
  const base = {location, trustedKeys: [] as string[], signatures: [] as SigstoreVerdict['signatures']}
  const extra = ['fulcio', 'pki', 'rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas'].filter((k) => (requirement as unknown as Record<string, unknown>)[k] !== undefined)
  if (extra.length > 0) return {...base, outcome: 'unknown', summary: `sigstoreSigned with ${extra.join(', ')} is not checked natively (only public keys are)`}
  const sources = sigstoreKeySources(requirement)
  const loaded = loadSigstoreKeys(
    await Promise.all(sources.map(async (s) => (s.path ? {source: s.path, bytes: await input.readKey(s.path)} : {source: 'keyData', bytes: new Uint8Array(Buffer.from(s.data!, 'base64'))}))),
  )
  const trustedKeys = loaded.keys.map((k) => k.fingerprint)
  if (loaded.keys.length === 0) return {...base, outcome: 'refused', summary: `no usable sigstore key: ${loaded.problems.join('; ')}`}
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
    const check: SigstoreVerdict['signatures'][number] = checkSigstoreAttachment(a, loaded.keys, digest)
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
  const undecided = signatures.filter((s) => s.identity?.verdict === 'unknown')
  if (undecided.length > 0) return {...base, trustedKeys, signatures, outcome: 'unknown', summary: `cannot be known: ${undecided.map((s) => `#${s.index} ${s.reasons.join('; ')}`).join(' | ')}`}
  if (signatures.length === 0) return {...base, trustedKeys, signatures, outcome: 'refused', summary: `no sigstore signature at ${location}`}
  return {...base, trustedKeys, signatures, outcome: 'refused', summary: `no valid sigstore signature by a trusted key: ${signatures.map((s) => `#${s.index} ${s.reasons.join('; ')}`).join(' | ')}`}
}
