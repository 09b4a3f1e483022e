import {type KeyObject, createHash, createPublicKey, verify as cryptoVerify} from 'node:crypto'

import {readSimplePayload, SIGSTORE_SIGNING_TYPE} from '../lib/signature-payload.js'
import {registryGet, type RegistryOptions, sha256Digest} from '../registry/client.js'

/**
 * Native sigstore (cosign-style) signature checks, for hosts whose
 * containers/image cannot verify them (Debian disables it). The signatures
 * are the layers of the OCI manifest tagged `sha256-<hex>.sig` in the image's
 * repository; each layer blob is a simple-signing payload and its
 * `dev.cosignproject.cosign/signature` annotation the base64 signature over
 * those bytes. This module checks the cryptography and the payload; the
 * caller checks the signed identity against the policy (verify/identity.ts).
 */
export const SIGSTORE_PAYLOAD_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate'
const CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

export interface SigstoreAttachment {
  index: number
  layerDigest: string
  payload: Uint8Array
  /** Base64, as in the annotation. */
  signature: string
  /** dev.sigstore.cosign/certificate and dev.sigstore.cosign/chain (PEM): the signer's certificate for pki and Fulcio. */
  certificate?: string
  chain?: string
  problems: string[]
}

export interface SigstoreKey {
  source: string
  fingerprint: string
  key: KeyObject
}

export interface SigstoreSignatureCheck {
  index: number
  /** The trusted key that verifies it (SHA-256 of its SPKI), or "unknown". */
  signer: string
  /** A trusted key verifies the signature over the payload. */
  trusted: boolean
  /** Cryptography and payload hold; the identity is the caller's to judge. */
  valid: boolean
  dockerReference?: string
  manifestDigest?: string
  reasons: string[]
  /** Whether the engine accepts it cannot be known here (a certificate constraint not checked natively). */
  undecided?: boolean
}

