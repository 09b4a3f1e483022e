/**
 * Rootless users and shadowing files. A real non-root user, created with
 * useradd inside a private mount namespace whose /etc is an overlay (so the
 * user never exists on this machine), runs `imagetrust apply --user` and real
 * rootless podman pulls.
 */
import assert from 'node:assert/strict'
import {chmod, cp, mkdir, mkdtemp, readFile, realpath, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, REPO_ROOT, imagetrust, run} from '../support/lab.ts'

/**
 * The built CLI, copied where the test's real user can read it: the checkout
 * may sit under a directory only root can enter (a clone in `mktemp -d`).
 * Returns the path of bin/run.js in the copy.
 */
async function readableCopyOfCli(shared: string): Promise<string> {
  const app = path.join(shared, 'app')
  await mkdir(app)
  for (const name of ['bin', 'dist', 'schema', 'templates', 'package.json', 'oclif.manifest.json']) await cp(path.join(REPO_ROOT, name), path.join(app, name), {recursive: true})
  // node_modules may be a symlink (a worktree's): copy what it points to.
  await cp(await realpath(path.join(REPO_ROOT, 'node_modules')), path.join(app, 'node_modules'), {recursive: true, verbatimSymlinks: true})
  await run('chmod', ['-R', 'a+rX', app])
  return path.join(app, 'bin/run.js')
}

