
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
import {BodyTooLarge, manifestDigest, type RegistryOptions, RegistryUnreachable as Unreachable} from '../registry/client.js'
import {discardBody, httpGet, readBody} from '../registry/http.js'
import {type Budget, deadline, SIGNATURE_LIMIT} from '../registry/limits.js'

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
export async function fetchManifestDigest(ref: DockerReference, registry: RegistryOptions): Promise<string> {
  const digest = await manifestDigest(ref.domain, ref.path, ref.digest ?? ref.tag ?? 'latest', registry)
  if (ref.digest && ref.digest !== digest) throw new ImagetrustError(`the registry served a manifest with digest ${digest}, not ${ref.digest}`)
  return digest
}

/** signature-N from the lookaside, within the deadline and containers/image's 4 MiB signature limit; null at 404. */
export async function fetchSignature(root: HostRoot, url: string, budget: Budget): Promise<Uint8Array | null> {
  if (url.startsWith('file://')) {
    const file = await readHostFile(root, decodeURIComponent(new URL(url).pathname))
    if (file.content && file.content.length > SIGNATURE_LIMIT.bytes) throw new BodyTooLarge(`${url} is larger than 4 MiB, containers/image's limit (${SIGNATURE_LIMIT.name})`)
    return file.content ? new Uint8Array(file.content) : null
  }

  const response = await httpGet(url, {}, budget, 'the lookaside')
  if (!response.ok) await discardBody(response)
  if (response.status === 404) return null
  if (!response.ok) throw new Unreachable(`the lookaside answered HTTP ${response.status} for ${url}`)
  return readBody(response, SIGNATURE_LIMIT, 'the signature', budget, 'the lookaside')
}

/** containers/image (docker_image_src.go) reads at most this many; with signature-128 present the pull fails. */
export const MAX_LOOKASIDE_SIGNATURES = 128

/** signature-1, -2, ... from <dir>/ until the first missing one; as many as containers/image reads, or Unreachable. */
export async function lookasideSignatures(root: HostRoot, dir: string, budget: Budget): Promise<Uint8Array[]> {
  const found: Uint8Array[] = []
  for (let index = 1; ; index++) {
    if (index > MAX_LOOKASIDE_SIGNATURES) {
      throw new Unreachable(`the lookaside serves ${MAX_LOOKASIDE_SIGNATURES} signatures or more at ${dir}/: containers/image takes that for a server error and fails the pull`)
    }

    const bytes = await fetchSignature(root, `${dir}/signature-${index}`, budget)
    if (!bytes) return found
    found.push(bytes)
  }
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

/** The verdict on a signedBy scope's signatures: one valid signature accepts; an undecided one makes it inconclusive. */
function gpgVerdict(signatures: NativeSignature[], signedBy: boolean, scope: string | null, where: string): {accepted: boolean; summary: string; exitCode: number} {
  const accepted = signatures.some((s) => s.valid)
  const undecided = signatures.filter((s) => s.inconclusive)
  const list = (l: NativeSignature[]) => l.map((s) => `#${s.index} ${s.reasons.join('; ')}`).join(' | ')
  if (!signedBy) return {accepted, summary: `the policy scope ${scope ?? '(default)'} accepts any image, signed or not (insecureAcceptAnything)`, exitCode: VERIFY_EXIT.confirmed}
  if (accepted) return {accepted, summary: `valid signature by ${signatures.find((s) => s.valid)!.signer}`, exitCode: VERIFY_EXIT.confirmed}
  if (signatures.length === 0) return {accepted, summary: `no signature found at ${where}`, exitCode: VERIFY_EXIT.failed}
  // A signature that may satisfy the policy, unchecked: neither accepted nor refused.
  if (undecided.length > 0) return {accepted, summary: `inconclusive: ${list(undecided)}`, exitCode: VERIFY_EXIT.inconclusive}
  return {accepted, summary: `no valid signature by a trusted key: ${list(signatures)}`, exitCode: VERIFY_EXIT.failed}
}

export async function nativeVerify(root: HostRoot, image: string, options: {tlsVerify: boolean; capabilities?: Capabilities; timeoutSeconds?: number}): Promise<NativeReport> {
  // One deadline for every fetch of this check (--timeout), not one per fetch.
  const registry: RegistryOptions = {tlsVerify: options.tlsVerify, budget: deadline(options.timeoutSeconds)}
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
    return nativeSigstore(root, explained, ref, sigstore[0] as SigstoreRequirement, registry)
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
    digest = await fetchManifestDigest(ref, registry)
  } catch (error) {
    if (!(error instanceof Unreachable)) throw error
    return {...base, digest: '', trustedKeys, signatures: [], accepted: false, summary: `inconclusive: ${error.message}`, exitCode: VERIFY_EXIT.inconclusive}
  }

  const dir = `${lookaside}/${ref.path}@${digest.replace(':', '=')}`
  const signatures: NativeSignature[] = []
  try {
    for (const [i, bytes] of (await lookasideSignatures(root, dir, registry.budget)).entries()) {
      signatures.push(await checkSignature(openpgp, {index: i + 1, url: `${dir}/signature-${i + 1}`, bytes, trusted, digest, ref, identity: signedBy?.signedIdentity, subkeySignatures: capabilities.subkeySignatures, noEdDsaKeys: capabilities.noEdDsaKeys}))
    }
  } catch (error) {
    if (!(error instanceof Unreachable)) throw error
    return {...base, digest, trustedKeys, signatures, accepted: false, summary: `inconclusive: ${error.message}`, exitCode: VERIFY_EXIT.inconclusive}
  }

  const {accepted, summary, exitCode} = gpgVerdict(signatures, signedBy !== undefined, explained.policy.scope, `${dir}/`)
  return {...base, digest, trustedKeys, signatures, accepted, summary, exitCode}
}

/** A lone sigstoreSigned requirement: the registry's sha256-<digest>.sig attachment, checked with node:crypto. */
async function nativeSigstore(root: HostRoot, explained: Awaited<ReturnType<typeof explainImage>>, ref: DockerReference, requirement: SigstoreRequirement, registry: RegistryOptions): Promise<NativeReport> {
  const base = {image: explained.image, scope: explained.policy.scope}
  let digest: string
  try {
    digest = await fetchManifestDigest(ref, registry)
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
    registry,
  })
  const signatures: NativeSignature[] = verdict.signatures.map((s) => ({
    index: s.index,
    url: verdict.location,
    signer: s.signer,
    trusted: s.trusted,
    valid: s.valid,
    inconclusive: s.undecided === true || s.identity?.verdict === 'unknown',
    reasons: s.reasons,
    identity: s.identity,
    dockerReference: s.dockerReference,
    manifestDigest: s.manifestDigest,
  }))
  const exitCode = verdict.outcome === 'accepted' ? VERIFY_EXIT.confirmed : verdict.outcome === 'unknown' ? VERIFY_EXIT.inconclusive : VERIFY_EXIT.failed
  const summary = verdict.outcome === 'unknown' ? `inconclusive: ${verdict.summary}` : verdict.summary
  return {...base, lookaside: verdict.location, digest, trustedKeys: verdict.trustedKeys, signatures, accepted: verdict.outcome === 'accepted', summary, exitCode}
}
