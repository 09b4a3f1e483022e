/**
 * One of the racers of test/unit/lock.test.ts: on each "go" line from stdin it
 * takes the lock, logs when it entered and left (monotonic clock, comparable
 * across processes), and says "done" on stdout. On "hold" it takes the lock
 * and keeps it until killed.
 */
import {appendFileSync} from 'node:fs'
import {createInterface} from 'node:readline'

import {acquireLock} from '../../src/fs/lock.ts'

const [lockPath, logPath] = process.argv.slice(2)
for await (const line of createInterface({input: process.stdin})) {
  if (line === 'hold') {
    await acquireLock(lockPath, 20_000) // and never release it: the test kills this process
    process.stdout.write('held\n')
    continue
  }

  if (line !== 'go') continue
  const lock = await acquireLock(lockPath, 20_000)
  appendFileSync(logPath, `enter ${process.pid} ${process.hrtime.bigint()}\n`)
  const until = Date.now() + 2
  while (Date.now() < until); // hold it a moment, without yielding
  appendFileSync(logPath, `exit ${process.pid} ${process.hrtime.bigint()}\n`)
  await lock.release()
  process.stdout.write('done\n')
}
