
import {explainImage} from '../explain/explain.js'
import type {Capabilities} from '../host/capabilities.js'
import {capabilitiesOf, detectEngines} from '../host/detect.js'
import type {HostRoot} from '../host/paths.js'
import {readHostFile} from '../host/snapshot.js'
import {ImagetrustError} from '../lib/errors.js'
import type {DockerReference} from '../policy/reference.js'
import {newReject} from '../policy/requirements.js'
import type {PolicyRequirement} from '../policy/types.js'
import {checkSignature, type NativeSignature} from './gpg-signature.js'
import {pulledReference} from './identity.js'
import {judgeSigstore, type SigstoreRequirement} from './native-sigstore.js'
import {VERIFY_EXIT} from './verify.js'
import {manifestDigest, RegistryUnreachable as Unreachable} from '../registry/client.js'

/**
 * verify --native: an engine-independent look at an image's simple-signing
 * signatures. It reads the manifest digest from the registry, fetches
 * signature-1, -2, ... from the lookaside until the first 404, verifies each
 * with openpgp against the keys the policy names, and checks the signed
 * digest and docker-reference (identity.ts). A signature whose identity
 * cannot be evaluated makes the result inconclusive, never valid.
 */
export {checkSignature, type NativeSignature} from './gpg-signature.js'

export interface NativeReport {
  image: string
  digest: string
  scope: string | null
  lookaside: string
  trustedKeys: string[]
  signatures: NativeSignature[]
  accepted: boolean
  summary: string
  exitCode: number
}

// Registry and lookaside outages prove nothing either way: inconclusive, never refused.
export {RegistryUnreachable as Unreachable} from '../registry/client.js'

/** The manifest digest a pull of this reference gets today; a pinned digest the registry does not serve is an error. */
export async function fetchManifestDigest(ref: DockerReference, tlsVerify: boolean): Promise<string> {
  const digest = await manifestDigest(ref.domain, ref.path, ref.digest ?? ref.tag ?? 'latest', {tlsVerify})
  if (ref.digest && ref.digest !== digest) throw new ImagetrustError(`the registry served a manifest with digest ${digest}, not ${ref.digest}`)
  return digest
}

export async function fetchSignature(root: HostRoot, url: string): Promise<Uint8Array | null> {
  if (url.startsWith('file://')) {
    const file = await readHostFile(root, decodeURIComponent(new URL(url).pathname))
    return file.content ? new Uint8Array(file.content) : null
  }

  let response: Response
  try {
    response = await fetch(url, {signal: AbortSignal.timeout(30_000)})
  } catch (error) {
    throw new Unreachable(`the lookaside is unreachable: ${url}: ${(error as Error).cause ?? (error as Error).message}`)
  }

  if (response.status === 404) return null
  if (!response.ok) throw new Unreachable(`the lookaside answered HTTP ${response.status} for ${url}`)
  return new Uint8Array(await response.arrayBuffer())
}

async function trustedKeysOf(root: HostRoot, requirements: PolicyRequirement[]) {
  const openpgp = await import('openpgp')
  const keys = []
  for (const r of requirements) {
    if (r.type !== 'signedBy') continue
    for (const p of [...(r.keyPath ? [r.keyPath] : []), ...(r.keyPaths ?? [])]) {
      const file = await readHostFile(root, p)
      if (!file.content) continue
      const text = file.content.toString('utf8')
      const blocks = text.includes('-----BEGIN PGP') ? (text.match(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g) ?? []) : []
      if (blocks.length > 0) for (const block of blocks) keys.push(...(await openpgp.readKeys({armoredKeys: block})))
      else keys.push(...(await openpgp.readKeys({binaryKeys: new Uint8Array(file.content)})))
    }

    if (r.keyData) {
      // keyData holds a keyring, armored or binary, as containers/image reads either.
      const bytes = Buffer.from(r.keyData, 'base64')
      const text = bytes.toString('utf8')
      const read = text.includes('-----BEGIN PGP') ? openpgp.readKeys({armoredKeys: text}) : openpgp.readKeys({binaryKeys: new Uint8Array(bytes)})
      keys.push(...(await read.catch(() => [])))
    }
  }

  return keys
}

export {Unreachable as LookasideUnreachable}

