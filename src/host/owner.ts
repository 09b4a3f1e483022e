import {stat} from 'node:fs/promises'

import type {HostRoot} from './paths.js'

/**
 * Who must own the managed files: root for the system's (when root runs us;
 * otherwise we cannot set it, so it is not checked); for --user, the owner
 * of that user's home, so that sudo or Ansible's become never hands a user's
 * own files to root.
 */
export async function expectedOwner(root: HostRoot): Promise<{uid: number; gid: number} | undefined> {
  const uid = process.getuid?.()
  const gid = process.getgid?.()
  if (uid === undefined || gid === undefined) return undefined
  if (root.layout.kind === 'system') return uid === 0 ? {uid: 0, gid: 0} : undefined
  const home = await stat(root.resolveFull(root.layout.home)).catch(() => undefined)
  return home ? {uid: home.uid, gid: home.gid} : {uid, gid}
}
