import {createHash} from 'node:crypto'

import type {OwnershipState} from '../host/state.js'

/**
 * Whether a file is imagetrust's: state.json says we wrote it, and it still
 * holds what we wrote. A file we wrote that was changed since is `modified`:
 * we may restore it (it is drift at a path we manage), but never delete it,
 * because someone else may rely on what it holds now.
 */
export type Ownership = 'absent' | 'ours' | 'modified' | 'foreign'

export function contentDigest(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

export function ownershipOf(state: OwnershipState | null, hostPath: string, content: string | null, legacyOwned: boolean): Ownership {
  if (content === null) return 'absent'
  const recorded = state?.files?.[hostPath]
  if (recorded !== undefined) return recorded === contentDigest(content) ? 'ours' : 'modified'
  // A state file from before digests were kept: the paths it lists were ours.
  if (state && state.files === undefined && legacyOwned) return 'ours'
  return 'foreign'
}