export async function nativeVerify(root: HostRoot, image: string, options: {tlsVerify: boolean; capabilities?: Capabilities}): Promise<NativeReport> {
  const openpgp = await import('openpgp')
  // As the docker transport sees it: normalised, :latest added. Signatures are matched against this.
  const ref = pulledReference(image)
  if (typeof ref === 'string') throw new ImagetrustError(`invalid image reference "${image}": ${ref}`)
  const explained = await explainImage(root, image)
  const lookaside = String(explained.registriesD.lookaside.value)
  const base = {image, scope: explained.policy.scope, lookaside}
  const requirements = explained.policy.requirements
  const sigstore = requirements.filter((r) => r.type === 'sigstoreSigned')
  if (sigstore.length === 1 && requirements.every((r) => r.type === 'sigstoreSigned' || r.type === 'insecureAcceptAnything')) {
    return nativeSigstore(root, explained, ref, sigstore[0] as SigstoreRequirement, options.tlsVerify)
  }

  const signedBy = requirements.find((r) => r.type === 'signedBy') as Extract<PolicyRequirement, {type: 'signedBy'}> | undefined
  // Requirements are ANDed. This checks one GPG signedBy; anything else it cannot vouch for.
  const unchecked = requirements.filter((r) => r !== signedBy && r.type !== 'insecureAcceptAnything')
  // containers/image evaluates only GPGKeys; any other keyType refuses every image.
  if (signedBy && signedBy.keyType !== 'GPGKeys') unchecked.push(newReject())
  if (unchecked.length > 0) {
    const rejects = unchecked.some((r) => r.type === 'reject')
    const summary = rejects
      ? `the policy scope ${explained.policy.scope ?? '(default)'} rejects every image (reject)`
      : `inconclusive: the policy scope ${explained.policy.scope ?? '(default)'} also requires ${unchecked.map((r) => r.type).join(', ')}, which --native does not check`
    return {...base, digest: '', trustedKeys: [], signatures: [], accepted: false, summary, exitCode: rejects ? VERIFY_EXIT.failed : VERIFY_EXIT.inconclusive}
  }

  const trusted = await trustedKeysOf(root, explained.policy.requirements)
  const capabilities = options.capabilities ?? capabilitiesOf(await detectEngines())
  const trustedKeys = trusted.map((k) => k.getFingerprint().toUpperCase())
  let digest: string
  try {
    digest = await fetchManifestDigest(ref, options.tlsVerify)
  } catch (error) {
    if (!(error instanceof Unreachable)) throw error
    return {...base, digest: '', trustedKeys, signatures: [], accepted: false, summary: `inconclusive: ${error.message}`, exitCode: VERIFY_EXIT.inconclusive}
  }

  const signatures: NativeSignature[] = []
  try {
    for (let index = 1; index <= 128; index++) {
      const url = `${lookaside}/${ref.path}@${digest.replace(':', '=')}/signature-${index}`
      const bytes = await fetchSignature(root, url)
      if (!bytes) break
      signatures.push(await checkSignature(openpgp, {index, url, bytes, trusted, digest, ref, identity: signedBy?.signedIdentity, subkeySignatures: capabilities.subkeySignatures}))
    }
  } catch (error) {
    if (!(error instanceof Unreachable)) throw error
    return {...base, digest, trustedKeys, signatures, accepted: false, summary: `inconclusive: ${error.message}`, exitCode: VERIFY_EXIT.inconclusive}
  }

  const accepted = signatures.some((s) => s.valid)
  const undecided = signatures.filter((s) => s.inconclusive)
  let summary: string
  let exitCode: number = VERIFY_EXIT.failed
  if (!signedBy) summary = `the policy scope ${explained.policy.scope ?? '(default)'} accepts any image, signed or not (insecureAcceptAnything)`
  else if (signatures.length === 0) summary = `no signature found at ${lookaside}/${ref.path}@${digest.replace(':', '=')}/`
  else if (accepted) summary = `valid signature by ${signatures.find((s) => s.valid)!.signer}`
  else if (undecided.length > 0) {
    // A signature that may satisfy the policy, unchecked: neither accepted nor refused.
    summary = `inconclusive: ${undecided.map((s) => `#${s.index} ${s.reasons.join('; ')}`).join(' | ')}`
    exitCode = VERIFY_EXIT.inconclusive
  } else summary = `no valid signature by a trusted key: ${signatures.map((s) => `#${s.index} ${s.reasons.join('; ')}`).join(' | ')}`
  if (accepted || !signedBy) exitCode = VERIFY_EXIT.confirmed
  return {...base, digest, trustedKeys, signatures, accepted, summary, exitCode}
}

/** A lone sigstoreSigned requirement: the registry's sha256-<digest>.sig attachment, checked with node:crypto. */
async function nativeSigstore(root: HostRoot, explained: Awaited<ReturnType<typeof explainImage>>, ref: DockerReference, requirement: SigstoreRequirement, tlsVerify: boolean): Promise<NativeReport> {
  const base = {image: explained.image, scope: explained.policy.scope}
  let digest: string
  try {
    digest = await fetchManifestDigest(ref, tlsVerify)
  } catch (error) {
    if (!(error instanceof Unreachable)) throw error
    return {...base, lookaside: '', digest: '', trustedKeys: [], signatures: [], accepted: false, summary: `inconclusive: ${error.message}`, exitCode: VERIFY_EXIT.inconclusive}
  }

  const verdict = await judgeSigstore({
    requirement,
    ref,
    digest,
    attachmentsEnabled: explained.registriesD.sigstoreAttachments.value === true,
    readKey: async (p) => (await readHostFile(root, p)).content,
    registry: {tlsVerify},
  })
  const signatures: NativeSignature[] = verdict.signatures.map((s) => ({
    index: s.index,
    url: verdict.location,
    signer: s.signer,
    trusted: s.trusted,
    valid: s.valid,
    inconclusive: s.identity?.verdict === 'unknown',
    reasons: s.reasons,
    identity: s.identity,
    dockerReference: s.dockerReference,
    manifestDigest: s.manifestDigest,
  }))
  const exitCode = verdict.outcome === 'accepted' ? VERIFY_EXIT.confirmed : verdict.outcome === 'unknown' ? VERIFY_EXIT.inconclusive : VERIFY_EXIT.failed
  const summary = verdict.outcome === 'unknown' ? `inconclusive: ${verdict.summary}` : verdict.summary
  return {...base, lookaside: verdict.location, digest, trustedKeys: verdict.trustedKeys, signatures, accepted: verdict.outcome === 'accepted', summary, exitCode}
}
