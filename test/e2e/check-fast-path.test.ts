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

  /** A host after apply of `trust`, over `policy`; check with `env`. */
  async function appliedWith(name: string, policy: string, trust: string, env: NodeJS.ProcessEnv = {...process.env, HOME: '/home/fast'}) {
    const ws = path.join(dir, name)
    const root = path.join(ws, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), policy)
    await writeFile(path.join(ws, 'a.asc'), a.publicArmored)
    await writeFile(path.join(ws, 'b.asc'), b.publicArmored)
    const config = path.join(ws, 'trust.yaml')
    await writeFile(config, trust)
    const applied = await imagetrust(['apply', '--root', root, '-c', config], env)
    assert.equal(applied.code, 0, applied.stderr)
    const check = async (checkEnv = env) => {
      const result = await imagetrust(['check', '--root', root, '-c', config, '--json'], checkEnv)
      return {code: result.code, ...JSON.parse(result.stdout)}
    }

    const full = async (checkEnv = env) => {
      await rm(path.join(root, 'var/lib/imagetrust/fingerprint.json'), {force: true})
      return check(checkEnv)
    }

    return {root, config, check, full}
  }

  const ACCEPT_ALL = '{"default":[{"type":"insecureAcceptAnything"}]}\n'
  const SIGNED_X = 'keys:\n  a: {file: a.asc}\nscopes:\n  "registry.example.com/x":\n    policy: signed\n    keys: [a]\n'

  it('after an apply that leaves warnings, the fast path gives the full plan\'s warnings', async () => {
    const host = await appliedWith('warnings', ACCEPT_ALL, `version: 1\n${SIGNED_X}    lookaside: https://sigs.example.com\n`)
    // The lookaside leaves the trust file: that apply planned against a registries.d that still had it.
    await writeFile(host.config, `version: 1\n${SIGNED_X}`)
    assert.equal((await imagetrust(['apply', '--root', host.root, '-c', host.config], {...process.env, HOME: '/home/fast'})).code, 0)
    const fast = await host.check()
    assert.equal(fast.basis, 'unchanged since apply')
    assert.ok(fast.warnings.some((w: string) => /has no lookaside/.test(w)), JSON.stringify(fast.warnings))
    const full = await host.full()
    assert.deepEqual({...fast, basis: ''}, {...full, basis: ''})
  })

  it('the apply that removes a signed scope\'s lookaside prints the warning of the host it leaves, in its output and its --json, as check does', async () => {
    const env = {...process.env, HOME: '/home/fast'}
    for (const json of [false, true]) {
      const host = await appliedWith(`apply-warns-${json}`, ACCEPT_ALL, `version: 1\n${SIGNED_X}    lookaside: https://sigs.example.com\n`)
      await writeFile(host.config, `version: 1\n${SIGNED_X}`)
      const applied = await imagetrust(['apply', '--root', host.root, '-c', host.config, ...(json ? ['--json'] : [])], env)
      assert.equal(applied.code, 0, applied.stderr)
      const warnings: string[] = json ? JSON.parse(applied.stdout).warnings : applied.stderr.split('\n').filter((l) => l.startsWith('warning: ')).map((l) => l.slice('warning: '.length))
      assert.ok(json ? JSON.parse(applied.stdout).changed : /Changed \d+ file\(s\)/.test(applied.stdout), applied.stdout)
      assert.ok(warnings.some((w) => /scope "registry\.example\.com\/x" is signed but has no lookaside/.test(w)), `apply${json ? ' --json' : ''} did not warn: ${JSON.stringify(warnings)}`)
      // The same warnings as the next check gives, and the next (empty) apply.
      assert.deepEqual(warnings, (await host.full()).warnings)
      const again = await imagetrust(['apply', '--root', host.root, '-c', host.config, '--json'], env)
      assert.deepEqual(JSON.parse(again.stdout).warnings, warnings)
    }
  })

  it('after an apply that leaves a foreign rule overriding ours, the fast path reports it as the full plan does', async () => {
    const policy = JSON.stringify({default: [{type: 'insecureAcceptAnything'}], transports: {docker: {'registry.example.com/x/app': [{type: 'insecureAcceptAnything'}], '': [{type: 'insecureAcceptAnything'}]}}})
    const host = await appliedWith('overridden', policy, `version: 1\ndefault: reject\n${SIGNED_X}    lookaside: https://sigs.example.com\n`)
    const fast = await host.check()
    assert.equal(fast.basis, 'unchanged since apply')
    assert.equal(fast.code, 2)
    assert.deepEqual(
      fast.drift.map((d: {reasons: string[]; detail: string}) => [d.reasons, /overrides (scope "registry\.example\.com\/x"|the default)/.exec(d.detail)?.[1]]),
      [
        [['overridden'], 'scope "registry.example.com/x"'],
        [['overridden'], 'the default'],
      ],
    )
    const full = await host.full()
    assert.deepEqual({...fast, basis: ''}, {...full, basis: ''})
  })

  it('an engine replaced after apply sends check down the full path, which sees what the new engine needs', async () => {
    const trust = 'version: 1\nkeys:\n  a: {file: a.asc}\n  b: {file: b.asc}\nscopes:\n  "registry.example.com/x":\n    policy: signed\n    keys: [a, b]\n    lookaside: https://sigs.example.com\n'
    const host = await appliedWith('engine-swap', ACCEPT_ALL, trust)
    assert.equal((await host.check()).code, 0)
    // podman 4.1 vendors containers/image 5.21: no signedBy keyPaths, so two keys need one combined keyring.
    const bin = path.join(dir, 'old-podman-bin')
    await mkdir(bin, {recursive: true})
    await writeFile(path.join(bin, 'podman'), '#!/bin/sh\necho "podman version 4.1.0"\n', {mode: 0o755})
    const oldEngine = {...process.env, HOME: '/home/fast', PATH: `${bin}:${process.env.PATH}`}
    // The full path re-reads policy.json as that engine would, and that engine refuses keyPaths: never "in sync".
    const fast = await host.check(oldEngine)
    assert.equal(fast.code, 1, JSON.stringify(fast))
    assert.match(fast.error.message, /policy\.json:\d+:\d+ .*Unknown key "keyPaths"/)
    assert.deepEqual(fast, await host.full(oldEngine))
    assert.equal((await host.check()).code, 0, 'with the engine apply saw, the host is in sync')
  })

  it('a key remembered by the last apply expires with time alone', () => {
    const key = {name: 'k', hostPath: '/etc/pki/containers/k.gpg', keys: [{fingerprint: 'F'.repeat(40), algorithm: 'eddsa', userIds: [], expires: '2030-01-01T00:00:00.000Z'}]}
    assert.deepEqual(cachedKeys([key], new Date('2029-12-31T00:00:00Z'))[0].problems, [])
    assert.match(cachedKeys([key], new Date('2030-01-02T00:00:00Z'))[0].problems[0], /expired on 2030-01-01/)
  })
})
