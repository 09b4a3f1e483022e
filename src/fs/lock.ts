import {link, mkdir, readFile, rm, stat, unlink, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {ImagetrustError} from '../lib/errors.js'
import {processAlive} from './process.js'

/** An exclusive lock file holding the owner's PID; a lock left by a dead process is taken over. */
export interface Lock {
  release(): Promise<void>
}

/** A lock file with no readable PID (not written by this version) counts as stale after this long. */
const UNREADABLE_LOCK_GRACE_MS = 10_000

/**
 * Takes the lock atomically: the PID is written to a private file first, which
 * is then hard-linked to the lock path (link fails if the lock exists). So a
 * lock file always holds its owner's PID, even if the owner is killed at once.
 */
export async function acquireLock(realPath: string, timeoutMs: number): Promise<Lock> {
  await mkdir(path.dirname(realPath), {recursive: true, mode: 0o755})
  const mine = `${realPath}.${process.pid}`
  await writeFile(mine, `${process.pid}\n`, {mode: 0o644})
  const deadline = Date.now() + timeoutMs
  let holder = 0
  try {
    for (;;) {
      try {
        await link(mine, realPath)
        return {
          async release() {
            await unlink(realPath).catch(() => {})
          },
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new ImagetrustError(`cannot create lock ${realPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
        }
      }

      holder = Number.parseInt(await readFile(realPath, 'utf8').catch(() => ''), 10)
      const age = await stat(realPath).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      )
      const stale = holder > 0 ? !processAlive(holder) : age > UNREADABLE_LOCK_GRACE_MS
      if (stale) {
        // Its owner died. Removing may race with another waiter; the next link decides.
        await unlink(realPath).catch(() => {})
        continue
      }

      if (Date.now() >= deadline) {
        throw new ImagetrustError(
          `another imagetrust run${holder > 0 ? ` (pid ${holder})` : ''} holds the lock ${realPath}; gave up after ${Math.round(timeoutMs / 1000)} s`,
          {hint: 'Wait for it to finish, or raise --lock-timeout.'},
        )
      }

      await sleep(50 + Math.random() * 100)
    }
  } finally {
    await rm(mine, {force: true})
  }
}
