/**
 * check answers from a fingerprint of the last apply's inputs when nothing
 * changed. It must never hide drift: after a change to any kind of input,
 * its answer equals the full plan's (the same check with the fingerprint removed).
 */
import assert from 'node:assert/strict'
import {chmod, mkdir, mkdtemp, rm, unlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {cachedKeys} from '../../src/plan/drift.ts'
import {makeGpgKey, type MadeGpgKey} from '../support/gpg.ts'
import {imagetrust} from '../support/lab.ts'

describe('check fast path never hides drift', () => {
  let dir: string
  let a: MadeGpgKey
  let b: MadeGpgKey

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-fast-'))
    ;[a, b] = [await makeGpgKey(dir, 'fasta'), await makeGpgKey(dir, 'fastb')]
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  /** A host after apply, and how to check it (HOME is fixed so shadowing files are ours to create). */
  async function applied(name: string) {
    const ws = path.join(dir, name)
    const root = path.join(ws, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await writeFile(path.join(ws, 'a.asc'), a.publicArmored)
    const config = path.join(ws, 'trust.yaml')
    await writeFile(config, `version: 1\ndefault: reject\nkeys:\n  a: {file: a.asc}\nscopes:\n  "registry.example.com/x":\n    policy: signed\n    keys: [a]\n    lookaside: https://sigs.example.com\n`)
    const env = {...process.env, HOME: '/home/fast'}
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config], env)).code, 0)
    const check = async () => {
      const result = await imagetrust(['check', '--root', root, '-c', config, '--json'], env)
      return {code: result.code, ...JSON.parse(result.stdout)}
    }

    return {ws, root, config, env, check}
  }

  it('answers from the fingerprint when nothing changed, the same as the full plan', async () => {
    const host = await applied('unchanged')
    const fast = await host.check()
    assert.equal(fast.basis, 'unchanged since apply')
    assert.equal(fast.code, 0)
    await unlink(path.join(host.root, 'var/lib/imagetrust/fingerprint.json'))
    const full = await host.check()
    assert.equal(full.basis, 'full plan')
    assert.deepEqual({...fast, basis: ''}, {...full, basis: ''})
  })

  const CHANGES: Array<[string, (h: Awaited<ReturnType<typeof applied>>) => Promise<void>]> = [
    ['policy.json edited', async (h) => writeFile(path.join(h.root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')],
    ['key file mode', async (h) => chmod(path.join(h.root, 'etc/pki/containers/a.gpg'), 0o600)],
    ['key file deleted', async (h) => unlink(path.join(h.root, 'etc/pki/containers/a.gpg'))],
    ['key file replaced', async (h) => writeFile(path.join(h.root, 'etc/pki/containers/a.gpg'), b.publicArmored)],
    ['owned registries.d file deleted', async (h) => unlink(path.join(h.root, 'etc/containers/registries.d/imagetrust.yaml'))],
    [
      'a foreign registries.d file now defines our scope',
      async (h) => writeFile(path.join(h.root, 'etc/containers/registries.d/theirs.yaml'), 'docker:\n  registry.example.com/x:\n    lookaside: https://other.example.com\n'),
    ],
    ['trust file gains a scope', async (h) => writeFile(h.config, `${await import('node:fs/promises').then((fs) => fs.readFile(h.config, 'utf8'))}  "registry.example.com/y":\n    policy: reject\n`)],
    ['key source replaced', async (h) => writeFile(path.join(h.ws, 'a.asc'), b.publicArmored)],
    [
      'a $HOME policy now shadows /etc',
      async (h) => {
        await mkdir(path.join(h.root, 'home/fast/.config/containers'), {recursive: true})
        await writeFile(path.join(h.root, 'home/fast/.config/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
      },
    ],
    [
      'a CRI-O drop-in now points signature_policy elsewhere',
      async (h) => {
        await mkdir(path.join(h.root, 'etc/crio/crio.conf.d'), {recursive: true})
        await writeFile(path.join(h.root, 'etc/crio/crio.conf.d/50-policy.conf'), '[crio.image]\nsignature_policy = "/etc/crio/policy.json"\n')
      },
    ],
  ]

  for (const [name, change] of CHANGES) {
    it(`${name}: drift, exactly as the full plan reports it`, async () => {
      const host = await applied(name.replaceAll(/\W+/g, '-'))
      assert.equal((await host.check()).basis, 'unchanged since apply')
      await change(host)
      const fast = await host.check()
      assert.equal(fast.code, 2, JSON.stringify(fast))
      assert.equal(fast.basis, 'full plan')
      await unlink(path.join(host.root, 'var/lib/imagetrust/fingerprint.json'))
      const full = await host.check()
      assert.deepEqual(fast, full)
    })
  }

  it('a key remembered by the last apply expires with time alone', () => {
    const key = {name: 'k', hostPath: '/etc/pki/containers/k.gpg', keys: [{fingerprint: 'F'.repeat(40), algorithm: 'eddsa', userIds: [], expires: '2030-01-01T00:00:00.000Z'}]}
    assert.deepEqual(cachedKeys([key], new Date('2029-12-31T00:00:00Z'))[0].problems, [])
    assert.match(cachedKeys([key], new Date('2030-01-02T00:00:00Z'))[0].problems[0], /expired on 2030-01-01/)
  })
})
