import assert from 'node:assert/strict'
import {mkdtemp, readdir, readFile, rm, utimes, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {removeStaleTempFiles} from '../../src/fs/atomic.ts'
import {acquireLock} from '../../src/fs/lock.ts'

describe('the apply lock', () => {
  let dir: string
  let lock: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-lock-'))
    lock = path.join(dir, 'lock')
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('holds the owner PID from the moment it exists, and leaves no PID file behind', async () => {
    const held = await acquireLock(lock, 1000)
    assert.equal(await readFile(lock, 'utf8'), `${process.pid}\n`)
    assert.deepEqual(await readdir(dir), ['lock'])
    await held.release()
    assert.deepEqual(await readdir(dir), [])
  })

  it('takes over a lock whose owner is dead', async () => {
    await writeFile(lock, '999999999\n')
    const held = await acquireLock(lock, 1000)
    assert.equal(await readFile(lock, 'utf8'), `${process.pid}\n`)
    await held.release()
  })

  it('waits for a live owner, then says who holds it', async () => {
    await writeFile(lock, '1\n') // PID 1 is always alive
    await assert.rejects(acquireLock(lock, 300), /another imagetrust run \(pid 1\) holds the lock .*gave up after 0 s/)
    await rm(lock)
  })

  it('an empty lock file (an owner killed by an older version) is stale once old, not before', async () => {
    await writeFile(lock, '')
    await assert.rejects(acquireLock(lock, 300), /holds the lock/)
    const past = new Date(Date.now() - 60_000)
    await utimes(lock, past, past)
    const held = await acquireLock(lock, 1000)
    await held.release()
  })

  it('the sweep removes the temp and PID files of dead runs only', async () => {
    const files = ['.policy.json.imagetrust-999999999-0a1b2c3d', `.policy.json.imagetrust-${process.pid}-0a1b2c3d`, 'lock.999999999', `lock.${process.pid}`, 'policy.json']
    for (const f of files) await writeFile(path.join(dir, f), '')
    await removeStaleTempFiles([dir])
    assert.deepEqual((await readdir(dir)).sort(), [`.policy.json.imagetrust-${process.pid}-0a1b2c3d`, `lock.${process.pid}`, 'policy.json'].sort())
  })
})
