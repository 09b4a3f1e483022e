import {randomBytes} from 'node:crypto'
import {chmod, chown, mkdir, open, rename, rm, symlink, unlink} from 'node:fs/promises'
import path from 'node:path'

import {ImagetrustError} from '../lib/errors.js'
import {processAlive} from './process.js'

/** Writes a file so a reader sees the old or the new content, never a mix: temp file, fsync, rename, fsync dir. */
export async function writeFileAtomic(realPath: string, content: string | Uint8Array, options: {mode: number; uid?: number; gid?: number}): Promise<void> {
  const dir = path.dirname(realPath)
  const temp = path.join(dir, `.${path.basename(realPath)}.imagetrust-${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    await ensureDir(dir)
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

/**
 * mkdir -p, one level at a time: Node 20's recursive mkdir reports a
 * read-only file system (EROFS) as ENOENT, which would mislead.
 */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, {mode: 0o755})
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return
    if (code !== 'ENOENT' || path.dirname(dir) === dir) throw error
    await ensureDir(path.dirname(dir))
    await mkdir(dir, {mode: 0o755}).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again
    })
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

/** Temp files of writeFileAtomic, and the PID files acquireLock links from. */
const TEMP_NAME = /^(?:\..+\.imagetrust-(\d+)-[0-9a-f]{8}|lock\.(\d+))$/


/** Removes temp files that a killed run left in these directories (never those of a live one). */
export async function removeStaleTempFiles(dirs: Iterable<string>): Promise<string[]> {
  const {readdir} = await import('node:fs/promises')
  const removed: string[] = []
  for (const dir of new Set(dirs)) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const match = TEMP_NAME.exec(name)
      if (!match || processAlive(Number(match[1] ?? match[2]))) continue
      await rm(path.join(dir, name), {force: true})
      removed.push(path.join(dir, name))
    }
  }

  return removed
}
