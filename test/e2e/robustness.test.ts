/**
 * Crash safety, concurrency, a full disk and a read-only file system: the
 * host is never left with a half-written file, and a failed apply changes nothing.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {acquireLock} from '../../src/fs/lock.ts'
import {REPO_ROOT, imagetrust, run} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

const CLI = path.join(REPO_ROOT, 'bin/run.js')
const DEBIAN = '{\n    "default": [\n        {\n            "type": "insecureAcceptAnything"\n        }\n    ]\n}\n'

/** A trust file of n scopes named prefix0..prefixN, each with a lookaside. */
function trust(prefix: string, n: number): string {
  const lines = ['version: 1', 'default: reject', 'scopes:']
  for (let i = 0; i < n; i++) lines.push(`  "registry.example.com/${prefix}${i}":`, `    policy: ${i % 2 ? 'accept' : 'reject'}`, `    lookaside: https://sigs.example.com/${prefix}`)
  return lines.join('\n') + '\n'
}

describe('robustness', () => {
  let dir: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-robust-'))
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  async function newRoot(name: string): Promise<string> {
    const root = path.join(dir, name)
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), DEBIAN)
    return root
  }

  /** The managed files' contents, by path relative to the root. */
  async function managed(root: string): Promise<Record<string, string | null>> {
    const read = (p: string) => readFile(path.join(root, p), 'utf8').catch(() => null)
    return {policy: await read('etc/containers/policy.json'), registries: await read('etc/containers/registries.d/imagetrust.yaml')}
  }

  // IMAGETRUST_ROBUSTNESS_ROUNDS=300 for a longer hunt; 100 in the suite.
  const rounds = Number(process.env.IMAGETRUST_ROBUSTNESS_ROUNDS ?? 100)
  it(`SIGKILL at random moments, ${rounds} rounds: every file is old or new, never partial, and the next apply converges`, async () => {
    const configs = {a: path.join(dir, 'a.yaml'), b: path.join(dir, 'b.yaml')}
    await writeFile(configs.a, trust('a', 1500))
    await writeFile(configs.b, trust('b', 1500))
    // The only complete versions each file can have.
    const versions: Record<string, Set<string | null>> = {policy: new Set(), registries: new Set()}
    for (const [name, config] of Object.entries({original: undefined, ...configs})) {
      const scratch = await newRoot(`versions-${name}`)
      if (config) {
        const applied = await imagetrust(['apply', '--root', scratch, '-c', config])
        assert.equal(applied.code, 0, `apply of ${name} (exit ${applied.code}; 127 is a spawn error or a signal): ${applied.stderr}`)
      }
      for (const [file, content] of Object.entries(await managed(scratch))) versions[file].add(content)
    }

    const root = await newRoot('crash')
    let killedMidWay = 0
    for (let round = 0; round < rounds; round++) {
      const config = round % 2 === 0 ? configs.a : configs.b
      const child = spawn(process.execPath, [CLI, 'apply', '--root', root, '-c', config], {stdio: 'ignore'})
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      await sleep(60 + Math.floor(Math.random() * 600))
      if (child.exitCode === null) {
        child.kill('SIGKILL')
        killedMidWay++
      }

      await exited
      for (const [file, content] of Object.entries(await managed(root))) {
        assert.ok(versions[file].has(content), `round ${round}: ${file} is neither the old nor the new content (${content?.length ?? 0} bytes)`)
      }

      if (round % 10 === 9) {
        const converged = await imagetrust(['apply', '--root', root, '-c', config])
        assert.equal(converged.code, 0, `round ${round}: ${converged.stderr}`)
        const check = await imagetrust(['check', '--root', root, '-c', config])
        assert.equal(check.code, 0, `round ${round}: ${check.stdout}${check.stderr}`)
      }
    }

    assert.ok(killedMidWay >= rounds / 2, `only ${killedMidWay} runs were killed before they finished`)
    // Converged, and nothing a killed run left behind survives the next apply.
    assert.equal((await imagetrust(['apply', '--root', root, '-c', configs.a])).code, 0)
    for (const sub of ['etc/containers', 'etc/containers/registries.d', 'var/lib/imagetrust']) {
      const names = await readdir(path.join(root, sub))
      assert.deepEqual(names.filter((n) => n.includes('.imagetrust-') || /^lock(\.\d+)?$/.test(n)), [], `temp or lock files left in ${sub}`)
    }

    for (const id of await readdir(path.join(root, 'var/lib/imagetrust/backups'))) {
      await readFile(path.join(root, 'var/lib/imagetrust/backups', id, 'manifest.json'))
    }
  })

  it('20 applies at once: the host ends equal to exactly one of them, whole; none fails', async () => {
    const root = await newRoot('concurrent')
    const configs = await Promise.all(
      Array.from({length: 20}, async (_, i) => {
        const file = path.join(dir, `c${i}.yaml`)
        await writeFile(file, trust(`c${i}-`, 40))
        return file
      }),
    )
    const results = await Promise.all(configs.map((config) => imagetrust(['apply', '--root', root, '-c', config, '--lock-timeout', '120'])))
    for (const [i, result] of results.entries()) assert.equal(result.code, 0, `run ${i}: ${result.stderr}`)
    const policy = JSON.parse(await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8'))
    const prefixes = new Set(Object.keys(policy.transports.docker).map((s) => /\/(c\d+)-\d+$/.exec(s)![1]))
    assert.equal(prefixes.size, 1, `scopes of several runs mixed: ${[...prefixes].join(', ')}`)
    const winner = Number([...prefixes][0].slice(1))
    assert.equal(Object.keys(policy.transports.docker).length, 40)
    const check = await imagetrust(['check', '--root', root, '-c', configs[winner], '--json'])
    assert.equal(check.code, 0, check.stdout)
  })

  it('the lock times out with a clear message when held too long, and nothing is written', async () => {
    const root = await newRoot('locked')
    await mkdir(path.join(root, 'var/lib/imagetrust'), {recursive: true})
    // Held by a live process: this test runner.
    const held = await acquireLock(path.join(root, 'var/lib/imagetrust/lock'), 1000)
    const config = path.join(dir, 'locked.yaml')
    await writeFile(config, trust('l', 3))
    const before = await hashTree(root)
    const result = await imagetrust(['apply', '--root', root, '-c', config, '--lock-timeout', '1'])
    assert.equal(result.code, 1)
    assert.match(result.stderr, new RegExp(`another imagetrust run \\(pid ${process.pid}\\) holds the lock ${root}/var/lib/imagetrust/lock; gave up after 1 s`))
    assert.deepEqual(await hashTree(root), before)
    await held.release()
  })

  /** Runs apply in a private mount namespace where `setup` mounted something odd over the root's files. */
  async function applyWithMounts(root: string, config: string, setup: string[]) {
    const script = ['set -e', ...setup, 'set +e', `${process.execPath} ${CLI} apply --root ${root} -c ${config}`].join('\n')
    return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script])
  }

  it('a full disk: a clear error, nothing changed (what was written is restored)', async () => {
    const root = await newRoot('full')
    const config = path.join(dir, 'full.yaml')
    await writeFile(config, trust('f', 800))
    const staged = path.join(dir, 'full-staged')
    await cp(path.join(root, 'etc/containers'), staged, {recursive: true})
    // A 64 KiB tmpfs over etc/containers: the new registries.d file fits, the new policy.json does not.
    const result = await applyWithMounts(root, config, [`mount -t tmpfs -o size=64k tmpfs ${root}/etc/containers`, `cp -a ${staged}/. ${root}/etc/containers/`, `trap 'cp -a ${root}/etc/containers/. ${staged}/' EXIT`])
    assert.equal(result.code, 1, result.stdout + result.stderr)
    assert.match(result.stderr, /ENOSPC/)
    assert.match(result.stderr, /nothing was changed: the \d+ file\(s\) already written were restored from backup/)
    assert.equal(await readFile(path.join(staged, 'policy.json'), 'utf8'), DEBIAN)
    await assert.rejects(readFile(path.join(staged, 'registries.d/imagetrust.yaml')), {code: 'ENOENT'})
    assert.deepEqual((await readdir(staged)).filter((n) => n.includes('.imagetrust-')), [])
    // That backup is spent: rollback has nothing of this apply to restore.
    const rollback = await imagetrust(['rollback', '--root', root])
    assert.equal(rollback.code, 1)
    assert.match(rollback.stderr, /no backup to roll back to/)
  })

  it('a read-only file system: a clear error, and the old files intact', async () => {
    const root = await newRoot('readonly')
    const config = path.join(dir, 'ro.yaml')
    await writeFile(config, trust('r', 5))
    const before = await hashTree(path.join(root, 'etc'))
    const result = await applyWithMounts(root, config, [`mount --bind ${root}/etc/containers ${root}/etc/containers`, `mount -o remount,bind,ro ${root}/etc/containers`])
    assert.equal(result.code, 1, result.stdout + result.stderr)
    assert.match(result.stderr, new RegExp(`cannot write ${root}/etc/containers/.*: EROFS`))
    assert.deepEqual(await hashTree(path.join(root, 'etc')), before)
  })
})
