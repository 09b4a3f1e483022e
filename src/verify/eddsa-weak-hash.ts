import {createPublicKey, verify as cryptoVerify} from 'node:crypto'

import type {Key, KeyID, Message} from 'openpgp'

/**
 * gpg verifies a (legacy, algorithm 22) EdDSA signature over a SHA-1 or
 * RIPEMD-160 digest; openpgp.js refuses it outright ("Hash algorithm too weak
 * for EdDSA"), before any other check. This redoes only that step, with
 * node:crypto, on the digest openpgp.js computes: Ed25519 over the hash. The
 * caller still checks the key's validity and the signature's dates.
 */
interface LegacyEdSignature {
  publicKeyAlgorithm: number
  signatureType: number
  hashAlgorithm: number
  signedHashValue: Uint8Array
  params: Promise<{r: Uint8Array; s: Uint8Array}> | {r: Uint8Array; s: Uint8Array}
  unknownSubpackets: Array<{critical: boolean}>
  rawNotations: Array<{critical: boolean}>
  toHash(type: number, data: unknown): Uint8Array
  hash(type: number, data: unknown, toHash: Uint8Array): Promise<Uint8Array>
}

const EDDSA_LEGACY = 22
const pad32 = (bytes: Uint8Array) => Buffer.concat([Buffer.alloc(Math.max(0, 32 - bytes.length)), Buffer.from(bytes)])

export const isWeakEdDsaHashError = (error: unknown) => /Hash algorithm too weak for EdDSA/.test((error as Error)?.message ?? '')

/** True when the signature verifies; false when it does not or is not a legacy EdDSA signature with critical parts we would have to judge. */
export async function verifyLegacyEdDsa(message: Message<string>, packet: unknown, primary: Key, keyID: KeyID): Promise<boolean> {
  const sig = packet as LegacyEdSignature
  if (sig.publicKeyAlgorithm !== EDDSA_LEGACY) return false
  if (sig.unknownSubpackets.some((p) => p.critical) || sig.rawNotations.some((n) => n.critical)) return false
  const signing = primary.getKeys(keyID)[0]?.keyPacket as unknown as {algorithm: number; publicParams: {Q: Uint8Array}} | undefined
  if (!signing || signing.algorithm !== EDDSA_LEGACY || signing.publicParams.Q.length !== 33) return false
  const unwrapped = (message as unknown as {unwrapCompressed(): {packets: {filterByTag(tag: number): unknown[]}}}).unwrapCompressed()
  const literals = unwrapped.packets.filterByTag(11)
  if (literals.length !== 1) return false
  const digest = await sig.hash(sig.signatureType, literals[0], sig.toHash(sig.signatureType, literals[0]))
  if (digest[0] !== sig.signedHashValue[0] || digest[1] !== sig.signedHashValue[1]) return false
  const {r, s} = await sig.params
  const x = Buffer.from(signing.publicParams.Q.subarray(1)).toString('base64url')
  const key = createPublicKey({key: {kty: 'OKP', crv: 'Ed25519', x}, format: 'jwk'})
  try {
    return cryptoVerify(null, digest, key, Buffer.concat([pad32(r), pad32(s)]))
  } catch {
    return false
  }
}
