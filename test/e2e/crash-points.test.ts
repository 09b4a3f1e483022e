/**
 * An apply killed between any two of its renames (IMAGETRUST_TEST_CRASH_AFTER)
 * must not change what the next runs do: after an apply of the same trust
 * file, then of another, the host is byte for byte what it is without the
 * crash, and check is in sync. No scope of ours turns foreign, no foreign one ours.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {makeGpgKey} from '../support/gpg.ts'
import {REPO_ROOT} from '../support/lab.ts'

const CLI = path.join(REPO_ROOT, 'bin/run.js')

/** A policy.json with a foreign scope the trust file A takes over, and one nobody touches. */
const ORIGINAL_POLICY = JSON.stringify(
  {
    default: [{type: 'insecureAcceptAnything'}],
    transports: {docker: {'quay.io/taken': [{type: 'reject'}], 'quay.io/foreign': [{type: 'reject'}]}},
  },
  null,
  4,
) + '\n'
const FOREIGN_REGISTRIES = 'docker:\n  quay.io/foreign:\n    lookaside: https://foreign.example.com/sigs\n'

function trustA(): string {
  return `version: 1
default: reject
keys:
  k1: {file: k1.asc}
  k2: {file: k2.asc}
scopes:
  registry.example.com/a-signed: {policy: signed, keys: [k1], lookaside: https://sigs.example.com/a}
  registry.example.com/both: {policy: signed, keys: [k1, k2], lookaside: https://sigs.example.com/both}
  registry.example.com/shared: {policy: accept}
  registry.example.com/a-reject: {policy: reject}
  quay.io/taken: {policy: accept}
`
}

function trustB(): string {
  return `version: 1
default: accept
keys:
  k2: {file: k2.asc}
scopes:
  registry.example.com/b-signed: {policy: signed, keys: [k2], lookaside: https://sigs.example.com/b}
  registry.example.com/shared: {policy: reject}
  registry.example.com/b-accept: {policy: accept}
`
}

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {env: {...process.env, ...env}, stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({code, signal, stderr}))
  })
}

/** policy.json, every registries.d file and every key file, byte for byte, with their modes. */
async function hostFiles(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const dir of ['etc/containers', 'etc/containers/registries.d', 'etc/pki/containers']) {
    for (const entry of await readdir(path.join(root, dir), {withFileTypes: true}).catch(() => [])) {
      if (entry.isFile()) out[`${dir}/${entry.name}`] = await readFile(path.join(root, dir, entry.name), 'utf8')
    }
  }

  return out
}

describe('a kill point between every pair of renames', () => {
  let dir: string
  const configs = {a: '', b: ''}

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-crash-'))
    for (const name of ['k1', 'k2']) await writeFile(path.join(dir, `${name}.asc`), (await makeGpgKey(dir, name)).publicArmored)
    configs.a = path.join(dir, 'a.yaml')
    configs.b = path.join(dir, 'b.yaml')
    await writeFile(configs.a, trustA())
    await writeFile(configs.b, trustB())
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  async function newRoot(name: string): Promise<string> {
    const root = path.join(dir, name)
    await mkdir(path.join(root, 'etc/containers/registries.d'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), ORIGINAL_POLICY)
    await writeFile(path.join(root, 'etc/containers/registries.d/foreign.yaml'), FOREIGN_REGISTRIES)
    return root
  }

  async function apply(root: string, config: string, env: NodeJS.ProcessEnv = {}): Promise<Exit> {
    return cli(['apply', '--root', root, '-c', config], env)
  }

  async function assertInSync(root: string, config: string, what: string): Promise<void> {
    const check = await cli(['check', '--root', root, '-c', config])
    assert.equal(check.code, 0, `${what}: check is not in sync: ${check.stderr}`)
  }

  /** `first` is applied crash-free (or not at all); `crashed` is killed after N renames, then applied again, then `next`. */
  async function crashEveryWhere(name: string, first: string | undefined, crashed: string, next: string): Promise<number> {
    // What the host holds after each step when nothing crashes.
    const reference = await newRoot(`${name}-reference`)
    if (first) assert.equal((await apply(reference, first)).code, 0)
    const base = path.join(dir, `${name}-base`)
    await cp(reference, base, {recursive: true})
    assert.equal((await apply(reference, crashed)).code, 0)
    const afterCrashed = await hostFiles(reference)
    assert.equal((await apply(reference, next)).code, 0)
    const afterNext = await hostFiles(reference)

    let points = 0
    for (let n = 0; ; n++) {
      const root = path.join(dir, `${name}-crash-${n}`)
      await cp(base, root, {recursive: true})
      const killed = await apply(root, crashed, {IMAGETRUST_TEST_CRASH_AFTER: String(n)})
      if (killed.signal === null) {
        assert.equal(killed.code, 0, killed.stderr)
        break // past the last rename: the apply finished
      }

      assert.equal(killed.signal, 'SIGKILL')
      points++
      const what = `${name}, killed after rename ${n}`
      const again = await apply(root, crashed)
      assert.equal(again.code, 0, `${what}: ${again.stderr}`)
      assert.deepEqual(await hostFiles(root), afterCrashed, `${what}: the apply of the same file differs from a crash-free one`)
      await assertInSync(root, crashed, what)
      const other = await apply(root, next)
      assert.equal(other.code, 0, `${what}: ${other.stderr}`)
      assert.deepEqual(await hostFiles(root), afterNext, `${what}: the apply of the other file differs from a crash-free one`)
      await assertInSync(root, next, what)
      await rm(root, {recursive: true, force: true})
    }

    return points
  }

  it('the first apply on a fresh host, killed after each rename: the next applies end where a crash-free run does', async () => {
    const points = await crashEveryWhere('fresh', undefined, configs.a, configs.b)
    // Key files, registries.d, policy.json, state.json: at least five points.
    assert.ok(points >= 5, `only ${points} kill points`)
  })

  it('an apply that replaces another trust file, killed after each rename: the next applies end where a crash-free run does', async () => {
    const points = await crashEveryWhere('switch', configs.a, configs.b, configs.a)
    assert.ok(points >= 5, `only ${points} kill points`)
  })
})