export function attachmentTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`
}

/** The registry served an attachment manifest containers/image cannot parse: the pull fails, whatever the signatures. */
export class MalformedAttachment extends Error {}

interface AttachmentLayer {
  mediaType?: string
  digest?: string
  annotations?: Record<string, string>
}

const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v)
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** One element of "layers", typed as Go's json.Unmarshal into an OCI descriptor would have it (null is a zero descriptor). */
function attachmentLayer(value: unknown, where: string): AttachmentLayer {
  if (value === null) return {}
  if (!isObject(value)) throw new MalformedAttachment(`${where} is ${kindOf(value)}, not an object`)
  for (const field of ['mediaType', 'digest'] as const) {
    if (value[field] !== undefined && value[field] !== null && typeof value[field] !== 'string') throw new MalformedAttachment(`${where}.${field} is ${kindOf(value[field])}, not a string`)
  }

  const annotations = value.annotations ?? undefined
  if (annotations !== undefined && annotations !== null) {
    if (!isObject(annotations)) throw new MalformedAttachment(`${where}.annotations is ${kindOf(annotations)}, not an object`)
    const bad = Object.entries(annotations).find(([, v]) => typeof v !== 'string' && v !== null)
    if (bad) throw new MalformedAttachment(`${where}.annotations["${bad[0]}"] is ${kindOf(bad[1])}, not a string`)
  }

  return value as AttachmentLayer
}

/** The manifest's layers, or MalformedAttachment naming what is wrong and where. */
export function attachmentLayers(body: Uint8Array, where: string): AttachmentLayer[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(body).toString('utf8'))
  } catch (error) {
    throw new MalformedAttachment(`${where}: the attachment manifest is not JSON: ${(error as Error).message}`)
  }

  if (parsed === null) return []
  if (!isObject(parsed)) throw new MalformedAttachment(`${where}: the attachment manifest is ${kindOf(parsed)}, not a JSON object`)
  const layers = parsed.layers ?? []
  if (!Array.isArray(layers)) throw new MalformedAttachment(`${where}: "layers" is ${kindOf(layers)}, not an array`)
  return layers.map((layer, i) => attachmentLayer(layer, `${where}: layers[${i}]`))
}

/** The attachment manifest's signature layers; [] when the image has none. */
export async function fetchSigstoreAttachments(domain: string, repo: string, digest: string, options: RegistryOptions): Promise<SigstoreAttachment[]> {
  const manifest = await registryGet(domain, repo, 'manifests', attachmentTag(digest), {...options, accept: OCI_MANIFEST})
  if (!manifest) return []
  const out: SigstoreAttachment[] = []
  let index = 0
  for (const layer of attachmentLayers(manifest.body, `${domain}/${repo}:${attachmentTag(digest)}`)) {
    // Attestations and other attachments are skipped, as containers/image does.
    if (layer.mediaType !== SIGSTORE_PAYLOAD_TYPE || !layer.digest) continue
    index++
    const problems: string[] = []
    const blob = await registryGet(domain, repo, 'blobs', layer.digest, options)
    const payload = blob?.body ?? new Uint8Array()
    if (!blob) problems.push(`the payload blob ${layer.digest} is missing from the registry`)
    else if (sha256Digest(payload) !== layer.digest) problems.push(`the payload does not match its digest ${layer.digest}`)
    const signature = layer.annotations?.[SIGNATURE_ANNOTATION] ?? ''
    if (!signature) problems.push(`the layer has no ${SIGNATURE_ANNOTATION} annotation`)
    const certificate = layer.annotations?.[CERTIFICATE_ANNOTATION] ?? undefined
    const chain = layer.annotations?.[CHAIN_ANNOTATION] ?? undefined
    out.push({index, layerDigest: layer.digest, payload, signature, ...(certificate ? {certificate} : {}), ...(chain ? {chain} : {}), problems})
  }

  return out
}

/** PEM public keys as the policy names them (keyPath(s), keyData(s)); unreadable ones are reported, not thrown. */
export function loadSigstoreKeys(sources: Array<{source: string; bytes: Uint8Array | null}>): {keys: SigstoreKey[]; problems: string[]} {
  const keys: SigstoreKey[] = []
  const problems: string[] = []
  for (const {source, bytes} of sources) {
    if (!bytes) {
      problems.push(`${source} does not exist`)
      continue
    }

    try {
      const key = createPublicKey({key: Buffer.from(bytes).toString('utf8'), format: 'pem'})
      const fingerprint = createHash('sha256').update(key.export({type: 'spki', format: 'der'})).digest('hex').toUpperCase()
      keys.push({source, fingerprint, key})
    } catch (error) {
      problems.push(`${source} is not a PEM public key: ${(error as Error).message}`)
    }
  }

  return {keys, problems}
}

/** sigstore's LoadVerifier(key, SHA256): ECDSA (ASN.1) and RSA PKCS#1 v1.5 over SHA-256, Ed25519 over the bytes. */
function verifiesWith(key: KeyObject, payload: Uint8Array, signature: Buffer): boolean {
  try {
    const algorithm = key.asymmetricKeyType === 'ed25519' ? null : 'sha256'
    return cryptoVerify(algorithm, payload, key, signature)
  } catch {
    return false
  }
}

/**
 * containers/image's order: the signature must verify with a trusted key
 * before the payload is even parsed; then the payload must be a cosign
 * simple-signing document for this manifest digest.
 */
export function checkSigstoreAttachment(attachment: SigstoreAttachment, keys: SigstoreKey[], digest: string): SigstoreSignatureCheck {
  const out: SigstoreSignatureCheck = {index: attachment.index, signer: 'unknown', trusted: false, valid: false, reasons: [...attachment.problems]}
  if (out.reasons.length > 0) return out
  const signature = Buffer.from(attachment.signature, 'base64')
  const signer = keys.find((k) => verifiesWith(k.key, attachment.payload, signature))
  if (!signer) {
    out.reasons.push(keys.length === 0 ? 'the policy names no usable sigstore key' : `no trusted key verifies the signature (tried ${keys.map((k) => k.fingerprint.slice(0, 16)).join(', ')}): another key made it, or the payload was changed`)
    return out
  }

  out.signer = signer.fingerprint
  out.trusted = true
  const payload = readSimplePayload(Buffer.from(attachment.payload).toString('utf8'), SIGSTORE_SIGNING_TYPE)
  if ('refused' in payload) {
    out.reasons.push(payload.refused)
    return out
  }

  out.manifestDigest = payload.dockerManifestDigest
  out.dockerReference = payload.dockerReference
  if (out.manifestDigest !== digest) out.reasons.push(`signed manifest digest ${out.manifestDigest} is not the image's ${digest}`)
  out.valid = out.reasons.length === 0
  return out
}