describe('rootless users', () => {
  let lab: Lab
  let key: GpgKey
  let shared: string
  const images = {signed: '', unsigned: ''}

  before(async () => {
    lab = await Lab.started('itr-')
    key = await lab.makeGpgKey('rootless')
    await lab.buildImage('localhost/r:1', 'rootless')
    images.signed = await lab.push('localhost/r:1', 'team/app:1', key)
    images.unsigned = await lab.push('localhost/r:1', 'team/unsigned:1')
    // Somewhere the user can read (the lab directory is private to root).
    shared = await mkdtemp('/tmp/itu-')
    await chmod(shared, 0o755)
  })

  after(async () => {
    await lab?.stop()
    await rm(shared, {recursive: true, force: true})
  })

  it('apply --user manages ~/.config/containers for a real user, whose rootless podman then enforces it; root is unaffected', async () => {
    await writeFile(path.join(shared, 'key.asc'), key.publicArmored)
    await writeFile(
      path.join(shared, 'trust.yaml'),
      ['version: 1', 'default: reject', 'keys:', `  team: {file: key.asc, fingerprint: ${key.fingerprint}}`, 'scopes:', `  "${lab.registry}/team":`, '    policy: signed', '    keys: [team]', `    lookaside: ${lab.lookasideUrl}`, ''].join('\n'),
    )
    for (const d of ['u', 'w', 'vu', 'vw', 'out', 'home']) await mkdir(path.join(shared, d))
    await chmod(path.join(shared, 'home'), 0o755)
    await chmod(path.join(shared, 'out'), 0o777)
    const home = path.join(shared, 'home/itrootless')
    const cli = `${process.execPath} ${await readableCopyOfCli(shared)}`
    // Its own runtime and temp directories: rootless podman would otherwise leave /tmp/podman-run-UID behind.
    const asUser = (cmd: string, out: string) =>
      `runuser -u itrootless -- env -i PATH="$PATH" HOME=${home} XDG_RUNTIME_DIR=${home}/run TMPDIR=${home}/tmp sh -c 'cd; ${cmd}' > ${shared}/out/${out}.out 2> ${shared}/out/${out}.err; echo $? > ${shared}/out/${out}.code`
    const pull = (image: string) => `podman --storage-driver vfs --events-backend file pull --quiet --tls-verify=false ${image}`
    const script = [
      'set -e',
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${shared}/u,workdir=${shared}/w /etc`,
      `mount -t overlay overlay -o lowerdir=/var/lib,upperdir=${shared}/vu,workdir=${shared}/vw /var/lib`,
      `useradd --create-home --home-dir ${home} --shell /bin/sh itrootless`,
      `install -d -m 700 -o itrootless ${home}/run ${home}/tmp`,
      // A system registries.d entry, which the user's new registries.d must carry over.
      'mkdir -p /etc/containers/registries.d',
      `printf 'docker:\\n  registry.example.com:\\n    lookaside: https://sigs.example.com\\n' > /etc/containers/registries.d/site.yaml`,
      'set +e',
      asUser(`${cli} apply --user -c ${shared}/trust.yaml --json`, 'apply'),
      asUser(`${cli} apply --user -c ${shared}/trust.yaml --json`, 'apply2'),
      asUser(`${cli} check --user -c ${shared}/trust.yaml`, 'check'),
      asUser(pull(images.signed), 'signed'),
      asUser(pull(images.unsigned), 'unsigned'),
      // Root reads the system policy (Debian's accept-anything) and is unaffected.
      `env HOME=${shared}/out skopeo copy --quiet --src-tls-verify=false docker://${images.unsigned} dir:${shared}/out/root-pull > ${shared}/out/root.out 2>&1; echo $? > ${shared}/out/root.code`,
      `id -u itrootless > ${shared}/out/uid`,
      // Rootless podman leaves its pause process behind: stop every process the user started.
      'pkill -KILL -U "$(id -u itrootless)"',
      'for i in 1 2 3 4 5 6 7 8 9 10; do pgrep -U "$(id -u itrootless)" >/dev/null || break; sleep 0.2; done',
      `pgrep -U "$(id -u itrootless)" > ${shared}/out/left-running; true`,
    ].join('\n')
    const {readdir} = await import('node:fs/promises')
    const podmanLeftovers = async () => (await readdir('/tmp')).filter((n) => /^(podman-run|containers-user|storage-run)-/.test(n)).sort()
    const leftoversBefore = await podmanLeftovers()
    const result = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script])
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(await podmanLeftovers(), leftoversBefore, 'rootless podman left files in /tmp')
    const out = async (name: string) => (await readFile(path.join(shared, 'out', name), 'utf8')).trim()
    const code = async (name: string) => Number(await out(`${name}.code`))

    assert.equal(await out('left-running'), '', 'every process the rootless user started is stopped')
    assert.equal(await code('apply'), 0, await out('apply.err'))
    const applied = JSON.parse(await out('apply.out'))
    const written = applied.files.map((f: {path: string}) => f.path)
    assert.ok(written.includes(`${home}/.config/containers/policy.json`), written.join('\n'))
    assert.ok(written.includes(`${home}/.config/containers/registries.d/imagetrust.yaml`))
    assert.ok(written.includes(`${home}/.config/containers/registries.d/site.yaml`), 'the system entry is carried over')
    assert.ok(written.includes(`${home}/.local/share/imagetrust/keys/team.gpg`))
    assert.ok(applied.notes.some((w: string) => /carried site\.yaml over from the system registries\.d/.test(w)))
    assert.equal(JSON.parse(await out('apply2.out')).changed, false, 'the second run changes nothing')
    assert.equal(await code('check'), 0, await out('check.out'))

    assert.equal(await code('signed'), 0, `rootless pull of the signed image: ${await out('signed.err')}`)
    assert.notEqual(await code('unsigned'), 0)
    assert.match(await out('unsigned.err'), /A signature was required, but no signature exists/)
    assert.equal(await code('root'), 0, `root's pull: ${await out('root.out')}`)
    const policy = JSON.parse(await readFile(path.join(home, '.config/containers/policy.json'), 'utf8'))
    assert.deepEqual(policy.transports.docker[`${lab.registry}/team`], [{type: 'signedBy', keyType: 'GPGKeys', keyPath: `${home}/.local/share/imagetrust/keys/team.gpg`}])
    // The files belong to the user who ran it.
    const {stat} = await import('node:fs/promises')
    assert.equal((await stat(path.join(home, '.config/containers/policy.json'))).uid, Number(await out('uid')))
  })

  it('check counts a $HOME/.config/containers/policy.json that shadows /etc as drift', async () => {
    const root = path.join(lab.dir, 'shadow-root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    const config = path.join(lab.dir, 'shadow.yaml')
    await writeFile(config, 'version: 1\ndefault: reject\nlocalTransports: default\n')
    const home = '/home/shadowed'
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config], {...process.env, HOME: home})).code, 0)
    assert.equal((await imagetrust(['check', '--root', root, '-c', config], {...process.env, HOME: home})).code, 0)
    await mkdir(path.join(root, home, '.config/containers'), {recursive: true})
    await writeFile(path.join(root, home, '.config/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    const check = await imagetrust(['check', '--root', root, '-c', config, '--json'], {...process.env, HOME: home})
    assert.equal(check.code, 2)
    const report = JSON.parse(check.stdout)
    assert.deepEqual(report.drift.map((d: {path: string; reasons: string[]}) => [d.path, d.reasons]), [[path.join(root, home, '.config/containers/policy.json'), ['shadowed']]])
    const applied = await imagetrust(['apply', '--root', root, '-c', config], {...process.env, HOME: home})
    assert.match(applied.stderr, /takes precedence over the system's policy\.json for this user/)
  })

  it('an existing user registries.d: each system entry the user no longer sees is named', async () => {
    const root = path.join(lab.dir, 'user-root')
    const home = '/home/bob'
    await mkdir(path.join(root, 'etc/containers/registries.d'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/registries.d/site.yaml'), 'docker:\n  registry.example.com:\n    lookaside: https://sigs.example.com\n')
    await mkdir(path.join(root, home, '.config/containers/registries.d'), {recursive: true})
    await writeFile(path.join(root, home, '.config/containers/registries.d/mine.yaml'), 'docker:\n  quay.example.com:\n    lookaside: https://q.example.com\n')
    const config = path.join(lab.dir, 'bob.yaml')
    await writeFile(config, `version: 1\nscopes:\n  "${lab.registry}/team":\n    policy: accept\n    lookaside: ${lab.lookasideUrl}\n`)
    const applied = await imagetrust(['apply', '--user', '--root', root, '-c', config, '--json'], {...process.env, HOME: home})
    assert.equal(applied.code, 0, applied.stderr)
    const {warnings} = JSON.parse(applied.stdout)
    assert.ok(warnings.some((w: string) => /site\.yaml: "registry\.example\.com" does not apply to this user/.test(w)), warnings.join('\n'))
  })
})
