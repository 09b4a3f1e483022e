import {createHash, createPublicKey} from 'node:crypto'

import {ImagetrustError} from '../lib/errors.js'
import type {KeyInfo} from './types.js'

/** Sigstore/cosign public keys in PEM: ECDSA P-256/P-384, Ed25519, RSA. */
export function checkSigstoreKey(bytes: Uint8Array, options: {name: string; pin?: string[]}): {pem: string; info: KeyInfo} {
  const text = Buffer.from(bytes).toString('utf8')
  if (/PRIVATE KEY-----/.test(text) || /"kdf"\s*:/.test(text)) {
    throw new ImagetrustError(`key "${options.name}" is a private key; only the public key (cosign.pub) is accepted`)
  }

  let key
  try {
    key = createPublicKey({key: text, format: 'pem'})
  } catch (error) {
    throw new ImagetrustError(`key "${options.name}" is not a PEM public key: ${(error as Error).message}`)
  }

  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails ?? {}
  let algorithm: string
  if (type === 'ec') {
    if (details.namedCurve !== 'prime256v1' && details.namedCurve !== 'secp384r1') {
      throw new ImagetrustError(`key "${options.name}": ECDSA curve ${details.namedCurve} is not supported by sigstore (P-256 or P-384)`)
    }

    algorithm = `ecdsa/${details.namedCurve === 'prime256v1' ? 'P-256' : 'P-384'}`
  } else if (type === 'ed25519') {
    algorithm = 'ed25519'
  } else if (type === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) throw new ImagetrustError(`key "${options.name}": RSA keys shorter than 2048 bits are refused`)
    algorithm = `rsa/${details.modulusLength}`
  } else {
    throw new ImagetrustError(`key "${options.name}": ${type} keys are not supported by sigstore`)
  }

  const der = key.export({type: 'spki', format: 'der'})
  const fingerprint = createHash('sha256').update(der).digest('hex').toUpperCase()
  const pins = options.pin?.map((p) => p.toUpperCase())
  if (pins && pins.length > 0 && (pins.length !== 1 || pins[0] !== fingerprint)) {
    throw new ImagetrustError(
      `key "${options.name}": fingerprint pin does not match.\n  pinned: ${pins.join(', ')}\n  found:  ${fingerprint} (SHA-256 of the public key)`,
    )
  }

  return {pem: String(key.export({type: 'spki', format: 'pem'})), info: {fingerprint, algorithm, userIds: [], canSign: true, expired: false, revoked: false}}
}
