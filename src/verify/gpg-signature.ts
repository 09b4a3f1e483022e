import type {Key, Message} from 'openpgp'

import {readSimplePayload} from '../lib/signature-payload.js'
import type {DockerReference} from '../policy/reference.js'
import type {SignedIdentity} from '../policy/types.js'
import {MAX_SIGNATURE_BODY} from '../registry/limits.js'
import {isWeakEdDsaHashError, verifyLegacyEdDsa} from './eddsa-weak-hash.js'
import {type IdentityVerdict, matchSignedIdentity} from './identity.js'


/**
 * One simple-signing signature, judged as the engines here judge it:
 * containers/image's gpgme mechanism (signature/mechanism_gpgme.go) then
 * signature/simple.go. gpg must find exactly one signature, good, by a key
 * that is valid now (neither expired nor revoked), and the payload must parse
 * strictly. Unlike openpgp.js's defaults, gpg takes SHA-1 message signatures
 * and signatures dated in the future.
 */
export interface NativeSignature {
  index: number
  url: string
  /** Fingerprint (or key ID) of the key that made it, as the signature says. */
  signer: string
  /** The policy names this key (or its primary key). */
  trusted: boolean
  valid: boolean
  /** Everything else holds, but the signed identity could not be evaluated. */
  inconclusive: boolean
  reasons: string[]
  /** The signedIdentity check, once the signature itself verified. */
  identity?: IdentityVerdict
  dockerReference?: string
  manifestDigest?: string
}

export interface SignatureInput {
  index: number
  url: string
  bytes: Uint8Array
  trusted: Key[]
  digest: string
  ref: DockerReference
  identity?: SignedIdentity
  /** The engines accept signatures by a signing subkey (containers/image 5.37+); unknown: assume not. */
  subkeySignatures?: boolean
  /** An engine here reads keys with golang.org/x/crypto/openpgp (no EdDSA): it names that engine. */
  noEdDsaKeys?: string
}

type OpenPGP = typeof import('openpgp')

/** gpg's own limits, not openpgp.js's stricter defaults; decompression stops at the signature size limit. */
function gpgLikeConfig(openpgp: OpenPGP) {
  return {
    maxDecompressedMessageSize: MAX_SIGNATURE_BODY,
    rejectMessageHashAlgorithms: new Set([openpgp.enums.hash.md5]),
    rejectHashAlgorithms: new Set([openpgp.enums.hash.md5]),
    minRSABits: 1024,
  }
}

const plainError = (error: unknown) => {
  const message = (error as Error).message
  return /Maximum decompressed message size exceeded/.test(message) ? `it decompresses to more than ${MAX_SIGNATURE_BODY / 1024 / 1024} MiB (the signature size limit)` : message
}

interface Verified {
  data: string
  primary: Key
  keyID: import('openpgp').KeyID
  bySubkey: boolean
}

/** gpg reads binary, ASCII-armored and clear-signed messages alike. */
async function readSigned(openpgp: OpenPGP, bytes: Uint8Array, config: ReturnType<typeof gpgLikeConfig>) {
  // A binary OpenPGP packet starts with its high bit set; anything else gpg tries as armor.
  const text = bytes.length > 0 && (bytes[0] & 0x80) === 0 ? Buffer.from(bytes).toString('utf8') : undefined
  if (text?.includes('-----BEGIN PGP SIGNED MESSAGE-----')) return openpgp.readCleartextMessage({cleartextMessage: text, config})
  if (text?.includes('-----BEGIN PGP MESSAGE-----')) return openpgp.readMessage({armoredMessage: text, config})
  return openpgp.readMessage({binaryMessage: bytes, config})
}

interface PacketLike {
  constructor: {tag: number}
  packets?: Iterable<PacketLike>
}

/**
 * The signatures gpg counts: signature and one-pass signature packets up to
 * the first literal data, inside compressed packets too. openpgp.js keeps only
 * the first compressed packet's contents, so a bare signature packet in front
 * of a signed message escapes its count; gpg's count of 2 refuses it.
 */
function signaturesBeforeData(packets: Iterable<PacketLike>): {count: number; data: boolean} {
  let count = 0
  for (const packet of packets) {
    const tag = packet.constructor.tag
    if (tag === 11) return {count, data: true}
    if (tag === 2 || tag === 4) count++
    if (tag === 8 && packet.packets) {
      const inner = signaturesBeforeData(packet.packets)
      count += inner.count
      if (inner.data) return {count, data: true}
    }
  }

  return {count, data: false}
}

