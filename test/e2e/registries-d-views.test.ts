/**
 * registries.d across directories, proven with the lab's policy oracles
 * (containers/image 5.38 and 5.40, which report load errors, the lookaside
 * they use, and whether a pull copies the image). A vendor file in
 * /usr/share/containers/registries.d defines the trust file's scope:
 * - what imagetrust wrote before it knew (the scope again in imagetrust.yaml,
 *   which is still right for engines up to 5.39) makes every 5.40 pull fail;
 *   check reports it as drift `broken`;
 * - on a 5.40 host apply writes a same-named override in /etc instead, which
 *   both versions read: pulls work and the lookaside is the trust file's;
 *   releasing the scope deletes the override and the vendor view is back;
 * - `apply --user` on 5.40 copies nothing: the system entries stay visible.
 * The host's engines are the lab's, on a PATH without Debian's podman and
 * skopeo (skopeo 1.23 = 5.40; CRI-O 1.36 = 5.38 for the mixed host).
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, readFile, readdir, symlink, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, REPO_ROOT, imagetrust, run} from '../support/lab.ts'
import {type OracleAnswer, labBin, oracleBin} from '../support/lab-bin.ts'
import {assertMatchesSchema} from '../support/schema.ts'

const USR = 'usr/share/containers/registries.d'
const ETC = 'etc/containers/registries.d'

describe('registries.d across directories (vendor files, 5.38 and 5.40 oracles)', {timeout: 600_000}, () => {
  let lab: Lab
  let key: GpgKey
  const images = {signed: '', unsigned: '', vendor: ''}
  let paths: {only540: string; mixed: string; debian: string}
  let scope: string

  before(async () => {
    lab = await Lab.started('itrv-')
    // RSA: the lab's engines read keys with x/crypto/openpgp, which has no EdDSA.
    key = await lab.makeGpgKey('regd', {keyType: 'rsa'})
    await lab.buildImage('localhost/regd:1', 'registries.d views')
    images.signed = await lab.push('localhost/regd:1', 'team/app:1', key)
    images.unsigned = await lab.push('localhost/regd:1', 'team/unsigned:1')
    // A scope the vendor configures and the trust file does not: its lookaside must survive (port 1: nothing is contacted).
    images.vendor = '127.0.0.1:1/vendor/app:1'
    scope = `${lab.registry}/team`
    await writeFile(path.join(lab.dir, 'key.asc'), key.publicArmored)
    await writeTrust('trust.yaml', true)
    await writeTrust('released.yaml', false)
    paths = {only540: await hostBin('bin-540', ['skopeo']), mixed: await hostBin('bin-mixed', ['skopeo', 'crio']), debian: process.env.PATH!}
  })

  after(async () => {
    await lab?.stop()
  })

  async function writeTrust(name: string, withScope: boolean): Promise<void> {
    const scopes = withScope ? [`  "${scope}":`, '    policy: signed', '    keys: [team]', `    lookaside: ${lab.lookasideUrl}`] : ['  {}']
    await writeFile(path.join(lab.dir, name), ['version: 1', 'keys:', `  team: {file: key.asc, fingerprint: ${key.fingerprint}}`, withScope ? 'scopes:' : 'scopes:', ...scopes, ''].join('\n'))
  }

  /** A PATH whose container engines are these lab binaries only. */
  async function hostBin(name: string, tools: string[]): Promise<string> {
    const bin = path.join(lab.dir, name)
    await mkdir(bin)
    const hidden = new Set(['podman', 'skopeo', 'buildah', 'crio', 'crictl'])
    for (const dir of ['/usr/local/bin', '/usr/bin', '/usr/sbin']) {
      for (const entry of await readdir(dir)) if (!hidden.has(entry)) await symlink(path.join(dir, entry), path.join(bin, entry)).catch(() => undefined)
    }

    for (const tool of tools) await symlink(await labBin(tool), path.join(bin, tool))
    return bin
  }

  const VENDOR = () => ['# shipped by the distribution', 'docker:', `  ${scope}:`, '    lookaside: https://vendor.invalid/sigs', '  127.0.0.1:1/vendor:', '    lookaside: https://vendor.invalid/other', ''].join('\n')

  /** A host root with Debian's accept-anything policy and the vendor file. */
  async function vendorRoot(name: string): Promise<string> {
    const root = path.join(lab.dir, name)
    await mkdir(path.join(root, USR), {recursive: true})
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await writeFile(path.join(root, USR, 'vendor.yaml'), VENDOR())
    return root
  }

  /**
   * Runs a command where /etc/containers, /etc/pki and /usr/share/containers
   * are the root's (a private mount namespace over overlays): what the
   * engines, and imagetrust --user, see on that host.
   */
  async function onHost(root: string, cmd: string[], env: NodeJS.ProcessEnv): Promise<{code: number; stdout: string; stderr: string}> {
    const upper = await mkdtemp(path.join(lab.dir, 'ns-'))
    await mkdir(path.join(root, 'etc/pki'), {recursive: true})
    await mkdir(path.join(root, 'usr/share/containers'), {recursive: true})
    const script = [
      'set -e',
      ...['etc', 'usr-share', 'var-lib'].flatMap((d) => [`mkdir -p ${upper}/${d}-u ${upper}/${d}-w`]),
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${upper}/etc-u,workdir=${upper}/etc-w /etc`,
      `mount -t overlay overlay -o lowerdir=/usr/share,upperdir=${upper}/usr-share-u,workdir=${upper}/usr-share-w /usr/share`,
      `mount -t overlay overlay -o lowerdir=/var/lib,upperdir=${upper}/var-lib-u,workdir=${upper}/var-lib-w /var/lib`,
      'mkdir -p /etc/containers /etc/pki /usr/share/containers',
      `mount --bind ${root}/etc/containers /etc/containers`,
      `mount --bind ${root}/etc/pki /etc/pki`,
      `mount --bind ${root}/usr/share/containers /usr/share/containers`,
      'exec "$@"',
    ].join('\n')
    return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'host', ...cmd], {env})
  }

  /** One oracle's answer for an image, pulling it into a scratch directory. */
  async function ask(version: '5.38' | '5.40', root: string, image: string, home: string): Promise<OracleAnswer> {
    const out = await mkdtemp(path.join(lab.dir, 'pulled-'))
    const result = await onHost(root, [await oracleBin(version), '--pull', out, `docker://${image}`], {...process.env, HOME: home})
    assert.equal(result.code, 0, result.stderr)
    return JSON.parse(result.stdout) as OracleAnswer
  }

  async function emptyHome(): Promise<string> {
    return mkdtemp(path.join(lab.dir, 'home-'))
  }

  /** What a version does with the signed, the unsigned and the vendor's image. */
  async function pulls(version: '5.38' | '5.40', root: string, home: string) {
    const [signed, unsigned, vendor] = [await ask(version, root, images.signed, home), await ask(version, root, images.unsigned, home), await ask(version, root, images.vendor, home)]
    return {signed, unsigned, vendor}
  }

  function assertEnforced(answers: Awaited<ReturnType<typeof pulls>>, version: string): void {
    for (const answer of Object.values(answers)) assert.equal(answer.registriesError, undefined, `${version}: ${answer.registriesError}`)
    assert.equal(answers.signed.pulled, true, `${version}: the signed image: ${answers.signed.reason ?? answers.signed.pullError}`)
    assert.equal(answers.signed.lookaside, `${lab.lookasideUrl}/team/app`, `${version}: signatures come from the trust file's lookaside`)
    assert.notEqual(answers.unsigned.pulled, true, `${version}: the unsigned image is refused`)
    assert.match(answers.unsigned.reason ?? answers.unsigned.pullError ?? '', /signature/i)
    assert.equal(answers.vendor.lookaside, 'https://vendor.invalid/other/vendor/app', `${version}: the vendor's other entry is kept`)
  }

  const files = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).sort()

  it('before: the scope again in /etc (what imagetrust writes for engines up to 5.39) makes every 5.40 pull fail; check on a 5.40 host reports it broken; apply there repairs it', async () => {
    const root = await vendorRoot('upgrade')
    const config = path.join(lab.dir, 'trust.yaml')
    // Debian's engines (5.23) read only /etc: imagetrust.yaml gets the scope, as it always did.
    const old = await imagetrust(['apply', '--root', root, '-c', config], {...process.env, PATH: paths.debian})
    assert.equal(old.code, 0, old.stderr)
    assert.deepEqual(await files(path.join(root, ETC)), ['imagetrust.yaml'])
    const home = await emptyHome()
    const broken = await pulls('5.40', root, home)
    for (const [name, answer] of Object.entries(broken)) {
      assert.match(answer.registriesError ?? '', /"docker" namespace ".*\/team" defined both in ".*imagetrust\.yaml" and ".*vendor\.yaml"/, `5.40, ${name}: ${JSON.stringify(answer)}`)
      assert.notEqual(answer.pulled, true)
    }

    assert.equal((await ask('5.38', root, images.signed, home)).pulled, true, '5.38 does not read /usr/share: the same files work there')

    const check = await imagetrust(['check', '--root', root, '-c', config, '--json'], {...process.env, PATH: paths.only540})
    assert.equal(check.code, 2, check.stderr)
    const report = JSON.parse(check.stdout)
    assertMatchesSchema('check', report)
    const entry = report.drift.find((d: {reasons: string[]}) => d.reasons.includes('broken'))
    assert.ok(entry, check.stdout)
    assert.equal(entry.path, path.join(root, USR, 'vendor.yaml'))
    assert.match(entry.detail, /docker scope ".*\/team" is defined both in .*imagetrust\.yaml:\d+ and .*vendor\.yaml:3: containers\/image fails every pull/)

    const detect = await imagetrust(['detect', '--root', root, '--json'], {...process.env, PATH: paths.only540})
    assert.equal(detect.code, 0, detect.stderr)
    const found = JSON.parse(detect.stdout)
    assertMatchesSchema('detect', found)
    assert.ok(found.registriesD.problems.some((p: string) => /docker scope ".*\/team" is defined both in .*imagetrust\.yaml:\d+ and .*vendor\.yaml:3/.test(p)), detect.stdout)

    const fixed = await imagetrust(['apply', '--root', root, '-c', config], {...process.env, PATH: paths.only540})
    assert.equal(fixed.code, 0, fixed.stderr)
    assert.deepEqual(await files(path.join(root, ETC)), ['vendor.yaml'], 'the scope moved from imagetrust.yaml into the override')
    assertEnforced(await pulls('5.40', root, home), '5.40')
    assertEnforced(await pulls('5.38', root, home), '5.38')
  })

  it('a 5.40 host: apply overrides the vendor file by name (its other entries kept), both versions pull, check is clean, and release and rollback bring the vendor view back', async () => {
    const root = await vendorRoot('fresh')
    const config = path.join(lab.dir, 'trust.yaml')
    const env = {...process.env, PATH: paths.only540}
    const applied = await imagetrust(['apply', '--root', root, '-c', config, '--json'], env)
    assert.equal(applied.code, 0, applied.stderr)
    assert.deepEqual(await files(path.join(root, ETC)), ['vendor.yaml'], 'no imagetrust.yaml: the scope is defined once, in the override')
    const override = await readFile(path.join(root, ETC, 'vendor.yaml'), 'utf8')
    assert.match(override, /# shipped by the distribution/)
    const state = JSON.parse(await readFile(path.join(root, 'var/lib/imagetrust/state.json'), 'utf8'))
    assert.deepEqual(state.registriesD.overrides, [{file: '/etc/containers/registries.d/vendor.yaml', vendor: '/usr/share/containers/registries.d/vendor.yaml'}])
    assert.ok(state.files['/etc/containers/registries.d/vendor.yaml'], 'its digest is recorded: the override is ours')
    const home = await emptyHome()
    assertEnforced(await pulls('5.40', root, home), '5.40')
    assertEnforced(await pulls('5.38', root, home), '5.38')
    assert.equal((await imagetrust(['check', '--root', root, '-c', config], env)).code, 0)
    assert.equal(JSON.parse((await imagetrust(['apply', '--root', root, '-c', config, '--json'], env)).stdout).changed, false)

    const rolledBack = await imagetrust(['rollback', '--root', root], env)
    assert.equal(rolledBack.code, 0, rolledBack.stderr)
    assert.deepEqual(await files(path.join(root, ETC)), [])
    assert.equal((await ask('5.40', root, images.signed, home)).lookaside, 'https://vendor.invalid/sigs/team/app', 'after rollback the vendor file decides again')

    assert.equal((await imagetrust(['apply', '--root', root, '-c', config], env)).code, 0)
    const released = await imagetrust(['apply', '--root', root, '-c', path.join(lab.dir, 'released.yaml')], env)
    assert.equal(released.code, 0, released.stderr)
    assert.deepEqual(await files(path.join(root, ETC)), [], 'the override is deleted when the scope leaves the trust file')
    assert.equal((await ask('5.40', root, images.signed, home)).lookaside, 'https://vendor.invalid/sigs/team/app')
    assert.equal(JSON.parse(await readFile(path.join(root, 'var/lib/imagetrust/state.json'), 'utf8')).registriesD.overrides, undefined)
  })

  it('a mixed host (skopeo at 5.40, CRI-O 1.36 at 5.38): the one override serves both', async () => {
    const root = await vendorRoot('mixed')
    const applied = await imagetrust(['apply', '--root', root, '-c', path.join(lab.dir, 'trust.yaml')], {...process.env, PATH: paths.mixed})
    assert.equal(applied.code, 0, applied.stderr)
    assert.deepEqual(await files(path.join(root, ETC)), ['vendor.yaml'])
    const home = await emptyHome()
    assertEnforced(await pulls('5.40', root, home), '5.40')
    assertEnforced(await pulls('5.38', root, home), '5.38')
  })

  describe('apply --user', () => {
    const SITE = 'docker:\n  127.0.0.1:2/site:\n    lookaside: https://site.invalid/sigs\n'
    const userApply = (root: string, home: string, PATH: string) =>
      onHost(root, [process.execPath, path.join(REPO_ROOT, 'bin/run.js'), 'apply', '--user', '-c', path.join(lab.dir, 'trust.yaml'), '--json'], {...process.env, HOME: home, PATH})

    async function userRoot(name: string): Promise<string> {
      const root = await vendorRoot(name)
      await mkdir(path.join(root, ETC), {recursive: true})
      await writeFile(path.join(root, ETC, 'site.yaml'), SITE)
      return root
    }

    it('before: what --user wrote for engines up to 5.39 (site.yaml carried over, the scope in imagetrust.yaml) makes every 5.40 pull fail', async () => {
      const root = await userRoot('user-old')
      const home = await emptyHome()
      const applied = await userApply(root, home, paths.debian)
      assert.equal(applied.code, 0, applied.stderr)
      assert.deepEqual(await files(path.join(home, '.config/containers/registries.d')), ['imagetrust.yaml', 'site.yaml'])
      for (const [name, answer] of Object.entries(await pulls('5.40', root, home))) {
        assert.match(answer.registriesError ?? '', /defined both in/, `5.40, ${name}: ${JSON.stringify(answer)}`)
      }
    })

    it('on 5.40 copies nothing: the system entries stay visible, the vendor scope is overridden in the user directory, and pulls work', async () => {
      const root = await userRoot('user-540')
      const home = await emptyHome()
      const applied = await userApply(root, home, paths.only540)
      assert.equal(applied.code, 0, applied.stderr)
      const result = JSON.parse(applied.stdout)
      assert.deepEqual(result.notes.filter((n: string) => /carried/.test(n)), [])
      assert.deepEqual(await files(path.join(home, '.config/containers/registries.d')), ['vendor.yaml'], 'site.yaml is not copied')
      const answers = await pulls('5.40', root, home)
      assertEnforced(answers, '5.40')
      const site = await ask('5.40', root, '127.0.0.1:2/site/app:1', home)
      assert.equal(site.lookaside, 'https://site.invalid/sigs/site/app', "the system's own entry is still visible to the user")
      // 5.38 reads only the user's directory once it exists: the override carries the trust file's scope there too.
      assert.equal((await ask('5.38', root, images.signed, home)).pulled, true)
      assert.equal(JSON.parse((await userApply(root, home, paths.only540)).stdout).changed, false)
    })
  })
})
