import assert from 'node:assert/strict'
import {chmod, chown, readFile, stat} from 'node:fs/promises'
import {afterEach, before, beforeEach, describe, it} from 'node:test'

import {planDrift} from '../../src/plan/drift.ts'
import {makeKey, TestHost} from '../support/hostroot.ts'
import {hashTree} from '../support/tree.ts'

const POLICY = '/etc/containers/policy.json'
const OWNED_YAML = '/etc/containers/registries.d/imagetrust.yaml'
const KEY = '/etc/pki/containers/acme.gpg'

describe('ownership is proven, not assumed', () => {
  let host: TestHost
  let acme: Awaited<ReturnType<typeof makeKey>>
  let other: Awaited<ReturnType<typeof makeKey>>

  before(async () => {
    ;[acme, other] = await Promise.all([makeKey('acme'), makeKey('other')])
  })

  beforeEach(async () => {
    host = await TestHost.create()
    await host.local('acme.asc', acme.publicKey)
    await host.write(POLICY, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
  })

  afterEach(async () => {
    await host?.remove()
  })

  const trust = (scopes = '  "registry.example.com":\n    policy: signed\n    keys: [acme]\n    lookaside: https://sigs.example.com') =>
    host.local('trust.yaml', `version: 1\nkeys:\n  acme: {file: acme.asc}\nscopes:\n${scopes}\n`)
  const noKeys = () => host.local('trust.yaml', 'version: 1\nscopes:\n  "registry.example.com":\n    policy: reject\n')

  it('a foreign key file of the same name holding another key is refused, naming who uses it; nothing is written', async () => {
    await host.write(KEY, other.publicKey)
    await host.write(POLICY, JSON.stringify({default: [{type: 'insecureAcceptAnything'}], transports: {docker: {'quay.io/theirs': [{type: 'signedBy', keyType: 'GPGKeys', keyPath: KEY}]}}}))
    const before = await hashTree(host.root)
    await assert.rejects(host.apply(await trust()), (error: Error & {hint?: string}) => {
      assert.match(error.message, /acme\.gpg already exists and is not imagetrust's .*policy scopes use it: docker:quay\.io\/theirs in \/etc\/containers\/policy\.json: refusing to overwrite this key file/)
      assert.match(error.hint ?? '', /rename the key in the trust file/)
      return true
    })
    assert.deepEqual(await hashTree(host.root), before)
  })

  it('a foreign key file identical to ours is adopted', async () => {
    const applied = await host.apply(await trust())
    assert.ok(applied.changed)
    // Same bytes as imagetrust writes: a fresh host with that file adopts it.
    const written = await host.read(KEY)
    const second = await TestHost.create()
    try {
      await second.local('acme.asc', acme.publicKey)
      await second.write(POLICY, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
      await second.write(KEY, written)
      const config = await second.local('trust.yaml', `version: 1\nkeys:\n  acme: {file: acme.asc}\nscopes:\n  "registry.example.com":\n    policy: signed\n    keys: [acme]\n`)
      const result = await second.apply(config)
      assert.ok(!result.files.some((f) => f.path.endsWith('acme.gpg')))
    } finally {
      await second.remove()
    }
  })

  it('a key file we wrote and someone changed since is left in place when the key goes', async () => {
    await host.apply(await trust())
    await host.write(KEY, other.publicKey)
    const result = await host.apply(await noKeys())
    assert.equal(await host.read(KEY), other.publicKey)
    assert.ok(result.warnings.some((w) => /acme\.gpg is no longer needed, but it changed since imagetrust wrote it: left in place/.test(w)), JSON.stringify(result.warnings))
    assert.equal((await host.apply(await noKeys())).changed, false)
  })

  it('a key file a foreign rule still names is never deleted when the key leaves the trust file', async () => {
    await host.apply(await trust())
    const policy = await host.policy()
    policy.transports!.docker['quay.io/theirs'] = [{type: 'signedBy', keyType: 'GPGKeys', keyPaths: [KEY]}]
    await host.write(POLICY, JSON.stringify(policy))
    const result = await host.apply(await noKeys())
    await host.read(KEY) // still there
    assert.ok(result.warnings.some((w) => /acme\.gpg is no longer needed by the trust file, but docker:quay\.io\/theirs in \/etc\/containers\/policy\.json still uses it/.test(w)), JSON.stringify(result.warnings))
    assert.ok(!result.files.some((f) => f.path.endsWith('acme.gpg')))
  })

  it('a key file we wrote is deleted when the key goes', async () => {
    await host.apply(await trust())
    await host.apply(await noKeys())
    await assert.rejects(readFile(host.path(KEY)))
  })

  it('a foreign imagetrust.yaml is kept when we need no entries, refused when ours would differ, adopted when identical', async () => {
    const theirs = 'docker:\n  quay.io:\n    lookaside: https://theirs.example.com\n'
    await host.write(OWNED_YAML, theirs)
    await host.apply(await noKeys())
    assert.equal(await host.read(OWNED_YAML), theirs, 'not deleted on the first apply')

    const before = await hashTree(host.root)
    await assert.rejects(host.apply(await trust()), (error: Error & {hint?: string}) => {
      assert.match(error.message, /imagetrust\.yaml exists and is not imagetrust's \(no record in its state file\): refusing to overwrite it/)
      assert.match(error.hint ?? '', /rename that file \(e\.g\. to local\.yaml\)/)
      return true
    })
    assert.deepEqual(await hashTree(host.root), before)
  })

  it('an identical foreign imagetrust.yaml is adopted, and removed with our last entry', async () => {
    const first = await TestHost.create()
    let ours: string
    try {
      await first.local('acme.asc', acme.publicKey)
      await first.apply(await first.local('trust.yaml', `version: 1\nkeys:\n  acme: {file: acme.asc}\nscopes:\n  "registry.example.com":\n    policy: signed\n    keys: [acme]\n    lookaside: https://sigs.example.com\n`))
      ours = await first.read(OWNED_YAML)
    } finally {
      await first.remove()
    }

    await host.write(OWNED_YAML, ours)
    const result = await host.apply(await trust())
    assert.ok(!result.files.some((f) => f.path.endsWith('imagetrust.yaml')))
    await host.apply(await noKeys())
    await assert.rejects(readFile(host.path(OWNED_YAML)))
  })
})

describe('modes and owners of managed files are desired state', () => {
  let host: TestHost
  beforeEach(async () => {
    host = await TestHost.create()
    await host.write(POLICY, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
  })
  afterEach(async () => {
    await host?.remove()
  })

  const config = () => host.local('trust.yaml', 'version: 1\nscopes:\n  "registry.example.com":\n    policy: reject\n    lookaside: https://sigs.example.com\n')

  async function drift(trust: string) {
    const prepared = await host.plan(trust)
    return planDrift(prepared.plan, (p) => prepared.root.resolve(p))
  }

  const mode = async (hostPath: string) => (await stat(host.path(hostPath))).mode & 0o7777

  for (const [file, hostPath] of [
    ['policy.json', POLICY],
    ['registries.d/imagetrust.yaml', OWNED_YAML],
  ]) {
    it(`${file} writable by group or world is drift (mode); apply repairs it; a second apply changes nothing`, async () => {
      const trust = await config()
      await host.apply(trust)
      await chmod(host.path(hostPath), 0o666)
      assert.deepEqual(
        (await drift(trust)).map((d) => [d.path, d.reasons]),
        [[host.path(hostPath), ['mode']]],
      )
      const before = await host.read(hostPath)
      await host.apply(trust)
      assert.equal(await mode(hostPath), 0o644)
      assert.equal(await host.read(hostPath), before)
      assert.deepEqual(await drift(trust), [])
      assert.equal((await host.apply(trust)).changed, false)
    })
  }

  it('a stricter mode is kept', async () => {
    const trust = await config()
    await host.apply(trust)
    await chmod(host.path(POLICY), 0o600)
    assert.deepEqual(await drift(trust), [])
  })

  it('another owner is drift (owner); apply gives it back to root', async () => {
    const trust = await config()
    await host.apply(trust)
    await chown(host.path(POLICY), 1234, 1234)
    assert.deepEqual((await drift(trust)).map((d) => d.reasons), [['owner']])
    await host.apply(trust)
    const info = await stat(host.path(POLICY))
    assert.deepEqual([info.uid, info.gid], [0, 0])
  })
})

describe('a registries.d that containers/image cannot load is drift', () => {
  let host: TestHost
  beforeEach(async () => {
    host = await TestHost.create()
    await host.write(POLICY, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
  })
  afterEach(async () => {
    await host?.remove()
  })

  const config = () => host.local('trust.yaml', 'version: 1\nscopes:\n  "registry.example.com":\n    policy: reject\n')
  async function drift(trust: string) {
    const prepared = await host.plan(trust)
    return planDrift(prepared.plan, (p) => prepared.root.resolve(p))
  }

  it('a dangling *.yaml symlink (every pull fails on it)', async () => {
    const trust = await config()
    await host.apply(trust)
    await host.symlink('/nonexistent.yaml', '/etc/containers/registries.d/dangling.yaml')
    const found = await drift(trust)
    assert.deepEqual(found.map((d) => [d.path, d.reasons]), [[host.path('/etc/containers/registries.d/dangling.yaml'), ['broken']]])
    assert.match(found[0].detail ?? '', /a symlink to \/nonexistent\.yaml, which does not exist/)
  })

  it('default-docker defined in two files', async () => {
    const trust = await config()
    await host.apply(trust)
    await host.write('/etc/containers/registries.d/a.yaml', 'default-docker:\n  lookaside: https://a.example.com\n')
    await host.write('/etc/containers/registries.d/b.yaml', 'default-docker:\n  lookaside: https://b.example.com\n')
    assert.deepEqual((await drift(trust)).map((d) => d.reasons), [['broken']])
  })
})

describe('odd but valid registries.d files', () => {
  it('a section for our scope with nothing under it is filled in, not a crash', async () => {
    const host = await TestHost.create()
    try {
      await host.write(POLICY, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
      await host.write('/etc/containers/registries.d/site.yaml', '# ours\ndocker:\n  registry.example.com:\n')
      const config = await host.local('trust.yaml', 'version: 1\nscopes:\n  "registry.example.com":\n    policy: reject\n    lookaside: https://sigs.example.com\n')
      await host.apply(config)
      assert.match(await host.read('/etc/containers/registries.d/site.yaml'), /# ours\ndocker:\n {2}registry\.example\.com:\n {4}lookaside: https:\/\/sigs\.example\.com\n/)
      assert.equal((await host.apply(config)).changed, false)
    } finally {
      await host.remove()
    }
  })
})

describe('policies in force that are not the managed one', () => {
  it('a CRI-O per-namespace policy imagetrust does not generate is drift (shadowed), naming the namespace', async () => {
    const host = await TestHost.create()
    try {
      await host.write(POLICY, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
      await host.write('/etc/crio/crio.conf', '[crio.image]\nsignature_policy_dir = "/etc/crio/policies"\n')
      const config = await host.local('trust.yaml', 'version: 1\ndefault: reject\nscopes:\n  "registry.example.com":\n    policy: reject\n')
      await host.apply(config)
      const prepared = await host.plan(config)
      assert.deepEqual(planDrift(prepared.plan, (p) => prepared.root.resolve(p)), [])
      await host.write('/etc/crio/policies/dev.json', '{"default":[{"type":"insecureAcceptAnything"}]}\n')
      const after = await host.plan(config)
      const drift = planDrift(after.plan, (p) => after.root.resolve(p))
      assert.deepEqual(drift.map((d) => [d.path, d.reasons]), [[host.path('/etc/crio/policies/dev.json'), ['shadowed']]])
      assert.match(drift[0].detail ?? '', /pods in namespace dev/)
    } finally {
      await host.remove()
    }
  })
})

describe('directories of managed files', () => {
  it('a key directory writable by everyone is drift (mode) with the fix named; a sticky one is not', async () => {
    const host = await TestHost.create()
    try {
      await host.write(POLICY, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
      const config = await host.local('trust.yaml', 'version: 1\nscopes:\n  "registry.example.com":\n    policy: reject\n')
      await host.apply(config)
      await host.write('/etc/pki/containers/.keep', '')
      await chmod(host.path('/etc/pki/containers'), 0o777)
      let prepared = await host.plan(config)
      const drift = planDrift(prepared.plan, (p) => prepared.root.resolve(p))
      assert.deepEqual(drift.map((d) => [d.path, d.kind, d.reasons]), [[host.path('/etc/pki/containers'), 'key', ['mode']]])
      assert.match(drift[0].detail ?? '', /writable by others \(mode 0777\): chmod go-w/)
      await chmod(host.path('/etc/pki/containers'), 0o1777)
      prepared = await host.plan(config)
      assert.deepEqual(planDrift(prepared.plan, (p) => prepared.root.resolve(p)), [])
    } finally {
      await host.remove()
    }
  })
})

describe('registries.d sections that decide instead of ours', () => {
  it('a foreign section below our scope with another lookaside is warned about, naming both', async () => {
    const host = await TestHost.create()
    try {
      await host.write(POLICY, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
      await host.write('/etc/containers/registries.d/site.yaml', 'docker:\n  registry.example.com/prod/app:\n    lookaside: http://127.0.0.1:9/\n')
      const config = await host.local('trust.yaml', 'version: 1\nscopes:\n  "registry.example.com":\n    policy: reject\n    lookaside: https://sigs.example.com\n')
      const applied = await host.apply(config)
      assert.ok(
        applied.warnings.some((w) => /site\.yaml:2: section "registry\.example\.com\/prod\/app" sets lookaside: http:\/\/127\.0\.0\.1:9\/ for the images it covers, not the trust file's https:\/\/sigs\.example\.com for "registry\.example\.com"/.test(w)),
        JSON.stringify(applied.warnings),
      )
    } finally {
      await host.remove()
    }
  })
})
