import {mkdir, open, readFile, unlink} from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {ImagetrustError} from '../lib/errors.js'
import {processAlive} from '../lib/process.js'

/** An exclusive lock file holding the owner's PID; a lock left by a dead process is taken over. */
export interface Lock {
  release(): Promise<void>
}


export async function acquireLock(realPath: string, timeoutMs: number): Promise<Lock> {
  await mkdir(path.dirname(realPath), {recursive: true, mode: 0o755})
  const deadline = Date.now() + timeoutMs
  let holder = 0
  for (;;) {
    try {
      const handle = await open(realPath, 'wx', 0o644)
      await handle.writeFile(`${process.pid}\n`)
      await handle.close()
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
    if (holder > 0 && !processAlive(holder)) {
      // Stale: its owner died. Removing may race with another waiter; the next open decides.
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
}
