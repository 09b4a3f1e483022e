import {ImagetrustError} from '../lib/errors.js'
import type {KeyInfo} from './types.js'

/**
 * OpenPGP public keys: read and describe them (inspect), and refuse what must
 * never be trusted (checkUsable). A secret key is refused as soon as it is
 * seen, so its bytes never reach a host file, a log or a backup.
 */
export interface InspectedGpgKeys {
  armored: string
  binary: Uint8Array
  keys: KeyInfo[]
}

function looksArmored(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 200)).toString('latin1').includes('-----BEGIN PGP')
}

export function isOpenPgp(bytes: Uint8Array): boolean {
  // Armor, or a binary public/secret key packet (old or new format tag 6 or 5).
  return looksArmored(bytes) || [0x99, 0x98, 0xc6, 0x95, 0x94, 0xc5].includes(bytes[0])
}

export async function inspectGpgKeys(bytes: Uint8Array, options: {name: string; now?: Date}): Promise<InspectedGpgKeys> {
  const openpgp = await import('openpgp')
  const text = Buffer.from(bytes).toString('utf8')
  if (/-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(text)) {
    throw new ImagetrustError(`key "${options.name}" is a secret (private) key; only public keys are accepted. Export it with gpg --export, not --export-secret-keys`)
  }

  let keys
  try {
    if (looksArmored(bytes)) {
      // GnuPG imports every armored block of a file; openpgp.readKeys reads only the first.
      // Read them all, so no key reaches the host without being checked and pinned.
      const blocks = text.match(/-----BEGIN PGP [A-Z ]+-----[\s\S]*?-----END PGP [A-Z ]+-----/g) ?? []
      if (blocks.some((block) => !block.startsWith('-----BEGIN PGP PUBLIC KEY BLOCK-----'))) {
        throw new Error('the file holds an armored block that is not a public key')
      }

      keys = (await Promise.all(blocks.map((block) => openpgp.readKeys({armoredKeys: block})))).flat()
      if (keys.length === 0) throw new Error('no public key block found')
    } else {
      keys = await openpgp.readKeys({binaryKeys: bytes})
    }
  } catch (error) {
    throw new ImagetrustError(`key "${options.name}" is not a readable OpenPGP public key: ${(error as Error).message}`)
  }

  const now = options.now ?? new Date()
  const infos: KeyInfo[] = []
  for (const key of keys) {
    const fingerprint = key.getFingerprint().toUpperCase()
    if (key.isPrivate()) throw new ImagetrustError(`key "${options.name}" (${fingerprint}) is a secret key; only public keys are accepted`)
    const revoked = await key.isRevoked(undefined, undefined, now)
    const expires = await key.getExpirationTime()
    const expired = expires instanceof Date && expires.getTime() <= now.getTime()
    let primaryCanSign = false
    let canSign = false
    try {
      // At a time when the key is still valid, so an expired key still says what it could sign with.
      const at = expired ? new Date((expires as Date).getTime() - 1000) : now
      const signing = await key.getSigningKey(undefined, at)
      canSign = true
      primaryCanSign = signing.getKeyID().equals(key.getKeyID())
    } catch {}

    infos.push({
      fingerprint,
      algorithm: describeAlgorithm(key.getAlgorithmInfo()),
      userIds: key.getUserIDs(),
      created: key.getCreationTime().toISOString(),
      expires: expires instanceof Date ? expires.toISOString() : undefined,
      revoked,
      expired,
      canSign,
      subkeyOnlySigning: canSign && !primaryCanSign,
    })
  }

  const binary = concat(keys.map((key) => key.toPublic().write()))
  return {armored: await armorPublicKeys(binary), binary, keys: infos}
}

/** The refusals: revoked, expired, no signing key, and a pin that does not cover exactly the keys found. */
export function usabilityProblems(name: string, keys: KeyInfo[], pins: string[] | undefined): string[] {
  const problems: string[] = []
  for (const key of keys) {
    if (key.revoked) problems.push(`key "${name}" (${key.fingerprint}) is revoked`)
    else if (key.expired) problems.push(`key "${name}" (${key.fingerprint}) expired on ${key.expires}`)
    else if (!key.canSign) problems.push(`key "${name}" (${key.fingerprint}) has no valid signing-capable key`)
  }

  if (pins && pins.length > 0) {
    const found = keys.map((k) => k.fingerprint)
    const wanted = pins.map((p) => p.toUpperCase())
    if (wanted.some((p) => !found.includes(p)) || found.some((f) => !wanted.includes(f))) {
      problems.push(`key "${name}": fingerprint pin does not match.\n  pinned: ${wanted.join(', ')}\n  found:  ${found.join(', ')}`)
    }
  }

  return problems
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
