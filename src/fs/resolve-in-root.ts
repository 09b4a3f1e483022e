import {lstatSync, readlinkSync} from 'node:fs'
import path from 'node:path'

import {ImagetrustError} from '../lib/errors.js'

/** Symlinks followed in one resolution before giving up, as Linux does (ELOOP). */
export const MAX_SYMLINKS = 40

/**
 * Maps a host path to the real path under `root` the way openat2(2) with
 * RESOLVE_IN_ROOT does: component by component, `..` never climbs above the
 * root, an absolute symlink target starts again at the root, a relative one
 * from the directory holding the link. So neither `..` in a path read from a
 * file nor a symlink inside the root can lead out of it.
 *
 * `final: 'keep'` leaves the last component as it is (not followed when it is
 * a symlink): writers replace a link with a file, never write through it.
 * `final: 'follow'` resolves it too: readers get the content it points to.
 *
 * Components that do not exist are taken literally (nothing below them can be
 * a symlink). The check is done once, by path: it confines what the root's own
 * files say, not a concurrent attacker swapping directories mid-run.
 */
export function resolveInRoot(root: string, hostPath: string, options: {final: 'keep' | 'follow'}): string {
  const queue = components(hostPath)
  const done: string[] = []
  let links = 0
  while (queue.length > 0) {
    const name = queue.shift()!
    if (name === '..') {
      done.pop() // at the root, `..` is the root
      continue
    }

    if (queue.length === 0 && options.final === 'keep') {
      done.push(name)
      break
    }

    const target = symlinkTarget(path.join(root, ...done, name))
    if (target === undefined) {
      done.push(name)
      continue
    }

    if (++links > MAX_SYMLINKS) {
      throw new ImagetrustError(`cannot resolve ${hostPath} under ${root}: more than ${MAX_SYMLINKS} symlinks (ELOOP)`)
    }

    if (target.startsWith('/')) done.length = 0 // absolute targets are re-rooted
    queue.unshift(...components(target))
  }

  return path.join(root, ...done)
}

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.')
}

/** The link's target, or undefined when the path is not a symlink (or does not exist). */
function symlinkTarget(realPath: string): string | undefined {
  try {
    if (!lstatSync(realPath).isSymbolicLink()) return undefined
    return readlinkSync(realPath)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw new ImagetrustError(`cannot resolve ${realPath}: ${code ?? (error as Error).message}`)
  }
}
