import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import {HOST_PATHS} from '../host/paths.js'
import {ImagetrustError} from '../lib/errors.js'
import type {KeySpec, TrustFile} from '../trustfile/types.js'
import {checkGpgKeys} from './gpg.js'
import {checkSigstoreKey} from './sigstore.js'
import {readKeySource} from './source.js'
import type {LoadedKey} from './types.js'

export function keyHostPath(spec: Pick<KeySpec, 'name' | 'type'>): string {
  return path.posix.join(HOST_PATHS.keyDir, `${spec.name}.${spec.type === 'gpg' ? 'gpg' : 'pub'}`)
}

/** Reads and checks every key of the trust file. Any failure stops the run before anything is written. */
export async function loadKeys(trust: TrustFile, capabilities: Capabilities): Promise<LoadedKey[]> {
  return Promise.all(trust.keys.map((spec) => loadKey(spec, trust, capabilities)))
}

async function loadKey(spec: KeySpec, trust: TrustFile, capabilities: Capabilities): Promise<LoadedKey> {
  const bytes = await readKeySource(spec, trust.file, trust.dir)
  const location = {file: trust.file, line: spec.line}
  try {
    if (spec.type === 'sigstore') {
      const {pem, info} = checkSigstoreKey(bytes, {name: spec.name, pin: spec.fingerprint})
      return {name: spec.name, type: 'sigstore', hostPath: keyHostPath(spec), content: pem, keys: [info], warnings: []}
    }

    const checked = await checkGpgKeys(bytes, {name: spec.name, pin: spec.fingerprint})
    const warnings = checked.keys
      .filter((k) => k.subkeyOnlySigning && !capabilities.subkeySignatures)
      .map(
        (k) =>
          `key "${spec.name}" (${k.fingerprint}) can sign only with a subkey; containers/image ${capabilities.containersImage} rejects subkey signatures (5.37+ accepts them)`,
      )
    return {
      name: spec.name,
      type: 'gpg',
      hostPath: keyHostPath(spec),
      content: checked.armored,
      binary: checked.binary,
      keys: checked.keys,
      warnings,
    }
  } catch (error) {
    if (error instanceof ImagetrustError && !error.location) throw new ImagetrustError(error.message, {location})
    throw error
  }
}
