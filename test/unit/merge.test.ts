import assert from 'node:assert/strict'
import {lstat, readFile, stat} from 'node:fs/promises'
import {afterEach, before, beforeEach, describe, it} from 'node:test'

import {HostRoot} from '../../src/host/paths.ts'
import {rollbackLatest} from '../../src/plan/backup.ts'
import {CIMAGE_5_21, makeKey, TestHost} from '../support/hostroot.ts'
import {hashTree} from '../support/tree.ts'

const POLICY = '/etc/containers/policy.json'
const REGD = '/etc/containers/registries.d'

describe('merge into an existing host', () => {
  let host: TestHost
  let alpha: Awaited<ReturnType<typeof makeKey>>
  let beta: Awaited<ReturnType<typeof makeKey>>

  before(async () => {
    ;[alpha, beta] = await Promise.all([makeKey('alpha'), makeKey('beta')])
  })

  beforeEach(async () => {
    host = await TestHost.create()
    await host.local('alpha.asc', alpha.publicKey)
    await host.local('beta.asc', beta.publicKey)
  })

  afterEach(async () => {
    await host?.remove()
  })

  function trust(scopes: string, extra = ''): Promise<string> {
    return host.local(
      'trust.yaml',
      [
        'version: 1',
        extra,
        'keys:',
        '  alpha: {file: alpha.asc}',
        '  beta: {file: beta.asc}',
        'scopes:',
        scopes,
      ].join('\n'),
    )
  }

  const SIGNED_ALPHA = '  "registry.example.com/apps":\n    policy: signed\n    keys: [alpha]\n    lookaside: https://sigs.example.com'

  it('keeps every foreign scope and transport of a RHEL-like policy, in order', async () => {
    await host.fixture('distro/rhel-like-policy.json', POLICY)
    const before = JSON.parse(await host.read(POLICY))
    await host.apply(await trust(SIGNED_ALPHA))
    const after = await host.policy()
    assert.deepEqual(Object.keys(after.transports!), ['docker', 'docker-daemon'])
    assert.deepEqual(Object.keys(after.transports!.docker), ['registry.access.redhat.com', 'registry.redhat.io', 'registry.example.com/apps'])
    assert.deepEqual(after.transports!.docker['registry.redhat.io'], before.transports.docker['registry.redhat.io'])
    assert.deepEqual(after.transports!['docker-daemon'], before.transports['docker-daemon'])
    assert.deepEqual(after.default, before.default, 'the default is left as found when the trust file does not set it')
    assert.deepEqual(after.transports!.docker['registry.example.com/apps'], [
      {type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/containers/alpha.gpg'},
    ])
  })

  it("keeps podman's example policy (inline keyData, reject rule) intact", async () => {
    await host.fixture('distro/debian12-podman-example-policy.json', POLICY)
    const before = JSON.parse(await host.read(POLICY))
    await host.apply(await trust(SIGNED_ALPHA, 'default: reject'))
    const after = await host.policy()
    assert.deepEqual(after.transports!.docker['registry.access.redhat.com'], before.transports.docker['registry.access.redhat.com'])
    assert.deepEqual(after.transports!.docker['docker.io/library/hello-world'], [{type: 'reject'}])
    assert.deepEqual(after.default, [{type: 'reject'}])
  })

  it('puts several keys into ONE requirement: keyPaths on containers/image ≥ 5.22', async () => {
    await host.fixture('distro/debian12-policy.json', POLICY)
    await host.apply(await trust('  "registry.example.com":\n    policy: signed\n    keys: [alpha, beta]'))
    assert.deepEqual((await host.policy()).transports!.docker['registry.example.com'], [
      {type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['/etc/pki/containers/alpha.gpg', '/etc/pki/containers/beta.gpg']},
    ])
  })

  it('puts several keys into ONE requirement: a combined keyring before 5.22', async () => {
    await host.fixture('distro/debian12-policy.json', POLICY)
    await host.apply(await trust('  "registry.example.com":\n    policy: signed\n    keys: [alpha, beta]'), {capabilities: CIMAGE_5_21})
    assert.deepEqual((await host.policy()).transports!.docker['registry.example.com'], [
      {type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/containers/alpha+beta.gpg'},
    ])
    const openpgp = await import('openpgp')
    const keyring = await openpgp.readKeys({armoredKeys: await host.read('/etc/pki/containers/alpha+beta.gpg')})
    assert.deepEqual(
      keyring.map((k) => k.getFingerprint().toUpperCase()),
      [alpha.fingerprint, beta.fingerprint],
    )
    // registries.d uses the pre-5.22 key names there too.
    await host.apply(await trust('  "registry.example.com":\n    policy: signed\n    keys: [alpha]\n    lookaside: https://s.example.com'), {capabilities: CIMAGE_5_21})
    assert.match(await host.read(`${REGD}/imagetrust.yaml`), /^ {4}sigstore: https:\/\/s\.example\.com$/m)
  })

  it('removes a scope, its registries.d entry and unused key files when they leave the trust file', async () => {
    await host.fixture('distro/rhel-like-policy.json', POLICY)
    const original = await host.read(POLICY)
    await host.apply(await trust(SIGNED_ALPHA))
    assert.ok((await host.policy()).transports!.docker['registry.example.com/apps'])
    await host.local('trust.yaml', 'version: 1\nkeys: {}\nscopes: {}\n')
    const result = await host.apply(`${host.dir}/trust.yaml`)
    assert.equal(result.changed, true)
    assert.deepEqual(JSON.parse(await host.read(POLICY)), JSON.parse(original))
    await assert.rejects(host.read(`${REGD}/imagetrust.yaml`), {code: 'ENOENT'})
    await assert.rejects(host.read('/etc/pki/containers/alpha.gpg'), {code: 'ENOENT'})
  })

  it("puts back the host's own rule for a scope the trust file took over, once it leaves the trust file", async () => {
    await host.fixture('distro/debian12-podman-example-policy.json', POLICY)
    const original = await host.read(POLICY)
    await host.apply(await trust('  "docker.io/library/hello-world":\n    policy: accept'))
    assert.deepEqual((await host.policy()).transports!.docker['docker.io/library/hello-world'], [{type: 'insecureAcceptAnything'}])
    await host.local('trust.yaml', 'version: 1\n')
    await host.apply(`${host.dir}/trust.yaml`)
    assert.deepEqual(JSON.parse(await host.read(POLICY)), JSON.parse(original))
  })

  it('keeps local transports accepting under default: reject, unless told otherwise', async () => {
    await host.fixture('distro/debian12-policy.json', POLICY)
    await host.apply(await trust(SIGNED_ALPHA, 'default: reject'))
    const policy = await host.policy()
    for (const name of ['containers-storage', 'docker-daemon', 'oci', 'oci-archive', 'docker-archive', 'dir']) {
      assert.deepEqual(policy.transports![name][''], [{type: 'insecureAcceptAnything'}], name)
    }

    await host.apply(await trust(SIGNED_ALPHA, 'default: reject\nlocalTransports: default'))
    assert.deepEqual(Object.keys((await host.policy()).transports!), ['docker'])
  })

  it('edits a registries.d scope defined in another file in place, keeping comments, and restores it later', async () => {
    await host.fixture('distro/debian12-policy.json', POLICY)
    const theirs = '# Our signature server, do not remove\ndocker:\n     registry.example.com/apps:\n         lookaside: https://old.example.com # the old one\n     other.example.com:\n         lookaside: https://other.example.com\n'
    await host.write(`${REGD}/ours-first.yaml`, theirs)
    await host.apply(await trust(SIGNED_ALPHA))
    const edited = await host.read(`${REGD}/ours-first.yaml`)
    assert.match(edited, /^# Our signature server, do not remove$/m)
    assert.match(edited, /lookaside: https:\/\/sigs\.example\.com/)
    assert.match(edited, /other\.example\.com:\n\s+lookaside: https:\/\/other\.example\.com/)
    await assert.rejects(host.read(`${REGD}/imagetrust.yaml`), {code: 'ENOENT'}, 'the scope must not be defined a second time')
    // Removing the scope from the trust file puts their value back.
    await host.local('trust.yaml', 'version: 1\n')
    await host.apply(`${host.dir}/trust.yaml`)
    const restored = await host.read(`${REGD}/ours-first.yaml`)
    assert.match(restored, /lookaside: https:\/\/old\.example\.com/)
    assert.match(restored, /^# Our signature server, do not remove$/m)
  })

  it('leaves the Red Hat registries.d files byte-identical', async () => {
    await host.fixture('distro/debian12-policy.json', POLICY)
    await host.fixture('distro/redhat-registry.redhat.io.yaml', `${REGD}/registry.redhat.io.yaml`)
    await host.fixture('distro/redhat-registry.access.redhat.com.yaml', `${REGD}/registry.access.redhat.com.yaml`)
    const before = await hashTree(host.path(REGD))
    await host.apply(await trust(SIGNED_ALPHA))
    const after = await hashTree(host.path(REGD))
    delete after['imagetrust.yaml']
    assert.deepEqual(after, before)
  })

  it('refuses, naming both files, when registries.d already defines the scope twice', async () => {
    await host.fixture('distro/debian12-policy.json', POLICY)
    await host.write(`${REGD}/a.yaml`, 'docker:\n  registry.example.com/apps:\n    lookaside: https://a.example.com\n')
    await host.write(`${REGD}/b.yaml`, 'docker:\n  registry.example.com/apps:\n    lookaside: https://b.example.com\n')
    const before = await hashTree(host.root)
    await assert.rejects(host.apply(await trust(SIGNED_ALPHA)), (error: Error) => {
      assert.match(error.message, /a\.yaml:2 and .*b\.yaml:2/)
      assert.match(error.message, /trust\.yaml:7: /)
      assert.match(error.message, new RegExp(`${host.root}/etc/containers/registries.d/a.yaml:2`))
      return true
    })
    assert.deepEqual(await hashTree(host.root), before)
  })

  it('refuses a corrupt policy.json with its position, writes nothing; --replace-invalid backs it up and replaces it', async () => {
    await host.write(POLICY, '{\n  "default": [{"type": "insecureAcceptAnything"}],\n  "transports": {"docker": {}},\n}\n')
    const config = await trust(SIGNED_ALPHA)
    const before = await hashTree(host.root)
    await assert.rejects(host.apply(config), /policy\.json:4:1.*invalid character '}'/s)
    assert.deepEqual(await hashTree(host.root), before)
    const result = await host.apply(config, {replaceInvalid: true})
    assert.ok(result.backup)
    assert.ok((await host.policy()).transports!.docker['registry.example.com/apps'])
    await rollbackLatest(new HostRoot(host.root), {})
    assert.deepEqual(await hashTree(host.root, {exclude: /^var\//}), before)
  })

  it('replaces a symlinked policy.json with a real file, leaving the target alone; rollback restores the link', async () => {
    // Relative, so that it resolves inside the sandbox root as it would on a host.
    await host.fixture('distro/debian12-policy.json', '/usr/share/containers/policy.json')
    await host.symlink('../../usr/share/containers/policy.json', POLICY)
    const target = await host.read('/usr/share/containers/policy.json')
    await host.apply(await trust(SIGNED_ALPHA))
    assert.equal((await lstat(host.path(POLICY))).isSymbolicLink(), false)
    assert.equal(await host.read('/usr/share/containers/policy.json'), target)
    await rollbackLatest(new HostRoot(host.root), {})
    assert.equal((await lstat(host.path(POLICY))).isSymbolicLink(), true)
    assert.equal(await host.read(POLICY), target)
  })

  it('keeps the mode of policy.json; installs keys 0644; check sees a key mode change', async () => {
    await host.fixture('distro/debian12-policy.json', POLICY)
    const {chmod} = await import('node:fs/promises')
    await chmod(host.path(POLICY), 0o600)
    const config = await trust(SIGNED_ALPHA)
    await host.apply(config)
    assert.equal((await stat(host.path(POLICY))).mode & 0o777, 0o600)
    assert.equal((await stat(host.path('/etc/pki/containers/alpha.gpg'))).mode & 0o777, 0o644)
    await chmod(host.path('/etc/pki/containers/alpha.gpg'), 0o600)
    const {plan} = await host.plan(config)
    assert.deepEqual(
      plan.changes.map((c) => [c.hostPath, c.reasons]),
      [['/etc/pki/containers/alpha.gpg', ['mode']]],
    )
  })

  it('reports a changed and a missing key file as drift', async () => {
    await host.fixture('distro/debian12-policy.json', POLICY)
    const config = await trust('  "registry.example.com":\n    policy: signed\n    keys: [alpha, beta]')
    await host.apply(config)
    await host.write('/etc/pki/containers/alpha.gpg', beta.publicKey)
    const {rm} = await import('node:fs/promises')
    await rm(host.path('/etc/pki/containers/beta.gpg'))
    const {plan} = await host.plan(config)
    assert.deepEqual(
      plan.changes.map((c) => [c.hostPath, c.action, c.reasons]),
      [
        ['/etc/pki/containers/alpha.gpg', 'update', ['changed key']],
        ['/etc/pki/containers/beta.gpg', 'create', ['missing key']],
      ],
    )
  })

  it('--dry-run writes nothing, and a second apply changes no byte', async () => {
    await host.fixture('distro/debian12-policy.json', POLICY)
    const config = await trust(SIGNED_ALPHA, 'default: reject')
    const before = await hashTree(host.root)
    const dry = await host.apply(config, {dryRun: true})
    assert.equal(dry.changed, true)
    assert.deepEqual(await hashTree(host.root), before)
    await host.apply(config)
    const once = await hashTree(host.root)
    const again = await host.apply(config)
    assert.equal(again.changed, false)
    assert.equal(again.backup, null)
    assert.deepEqual(await hashTree(host.root), once)
  })

  it('creates policy.json when the host has none, starting from accept-anything', async () => {
    const result = await host.apply(await trust(SIGNED_ALPHA))
    assert.ok(result.notes.some((w) => /does not exist/.test(w)))
    assert.deepEqual((await host.policy()).default, [{type: 'insecureAcceptAnything'}])
  })

  it('never writes a secret key; refuses a fingerprint mismatch showing both, and writes nothing', async () => {
    await host.fixture('distro/debian12-policy.json', POLICY)
    await host.local('secret.asc', alpha.privateKey)
    await host.local('trust.yaml', `version: 1\nkeys:\n  leak: {file: secret.asc}\nscopes: {}\n`)
    const before = await hashTree(host.root)
    await assert.rejects(host.apply(`${host.dir}/trust.yaml`), /trust\.yaml:3: key "leak" is a secret \(private\) key/)
    await host.local('trust.yaml', `version: 1\nkeys:\n  alpha: {file: alpha.asc, fingerprint: ${beta.fingerprint}}\n`)
    await assert.rejects(host.apply(`${host.dir}/trust.yaml`), (error: Error) => {
      assert.match(error.message, new RegExp(`pinned: ${beta.fingerprint}`))
      assert.match(error.message, new RegExp(`found: +${alpha.fingerprint}`))
      return true
    })
    assert.deepEqual(await hashTree(host.root), before)
    const everything = Object.keys(await hashTree(host.root))
    for (const file of everything) assert.doesNotMatch(await readFile(host.path(`/${file}`), 'utf8'), /PRIVATE KEY/)
  })
})
