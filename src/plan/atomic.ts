import {randomBytes} from 'node:crypto'
import {chmod, chown, mkdir, open, rename, rm, symlink, unlink} from 'node:fs/promises'
import path from 'node:path'

import {ImagetrustError} from '../lib/errors.js'

/** Writes a file so a reader sees the old or the new content, never a mix: temp file, fsync, rename, fsync dir. */
export async function writeFileAtomic(realPath: string, content: string | Uint8Array, options: {mode: number; uid?: number; gid?: number}): Promise<void> {
  const dir = path.dirname(realPath)
  const temp = path.join(dir, `.${path.basename(realPath)}.imagetrust-${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    await mkdir(dir, {recursive: true, mode: 0o755})
    const handle = await open(temp, 'wx', options.mode)
    try {
      await handle.writeFile(content)
      await handle.sync()
    } finally {
      await handle.close()
    }

    await chmod(temp, options.mode) // umask may have narrowed it
    if (options.uid !== undefined && options.gid !== undefined && process.getuid?.() === 0) await chown(temp, options.uid, options.gid)
    // rename replaces a symlink itself, never its target.
    await rename(temp, realPath)
    await syncDir(dir)
  } catch (error) {
    await rm(temp, {force: true})
    throw new ImagetrustError(`cannot write ${realPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {cause: error})
  }
}

export async function removeFile(realPath: string): Promise<void> {
  try {
    await unlink(realPath)
    await syncDir(path.dirname(realPath))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw new ImagetrustError(`cannot remove ${realPath}: ${(error as NodeJS.ErrnoException).code}`, {cause: error})
  }
}

/** Puts back a symlink as it was (used by rollback). */
export async function restoreSymlink(realPath: string, target: string): Promise<void> {
  const temp = `${realPath}.imagetrust-link-${process.pid}`
  await rm(temp, {force: true})
  await symlink(target, temp)
  await rename(temp, realPath)
  await syncDir(path.dirname(realPath))
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
