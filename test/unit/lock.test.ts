import assert from 'node:assert/strict'
import {type ChildProcessWithoutNullStreams, execFileSync, spawn} from 'node:child_process'
import {mkdtemp, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {createInterface} from 'node:readline'
import {after, before, describe, it} from 'node:test'

import {removeStaleTempFiles} from '../../src/fs/atomic.ts'
import {acquireLock} from '../../src/fs/lock.ts'

describe('the apply lock', () => {
  let dir: string
  let lock: string
  /** A process that takes the lock when told to (test/support/lock-racer.ts). */
  const racer = (log: string): ChildProcessWithoutNullStreams =>
    spawn(process.execPath, ['--import', 'tsx', path.resolve(import.meta.dirname, '../support/lock-racer.ts'), lock, log], {cwd: path.resolve(import.meta.dirname, '../..')})

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-lock-'))
    lock = path.join(dir, 'lock')
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('holds the owner PID while held, and leaves nothing behind', async () => {
    const held = await acquireLock(lock, 1000)
    assert.equal(await readFile(lock, 'utf8'), `${process.pid}\n`)
    assert.deepEqual(await readdir(dir), ['lock'])
    await held.release()
    assert.deepEqual(await readdir(dir), [])
  })

  it('a lock file left by a dead process is no lock at all', async () => {
    await writeFile(lock, '999999999\n')
    const held = await acquireLock(lock, 1000)
    assert.equal(await readFile(lock, 'utf8'), `${process.pid}\n`)
    await held.release()
  })

  it('waits for a live owner, then says who holds it', async () => {
    const held = await acquireLock(lock, 1000)
    await assert.rejects(acquireLock(lock, 300), new RegExp(`another imagetrust run \\(pid ${process.pid}\\) holds the lock .*gave up after 0 s`))
    await held.release()
    const again = await acquireLock(lock, 300)
    await again.release()
  })

  it('is released when its owner is killed', async () => {
    const owner = racer(path.join(dir, 'unused.log'))
    owner.stdin.write('hold\n')
    assert.equal((await createInterface({input: owner.stdout})[Symbol.asyncIterator]().next()).value, 'held')
    await assert.rejects(acquireLock(lock, 100), /holds the lock/)
    owner.kill('SIGKILL')
    const held = await acquireLock(lock, 5000)
    await held.release()
  })

  it('refuses a symlink or a FIFO planted at the lock path, without following or blocking', async () => {
    await rm(lock, {force: true})
    await symlink(path.join(dir, 'elsewhere'), lock)
    await assert.rejects(acquireLock(lock, 100), /cannot write the lock .*lock: ELOOP/)
    assert.deepEqual((await readdir(dir)).sort(), ['lock'])
    await rm(lock)
    execFileSync('mkfifo', [lock])
    await assert.rejects(acquireLock(lock, 100), /cannot write the lock .*lock: (ENXIO|not a regular file)/)
    await rm(lock)
    // Refusing it released the lock.
    await (await acquireLock(lock, 100)).release()
  })

  it('8 racers from a lock left by a dead process, 50 times: never two holders at once', async () => {
    const log = path.join(dir, 'holders.log')
    const racers = Array.from({length: 8}, () => racer(log))
    const lines = racers.map((r) => createInterface({input: r.stdout})[Symbol.asyncIterator]())
    try {
      for (let trial = 0; trial < 50; trial++) {
        await writeFile(lock, '999999999\n') // what a killed run left
        for (const racer of racers) racer.stdin.write('go\n')
        await Promise.all(lines.map(async (l) => assert.equal((await l.next()).value, 'done')))
      }
    } finally {
      for (const racer of racers) racer.kill()
    }

    const events = (await readFile(log, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
      .map(([kind, pid, time]) => ({kind, pid, time: BigInt(time)}))
      .sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))
    assert.equal(events.length, 8 * 50 * 2)
    let holder: string | undefined
    for (const event of events) {
      if (event.kind === 'enter') {
        assert.equal(holder, undefined, `pid ${event.pid} entered while pid ${holder} held the lock`)
        holder = event.pid
      } else {
        assert.equal(holder, event.pid)
        holder = undefined
      }
    }

    await rm(log)
  })

  it('the sweep removes the temp and PID files of dead runs only', async () => {
    const files = ['.policy.json.imagetrust-999999999-0a1b2c3d', `.policy.json.imagetrust-${process.pid}-0a1b2c3d`, 'lock.999999999', `lock.${process.pid}`, 'policy.json']
    for (const f of files) await writeFile(path.join(dir, f), '')
    await removeStaleTempFiles([dir])
    assert.deepEqual((await readdir(dir)).sort(), [`.policy.json.imagetrust-${process.pid}-0a1b2c3d`, `lock.${process.pid}`, 'policy.json'].sort())
  })
})
