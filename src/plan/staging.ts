import {chmod, chown, lstat, mkdir, stat} from 'node:fs/promises'

import type {HostRoot} from '../host/paths.js'
import {ImagetrustError, locationOf} from '../lib/errors.js'
import type {TrustFile} from '../trustfile/types.js'

/**
 * The signing host's staging directories (lookasideStaging, a file:// URL):
 * where podman push --sign-by writes signatures, and what publish copies
 * from. Under --root they resolve below the root.
 */
export interface StagingDir {
  scope: string
  url: string
  /** The path as the host sees it. */
  hostPath: string
  /** The path this run touches (below --root). */
  path: string
  exists: boolean
}

export const STAGING_MODE = 0o755

export function stagingHostPath(url: string): string {
  return decodeURIComponent(new URL(url).pathname).replace(/\/+$/, '') || '/'
}

/** The staging directories of the trust file's signing scopes, checked: each must be a directory nobody else can write to. */
export async function inspectStaging(root: HostRoot, trust: TrustFile): Promise<StagingDir[]> {
  const out: StagingDir[] = []
  for (const spec of trust.scopes) {
    if (!spec.lookasideStaging) continue
    const hostPath = stagingHostPath(spec.lookasideStaging)
    const real = root.resolve(hostPath)
    const location = locationOf(trust.file, spec)
    const info = await stat(real).catch(() => undefined)
    if (info && !info.isDirectory()) throw new ImagetrustError(`the staging directory ${real} of scope "${spec.scope}" is not a directory`, {location})
    if (info && (info.mode & 0o022) !== 0) {
      throw new ImagetrustError(`the staging directory ${real} of scope "${spec.scope}" is writable by ${info.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(info.mode & 0o7777).toString(8)}): anyone there could stage files that publish copies to the web root`, {
        location,
        hint: `chmod go-w ${real}`,
      })
    }

    out.push({scope: spec.scope, url: spec.lookasideStaging, hostPath, path: real, exists: info !== undefined})
  }

  return out
}

/** Creates the missing staging directories (0755), owned by the keyring's owner when apply runs as root for another user. */
export async function createStaging(dirs: StagingDir[], owner?: {uid: number; gid: number}): Promise<StagingDir[]> {
  const created: StagingDir[] = []
  for (const dir of dirs) {
    if (dir.exists || created.some((c) => c.path === dir.path)) continue
    await mkdir(dir.path, {recursive: true, mode: STAGING_MODE})
    await chmod(dir.path, STAGING_MODE)
    if (owner && process.getuid?.() === 0 && owner.uid !== 0 && !(await lstat(dir.path)).isSymbolicLink()) await chown(dir.path, owner.uid, owner.gid)
    created.push(dir)
  }

  return created
}

/** The signing host's part of apply: the key checked (before anything is written), the staging directories to create. */
export interface SigningSetup {
  fingerprint: string
  gnupgHome: string
  userIds: string[]
  scopes: string[]
  testSigned: boolean
  staging: StagingDir[]
  /** The keyring's owner: the user who signs, and so who must be able to write the staging directories. */
  owner?: {uid: number; gid: number}
}

export interface SigningResult {
  fingerprint: string
  gnupgHome: string
  scopes: string[]
  testSigned: boolean
  staging: Array<{scope: string; path: string; created: boolean}>
}

export function withoutStaging(trust: TrustFile): TrustFile {
  return {...trust, scopes: trust.scopes.map((s) => ({...s, lookasideStaging: undefined}))}
}
