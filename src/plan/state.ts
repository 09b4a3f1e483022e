import path from 'node:path'

import {HOST_PATHS} from '../host/paths.js'
import {ImagetrustError} from '../lib/errors.js'
import {parseStrictJson, toValue} from '../policy/json.js'
import type {ForeignEdit} from '../registries-d/merge.js'

/** What imagetrust owns on a host; everything else is left as found. */
export interface OwnershipState {
  version: 1
  policy: {
    /** docker scopes of policy.json that came from the trust file. */
    scopes: string[]
    /** Transports whose "" entry we added to keep local images usable under default: reject. */
    localTransports: string[]
  }
  registriesD: {
    ownedScopes: string[]
    foreignEdits: ForeignEdit[]
  }
  keyFiles: string[]
}

export const STATE_HOST_PATH = path.posix.join(HOST_PATHS.stateDir, 'state.json')
export const BACKUP_HOST_DIR = path.posix.join(HOST_PATHS.stateDir, 'backups')
export const LOCK_HOST_PATH = path.posix.join(HOST_PATHS.stateDir, 'lock')

export function emptyState(): OwnershipState {
  return {version: 1, policy: {scopes: [], localTransports: []}, registriesD: {ownedScopes: [], foreignEdits: []}, keyFiles: []}
}

export function serializeState(state: OwnershipState): string {
  return JSON.stringify(state, null, 2) + '\n'
}

export function parseState(text: string, file: string): OwnershipState {
  const value = toValue(parseStrictJson(text, file)) as Partial<OwnershipState>
  const ok =
    value &&
    value.version === 1 &&
    Array.isArray(value.policy?.scopes) &&
    Array.isArray(value.policy?.localTransports) &&
    Array.isArray(value.registriesD?.ownedScopes) &&
    Array.isArray(value.registriesD?.foreignEdits) &&
    Array.isArray(value.keyFiles)
  if (!ok) {
    throw new ImagetrustError(`${file}: not an imagetrust state file (version 1); move it away to let imagetrust adopt the host again`)
  }

  return value as OwnershipState
}
