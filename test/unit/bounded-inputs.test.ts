import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {MiB, readRegularFile} from '../../src/fs/read-bounded.ts'
import {readCappedBody, readKeyFile} from '../../src/keys/source.ts'

describe('bounded inputs', () => {
  let dir: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-bounded-'))
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('a FIFO is refused at once, without waiting for a writer', async () => {
    const fifo = path.join(dir, 'fifo')
    execFileSync('mkfifo', [fifo])
    await assert.rejects(readKeyFile(fifo), new RegExp(`${fifo} is a FIFO, not a regular file`))
  })

  it('a device is refused, never read without end', async () => {
    await assert.rejects(readKeyFile('/dev/zero'), /\/dev\/zero is a character device, not a regular file/)
  })

  it('a key file over 1 MiB is refused; 1 MiB is read whole', async () => {
    const big = path.join(dir, 'big')
    await writeFile(big, Buffer.alloc(MiB + 1, 'A'))
    await assert.rejects(readKeyFile(big), new RegExp(`${big} is larger than 1 MiB`))
    await writeFile(big, Buffer.alloc(MiB, 'A'))
    assert.equal((await readKeyFile(big)).length, MiB)
    assert.equal((await readRegularFile(big, 2 * MiB)).content.length, MiB)
  })

  it('a missing file keeps its code, for callers that tell missing apart', async () => {
    await assert.rejects(readRegularFile(path.join(dir, 'nope'), 10), {code: 'ENOENT'})
    await assert.rejects(readKeyFile(path.join(dir, 'nope')), /cannot read .*nope: ENOENT/)
  })

  it('a URL body is read only up to 1 MiB: an endless one is cut off, and the stream cancelled', async () => {
    let pulled = 0
    let cancelled = false
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 64 * 1024
        controller.enqueue(new Uint8Array(64 * 1024))
      },
      cancel() {
        cancelled = true
      },
    })
    await assert.rejects(readCappedBody(new Response(endless), 'https://keys.example.com/k', 'k'), /key "k": https:\/\/keys\.example\.com\/k sent more than 1 MiB/)
    assert.ok(pulled <= 2 * MiB, `read ${pulled} bytes`)
    assert.ok(cancelled)
    assert.equal((await readCappedBody(new Response('small key'), 'https://keys.example.com/k', 'k')).length, 9)
  })
})