/** The cryptographic part, as gpgme reports it; undefined (with reasons in out) when it fails. */
async function verifyMessage(openpgp: OpenPGP, input: SignatureInput, out: NativeSignature): Promise<Verified | undefined> {
  const config = gpgLikeConfig(openpgp)
  let message
  let result
  try {
    message = await readSigned(openpgp, input.bytes, config)
    // date null: creation time is not compared with now (gpg accepts a signature dated in the future).
    result = await openpgp.verify({message: message as Message<string>, verificationKeys: input.trusted, expectSigned: false, date: null as unknown as Date, config})
  } catch (error) {
    out.reasons.push(`cannot read the signature: ${plainError(error)}`)
    return undefined
  }

  const count = 'packets' in message ? Math.max(result.signatures.length, signaturesBeforeData(message.packets as unknown as Iterable<PacketLike>).count) : result.signatures.length
  if (count !== 1 || result.signatures.length !== 1) {
    out.reasons.push(count === 0 ? 'the message carries no signature' : `Unexpected GPG signature count ${count}: containers/image accepts exactly one`)
    return undefined
  }

  const [only] = result.signatures
  const packet = (await only.signature).packets[0]
  out.signer = packet.issuerFingerprint ? Buffer.from(packet.issuerFingerprint).toString('hex').toUpperCase() : only.keyID.toHex().toUpperCase()
  const primary = input.trusted.find((k) => k.getKeys(only.keyID).length > 0)
  out.trusted = primary !== undefined
  if (!primary) {
    out.reasons.push(`signed by key ${out.signer}, which the policy does not name`)
    return undefined
  }

  const failure = await only.verified.then(
    () => undefined,
    async (error: unknown) => (isWeakEdDsaHashError(error) && 'unwrapCompressed' in message && (await verifyLegacyEdDsa(message, packet, primary, only.keyID)) ? undefined : plainError(error)),
  )
  if (failure) {
    out.reasons.push(`the signature does not verify: ${failure}`)
    return undefined
  }

  const expires = packet.getExpirationTime()
  if (expires !== Infinity && Date.now() >= Number(expires)) {
    out.reasons.push(`the signature expired on ${new Date(Number(expires)).toISOString()}`)
    return undefined
  }

  return {data: String(result.data), primary, keyID: only.keyID, bySubkey: !only.keyID.equals(primary.getKeyID())}
}

/** gpg judges the key as of now, not as of the signature's date: a key expired or revoked since refuses it. */
async function keyProblemNow(openpgp: OpenPGP, verified: Verified, signer: string): Promise<string | undefined> {
  try {
    await verified.primary.getSigningKey(verified.keyID, new Date(), undefined, {...openpgp.config, ...gpgLikeConfig(openpgp)})
    return undefined
  } catch (error) {
    return `the key ${signer} is not valid for signing today (gpg judges it as of now): ${(error as Error).message}`
  }
}

/** Checks the signature, then the key's validity today, the payload and the identity. */
export async function checkSignature(openpgp: OpenPGP, input: SignatureInput): Promise<NativeSignature> {
  const out: NativeSignature = {index: input.index, url: input.url, signer: 'unknown', trusted: false, valid: false, inconclusive: false, reasons: []}
  const verified = await verifyMessage(openpgp, input, out)
  if (!verified) return out
  const keyProblem = await keyProblemNow(openpgp, verified, out.signer)
  if (keyProblem) {
    out.reasons.push(keyProblem)
    return out
  }

  const {primary, bySubkey} = verified
  // Before 5.37 containers/image matches the signing key against primary keys only.
  if (bySubkey && !input.subkeySignatures) {
    out.reasons.push(`made by subkey ${out.signer} of ${primary.getFingerprint().toUpperCase()}, which this host's containers/image refuses (subkey signatures are accepted from 5.37)`)
  }

  // x/crypto/openpgp cannot even read an EdDSA key, so such an engine never verifies its signatures.
  const algorithm = String(primary.getAlgorithmInfo().algorithm)
  if (input.noEdDsaKeys && /^eddsa|ed25519/i.test(algorithm)) {
    out.reasons.push(`made by EdDSA key ${primary.getFingerprint().toUpperCase()}, which ${input.noEdDsaKeys} (built with containers_image_openpgp) cannot read, so it refuses the image`)
  }

  judgePayload(out, verified.data, input)
  if (out.valid) out.reasons.push(bySubkey ? `valid (made by subkey ${out.signer} of ${primary.getFingerprint().toUpperCase()})` : 'valid')
  return out
}

function judgePayload(out: NativeSignature, data: string, input: SignatureInput): void {
  const payload = readSimplePayload(data)
  if ('refused' in payload) {
    out.reasons.push(payload.refused)
    return
  }

  out.manifestDigest = payload.dockerManifestDigest
  out.dockerReference = payload.dockerReference
  if (out.manifestDigest !== input.digest) out.reasons.push(`signed manifest digest ${out.manifestDigest} is not the image's ${input.digest}`)
  const otherwiseValid = out.reasons.length === 0
  out.identity = matchSignedIdentity(input.identity, input.ref, out.dockerReference)
  if (out.identity.verdict === 'mismatch') out.reasons.push(`identity mismatch: ${out.identity.reason}`)
  if (out.identity.verdict === 'unknown') out.reasons.push(`identity not evaluated: ${out.identity.reason}`)
  out.valid = otherwiseValid && out.identity.verdict === 'match'
  out.inconclusive = otherwiseValid && out.identity.verdict === 'unknown'
}
