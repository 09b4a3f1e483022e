import {ImagetrustError} from '../lib/errors.js'
import type {KeyInfo} from './types.js'

/**
 * OpenPGP public keys: parse, refuse what must never be trusted, and write
 * one normalized armored keyring. Secret key bytes never leave this function.
 */
export interface CheckedGpgKeys {
  armored: string
  binary: Uint8Array
  keys: KeyInfo[]
}

function looksArmored(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 200)).toString('latin1').includes('-----BEGIN PGP')
}

export async function checkGpgKeys(
  bytes: Uint8Array,
  options: {name: string; pin?: string; now?: Date},
): Promise<CheckedGpgKeys> {
  const openpgp = await import('openpgp')
  const text = Buffer.from(bytes).toString('utf8')
  if (/-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(text)) {
    throw new ImagetrustError(`key "${options.name}" is a secret (private) key; only public keys are accepted. Export it with gpg --export, not --export-secret-keys`)
  }

  let keys
  try {
    keys = looksArmored(bytes) ? await openpgp.readKeys({armoredKeys: text}) : await openpgp.readKeys({binaryKeys: bytes})
  } catch (error) {
    throw new ImagetrustError(`key "${options.name}" is not a readable OpenPGP public key: ${(error as Error).message}`)
  }

  const now = options.now ?? new Date()
  const infos: KeyInfo[] = []
  for (const key of keys) {
    const fingerprint = key.getFingerprint().toUpperCase()
    if (key.isPrivate()) throw new ImagetrustError(`key "${options.name}" (${fingerprint}) is a secret key; only public keys are accepted`)
    if (await key.isRevoked(undefined, undefined, now)) throw new ImagetrustError(`key "${options.name}" (${fingerprint}) is revoked`)
    const expires = await key.getExpirationTime()
    if (expires instanceof Date && expires.getTime() <= now.getTime()) {
      throw new ImagetrustError(`key "${options.name}" (${fingerprint}) expired on ${expires.toISOString()}`)
    }

    let signing
    try {
      signing = await key.getSigningKey(undefined, now)
    } catch {
      throw new ImagetrustError(`key "${options.name}" (${fingerprint}) has no valid signing-capable key`)
    }

    const primaryCanSign = signing.getKeyID().equals(key.getKeyID())
    infos.push({
      fingerprint,
      algorithm: describeAlgorithm(key.getAlgorithmInfo()),
      userIds: key.getUserIDs(),
      created: key.getCreationTime().toISOString(),
      expires: expires instanceof Date ? expires.toISOString() : undefined,
      subkeyOnlySigning: !primaryCanSign,
    })
  }

  if (options.pin) {
    const pin = options.pin.toUpperCase()
    if (!infos.some((info) => info.fingerprint === pin)) {
      throw new ImagetrustError(
        `key "${options.name}": fingerprint pin does not match.\n  pinned: ${pin}\n  found:  ${infos.map((i) => i.fingerprint).join(', ')}`,
      )
    }
  }

  const binary = concat(keys.map((key) => key.toPublic().write()))
  return {armored: await armorPublicKeys(binary), binary, keys: infos}
}

/** ASCII armor for a keyring, with the CRC24 line: GnuPG 2.2 (gpgme in containers/image) cannot read armor without it. */
export async function armorPublicKeys(binary: Uint8Array): Promise<string> {
  const openpgp = await import('openpgp')
  return openpgp.armor(openpgp.enums.armor.publicKey, binary, undefined, undefined, undefined, true)
}

function describeAlgorithm(info: {algorithm: string; bits?: number; curve?: string}): string {
  return info.curve ? `${info.algorithm}/${info.curve}` : `${info.algorithm}${info.bits ? `/${info.bits}` : ''}`
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }

  return out
}
