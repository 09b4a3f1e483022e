/**
 * scripts/lab.sh crio-down stops CRI-O and every process in its mount namespace, and nothing
 * else. A mount namespace is named by a number the kernel hands out again as soon as it is
 * freed, often to the very next `unshare -m`. crio-down once killed by a number read from a
 * file, and so SIGKILLed dist.test's `unshare … chroot … dpkg -i`, which had been given the
 * number of a CRI-O that was already gone. Here a sleep stands in for CRI-O: crio-down needs
 * no lab binaries to stop it.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtemp, readFile, readlink, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {REPO_ROOT, run} from '../support/lab.ts'

const LAB = path.join(REPO_ROOT, 'scripts/lab.sh')

/** A process in a mount namespace of its own (what crio-up starts), once unshare has made it: its PID and namespace. */
async function inOwnNamespace(command: string): Promise<{child: ChildProcess; ns: string}> {
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', command], {stdio: 'ignore'})
  const own = await readlink('/proc/self/ns/mnt')
  for (let i = 0; i < 200; i++) {
    const ns = await readlink(`/proc/${child.pid}/ns/mnt`).catch(() => own)
    if (ns !== own) return {child, ns}
    await sleep(10)
  }
  child.kill('SIGKILL')
  throw new Error('unshare made no namespace within 2 s')
}

/** Field 22 of /proc/PID/stat, as crio-up records it next to the PID. */
async function startTime(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19]
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()))
}

describe('scripts/lab.sh crio-down', {timeout: 120_000, skip: process.getuid?.() !== 0 ? 'needs root (unshare -m)' : false}, () => {
  let dir: string
  const started: ChildProcess[] = []

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-lab-sh-'))
  })

  after(async () => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await Promise.all(started.map(exited))
    await rm(dir, {recursive: true, force: true})
  })

  it('stops the process it started and every other process in its namespace', async () => {
    const crio = await inOwnNamespace('sleep 600 & exec sleep 600')
    started.push(crio.child)
    await writeFile(path.join(dir, 'crio.pid'), `${crio.child.pid} ${await startTime(crio.child.pid!)}\n`)
    await sleep(100) // the background sleep is forked by then
    const result = await run('bash', [LAB, 'crio-down', dir], {timeoutMs: 60_000})
    assert.equal(result.code, 0, result.stderr)
    await exited(crio.child)
    const left = (await run('sh', ['-c', `for p in /proc/[0-9]*; do [ "$(readlink $p/ns/mnt)" = "${crio.ns}" ] && echo $p; done; true`])).stdout.trim()
    assert.equal(left, '', `processes left in CRI-O's namespace: ${left}`)
  })

  it('kills nothing in a namespace that got the number of a CRI-O already gone', async (t) => {
    const crio = await inOwnNamespace('exec sleep 600')
    started.push(crio.child)
    // What crio-up records, and what the old crio-down read the namespace from.
    await writeFile(path.join(dir, 'crio.pid'), `${crio.child.pid} ${await startTime(crio.child.pid!)}\n`)
    await writeFile(path.join(dir, 'crio.mntns'), `${crio.ns}\n`)
    crio.child.kill('SIGKILL')
    await exited(crio.child)

    // Another test's namespace, given the freed number (the kernel does so at once here).
    let victim: {child: ChildProcess; ns: string} | undefined
    for (let i = 0; i < 20 && !victim; i++) {
      const candidate = await inOwnNamespace('exec sleep 600')
      started.push(candidate.child)
      if (candidate.ns === crio.ns) victim = candidate
      else {
        candidate.child.kill('SIGKILL')
        await exited(candidate.child)
      }
    }
    if (!victim) return t.skip(`the kernel did not hand out ${crio.ns} again in 20 tries`)

    const result = await run('bash', [LAB, 'crio-down', dir], {timeoutMs: 60_000})
    assert.equal(result.code, 0, result.stderr)
    await sleep(200)
    assert.equal(victim.child.exitCode, null, 'crio-down killed a process of another namespace')
    assert.equal(victim.child.signalCode, null, 'crio-down killed a process of another namespace')
    assert.match(result.stderr, /was no longer running/)
  })
})
