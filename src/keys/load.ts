import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import {ImagetrustError, locationOf} from '../lib/errors.js'
import type {KeySpec, TrustFile} from '../trustfile/types.js'
import {inspectGpgKeys, isOpenPgp, usabilityProblems} from './gpg.js'
import {loadPkiKey, pkiHostPaths} from './pki.js'
import {checkSigstoreKey} from './sigstore.js'
import {readKeySource} from './source.js'
import type {KeyInfo, LoadedKey} from './types.js'

export function keyHostPath(spec: Pick<KeySpec, 'name' | 'type' | 'pki'>, keyDir: string): string {
  if (spec.pki) return pkiHostPaths(spec.name, keyDir).roots
  return path.posix.join(keyDir, `${spec.name}.${spec.type === 'gpg' ? 'gpg' : 'pub'}`)
}

export interface LoadKeysOptions {
  /** Throw on the first unusable key (apply). Off: report problems on each key (check, key list). */
  strict?: boolean
  /** Where keys are installed (the layout's key directory). */
  keyDir: string
  now?: Date
}

/** Reads and checks every key of the trust file. In strict mode any failure stops the run before anything is written. */
export async function loadKeys(trust: TrustFile, capabilities: Capabilities, options: LoadKeysOptions): Promise<LoadedKey[]> {
  return Promise.all(trust.keys.map((spec) => loadKey(spec, trust, capabilities, options)))
}

/** Checks key bytes; throws only for what is never acceptable (secret, unreadable, wrong kind). */
export async function describeKeyBytes(
  bytes: Uint8Array,
  spec: Pick<KeySpec, 'name' | 'type' | 'fingerprints'>,
  capabilities: Capabilities,
  now?: Date,
): Promise<Omit<LoadedKey, 'hostPath'>> {
  if (spec.type === 'sigstore') {
    if (isOpenPgp(bytes) && !/PUBLIC KEY-----/.test(Buffer.from(bytes).toString('latin1'))) {
      throw new ImagetrustError(`key "${spec.name}" is an OpenPGP key, but its type is sigstore`)
    }

    const {pem, info} = checkSigstoreKey(bytes, {name: spec.name, pin: spec.fingerprints})
    return {name: spec.name, type: 'sigstore', content: pem, keys: [info], warnings: [], problems: []}
  }

  const inspected = await inspectGpgKeys(bytes, {name: spec.name, now})
  const warnings = [...subkeyWarnings(spec.name, inspected.keys, capabilities), ...edDsaWarnings(spec.name, inspected.keys, capabilities)]
  return {
    name: spec.name,
    type: 'gpg',
    content: inspected.armored,
    binary: inspected.binary,
    keys: inspected.keys,
    warnings,
    problems: usabilityProblems(spec.name, inspected.keys, spec.fingerprints),
  }
}

function subkeyWarnings(name: string, keys: KeyInfo[], capabilities: Capabilities): string[] {
  return keys
    .filter((k) => k.subkeyOnlySigning && !capabilities.subkeySignatures)
    .map((k) => `key "${name}" (${k.fingerprint}) can sign only with a subkey; containers/image ${capabilities.containersImage} (${capabilities.source}) rejects subkey signatures (5.37+ accepts them)`)
}

/** An EdDSA key on a host whose engine reads keys with golang.org/x/crypto/openpgp (no EdDSA there). */
function edDsaWarnings(name: string, keys: KeyInfo[], capabilities: Capabilities): string[] {
  if (!capabilities.noEdDsaKeys) return []
  return keys
    .filter((k) => /^eddsa|ed25519/i.test(k.algorithm))
    .map((k) => `key "${name}" (${k.fingerprint}) is an EdDSA key (${k.algorithm}): ${capabilities.noEdDsaKeys} was built with containers_image_openpgp, whose OpenPGP reader has no EdDSA, so it refuses every image signed by this key; use an RSA key for it`)
}

async function loadKey(spec: KeySpec, trust: TrustFile, capabilities: Capabilities, options: LoadKeysOptions): Promise<LoadedKey> {
  const location = locationOf(trust.file, spec)
  try {
    if (spec.pki) {
      const loaded = await loadPkiKey({...spec, pki: spec.pki}, trust, options.keyDir, options.now)
      if ((options.strict ?? true) && loaded.problems.length > 0) throw new ImagetrustError(loaded.problems.join('\n'))
      return loaded
    }

    const bytes = await readKeySource(spec, trust.file, trust.dir)
    const described = await describeKeyBytes(bytes, spec, capabilities, options.now)
    if ((options.strict ?? true) && described.problems.length > 0) throw new ImagetrustError(described.problems.join('\n'))
    return {...described, hostPath: keyHostPath(spec, options.keyDir)}
  } catch (error) {
    if (error instanceof ImagetrustError && !error.location) throw new ImagetrustError(error.message, {location, hint: error.hint})
    throw error
  }
}
