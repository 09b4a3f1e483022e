import {spawn} from 'node:child_process'
import {constants} from 'node:fs'
import {type FileHandle, mkdir, open, unlink} from 'node:fs/promises'
import path from 'node:path'

import {ImagetrustError} from '../lib/errors.js'
import {readRegularFile} from './read-bounded.js'

/** An exclusive lock on a file; released by release(), or by the kernel when the process dies. */
export interface Lock {
  release(): Promise<void>
}

/** flock(1)'s exit status when the wait timed out (sysexits' EX_TEMPFAIL). */
const TIMED_OUT = 75

/**
 * Takes a kernel lock: flock(2) on the directory that holds `realPath`, and
 * writes the owner's PID to `realPath` (so a waiter can say who holds it).
 *
 * Why a kernel lock: the kernel drops it when its owner dies, so there is no
 * stale lock to judge and take over, and no window between "judged stale" and
 * "removed" in which two runs both win (the PID-file lock had one).
 * Why the directory: a flock()ed file could never be deleted (a waiter would
 * lock the deleted inode while a newcomer locks a new file), so it would stay
 * behind; the directory stays anyway, and the PID file can go on release.
 * Node has no flock(), so flock(1) from util-linux takes it on a descriptor
 * we pass as its fd 3 and exits; the lock stays with the descriptor we keep
 * open (shared, as in `exec 9<dir; flock 9`). That descriptor is
 * close-on-exec, so programs started later (podman) never inherit the lock.
 */
export async function acquireLock(realPath: string, timeoutMs: number): Promise<Lock> {
  const dir = path.dirname(realPath)
  await mkdir(dir, {recursive: true, mode: 0o755})
  const handle = await openDirectory(dir)
  try {
    await flock(handle, realPath, timeoutMs)
    await writePidFile(realPath)
  } catch (error) {
    await handle.close()
    throw error
  }

  return {
    async release() {
      await unlink(realPath).catch(() => {})
      await handle.close().catch(() => {})
    },
  }
}

/** The directory itself, not what a symlink planted in its place points to. */
async function openDirectory(dir: string): Promise<FileHandle> {
  try {
    return await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW)
  } catch (error) {
    throw new ImagetrustError(`cannot lock ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

/** Never through a symlink planted there, never blocking on a FIFO. */
async function writePidFile(realPath: string): Promise<void> {
  try {
    const file = await open(realPath, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY, 0o644)
    try {
      if (!(await file.stat()).isFile()) throw new ImagetrustError(`cannot write the lock ${realPath}: not a regular file`)
      await file.write(`${process.pid}\n`)
    } finally {
      await file.close()
    }
  } catch (error) {
    if (error instanceof ImagetrustError) throw error
    throw new ImagetrustError(`cannot write the lock ${realPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

async function flock(handle: FileHandle, realPath: string, timeoutMs: number): Promise<void> {
  const wait = timeoutMs > 0 ? ['--wait', String(timeoutMs / 1000)] : ['--nonblock']
  const child = spawn('flock', ['--exclusive', ...wait, '--conflict-exit-code', String(TIMED_OUT), '3'], {stdio: ['ignore', 'ignore', 'pipe', handle.fd]})
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  }).catch((error: NodeJS.ErrnoException) => {
    throw new ImagetrustError(`cannot lock ${realPath}: cannot run flock (util-linux): ${error.code ?? error.message}`)
  })
  if (code === 0) return
  if (code === TIMED_OUT) {
    const pidFile = await readRegularFile(realPath, 64).catch(() => undefined)
    const holder = Number.parseInt(pidFile?.content.toString('utf8') ?? '', 10)
    throw new ImagetrustError(
      `another imagetrust run${holder > 0 ? ` (pid ${holder})` : ''} holds the lock ${realPath}; gave up after ${Math.round(timeoutMs / 1000)} s`,
      {hint: 'Wait for it to finish, or raise --lock-timeout.'},
    )
  }

  throw new ImagetrustError(`cannot lock ${realPath}: flock exited with ${code}: ${stderr.trim()}`)
}
