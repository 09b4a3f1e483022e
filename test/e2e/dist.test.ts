/**
 * The single executable and its packages on a host without Node.js: `npm run dist`'s
 * .deb installed with dpkg into a chroot of a minimal Debian bookworm (debootstrap
 * --variant=minbase, cached per machine by scripts/debootstrap.sh), and the .rpm's
 * payload unpacked with rpm2cpio into a second one. In each: no node anywhere, and
 * imagetrust init --yes, apply, check, status and verify --native work; then this host's
 * real skopeo, reading the chroot's /etc/containers and /etc/pki, refuses the unsigned
 * image and pulls the signed one from a loopback registry. The .deb's install, remove
 * and purge leave policy.json, registries.d, the keys and /var/lib/imagetrust alone.
 * Also: the executable takes the code cache it was built with, and `check` evaluates none
 * of the heavy modules the bundle carries (V8 coverage).
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, readFile, readdir, rm, stat, symlink, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, REPO_ROOT, type RunResult, mustRun, run} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

const VERSION = (JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {version: string}).version
const DEB = path.join(REPO_ROOT, `dist-bin/imagetrust_${VERSION}_amd64.deb`)
const RPM = path.join(REPO_ROOT, `dist-bin/imagetrust-${VERSION}-1.x86_64.rpm`)
const BUNDLE = path.join(REPO_ROOT, 'build/sea/imagetrust.cjs')
const CHROOT_ENV = {PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8'}

/** A command run chrooted into root, in a private mount namespace with /dev and /proc, and no environment from here. */
function inChroot(root: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const script = ['set -e', `mount --rbind /dev ${root}/dev`, `mount -t proc proc ${root}/proc`, `exec chroot ${root} "$@"`].join('\n')
  return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'chroot', ...args], {env: {...CHROOT_ENV, ...env}})
}

async function mustChroot(root: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const result = await inChroot(root, args, env)
  assert.equal(result.code, 0, `${args.join(' ')} in ${root} failed (${result.code}):\n${result.stderr}${result.stdout}`)
  return result
}

/** What install, remove and purge must never change: the host's trust, and apply's backups. */
async function trustState(root: string): Promise<string> {
  return JSON.stringify([await hashTree(path.join(root, 'etc/containers')), await hashTree(path.join(root, 'etc/pki')), await hashTree(path.join(root, 'var/lib/imagetrust'))])
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  )
}

describe('the single executable, .deb and .rpm on a host without Node.js', () => {
  let lab: Lab
  let alpha: GpgKey
  let base: string
  const images = {signed: '', unsigned: ''}

  before(async () => {
    // The packages as `npm run dist` makes them from this build (npm run build ran before the tests).
    await mustRun(process.execPath, ['--import', 'tsx', 'scripts/dist.ts'], {cwd: REPO_ROOT})
    await mustRun('bash', ['scripts/dist-packages.sh'], {cwd: REPO_ROOT})
    base = (await mustRun('bash', ['scripts/debootstrap.sh'], {cwd: REPO_ROOT})).stdout.trim()
    lab = await Lab.started('imagetrust-dist-')
    alpha = await lab.makeGpgKey('alpha')
    await lab.buildImage('localhost/tiny:1', 'tiny one')
    images.signed = await lab.push('localhost/tiny:1', 'apps/signed:1', alpha)
    images.unsigned = await lab.push('localhost/tiny:1', 'apps/unsigned:1')
  })

  after(async () => {
    await lab?.stop()
  })

  /** A fresh copy of the cached bookworm root, with the signing key where the chroot's admin would keep it. */
  async function newRoot(name: string): Promise<string> {
    const root = path.join(lab.dir, name)
    await mustRun('cp', ['-a', base, root])
    await writeFile(path.join(root, 'root/alpha.asc'), alpha.publicArmored)
    // No Node.js here: the point of the single executable.
    assert.notEqual((await inChroot(root, ['sh', '-c', 'command -v node nodejs'])).code, 0, 'the bookworm root has node')
    assert.equal(await exists(path.join(root, 'usr/lib/node_modules')), false)
    return root
  }

  /** imagetrust's day-one commands in the chroot, then real pulls that read the chroot's policy. */
  async function provesTrust(root: string): Promise<void> {
    await mustChroot(root, ['imagetrust', '--version'])
    const scope = `${lab.registry}/apps`
    const init = ['imagetrust', 'init', '--yes', '--scope', scope, '--key', '/root/alpha.asc', '--lookaside', lab.lookasideUrl, '--default', 'reject', '--no-verify']
    await mustChroot(root, init)
    assert.ok(await exists(path.join(root, 'etc/imagetrust/trust.yaml')))
    assert.match((await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8')).toString(), /signedBy/)
    await mustChroot(root, ['imagetrust', 'apply'])
    await mustChroot(root, ['imagetrust', 'check'])
    const status = await mustChroot(root, ['imagetrust', 'status', '--json'])
    assert.ok(JSON.parse(status.stdout))
    const native = await mustChroot(root, ['imagetrust', 'verify', '--native', images.signed, '--no-tls-verify', '--json'])
    assert.ok(JSON.parse(native.stdout))

    const signed = await lab.pull(root, images.signed, 'skopeo')
    assert.equal(signed.code, 0, `the signed image was refused: ${signed.stderr}`)
    const unsigned = await lab.pull(root, images.unsigned, 'skopeo')
    assert.notEqual(unsigned.code, 0, 'the unsigned image was accepted')
    assert.match(unsigned.stderr, /A signature was required, but no signature exists/)
  }

  it('the .deb: dpkg -i into bookworm, the commands work, pulls are judged; remove and purge leave the trust alone', async () => {
    const root = await newRoot('deb-root')
    await copyFile(DEB, path.join(root, 'tmp/imagetrust.deb'))
    await mustChroot(root, ['dpkg', '-i', '/tmp/imagetrust.deb'])
    for (const file of ['usr/bin/imagetrust', 'usr/share/man/man1/imagetrust.1.gz', 'usr/share/bash-completion/completions/imagetrust', 'usr/share/zsh/vendor-completions/_imagetrust', 'usr/lib/systemd/system/imagetrust-check.timer', 'usr/share/imagetrust/templates/trust.yaml']) {
      assert.ok(await exists(path.join(root, file)), `${file} not installed`)
    }
    assert.deepEqual(await readdir(path.join(root, 'etc/imagetrust')), [], 'the package put a file in /etc/imagetrust')
    assert.equal(await exists(path.join(root, 'etc/systemd/system/timers.target.wants/imagetrust-check.timer')), false, 'the timer was enabled on install')

    await provesTrust(root)

    const before = await trustState(root)
    const trustFile = await readFile(path.join(root, 'etc/imagetrust/trust.yaml'), 'utf8')
    // An admin enabled the timer (systemctl enable, here without systemd: its link); removing the package takes the link away.
    const wants = path.join(root, 'etc/systemd/system/timers.target.wants')
    await mkdir(wants, {recursive: true})
    await symlink('/usr/lib/systemd/system/imagetrust-check.timer', path.join(wants, 'imagetrust-check.timer'))
    await mustChroot(root, ['dpkg', '-r', 'imagetrust'])
    assert.equal(await exists(path.join(root, 'usr/bin/imagetrust')), false)
    assert.ok(!(await readdir(wants)).includes('imagetrust-check.timer'), 'removing the package left the enabled timer\'s link dangling')
    assert.equal(await trustState(root), before, 'removing the package changed the trust or the backups')
    await mustChroot(root, ['dpkg', '-i', '/tmp/imagetrust.deb'])
    assert.equal(await trustState(root), before, 'installing the package changed the trust or the backups')
    // The executable compiles its bundle with the code cache made when it was built (scripts/dist.ts).
    const reported = await mustChroot(root, ['imagetrust', 'check'], {IMAGETRUST_CODE_CACHE: 'report'})
    assert.match(reported.stderr, /^imagetrust: code cache accepted$/m)
    const afterCheck = await trustState(root) // check may refresh its stamp under /var/lib/imagetrust
    await mustChroot(root, ['dpkg', '-P', 'imagetrust'])
    assert.equal(await trustState(root), afterCheck, 'purging the package changed the trust or the backups')
    assert.equal(await readFile(path.join(root, 'etc/imagetrust/trust.yaml'), 'utf8'), trustFile, 'purge touched the trust file')

    // Asked for, purge removes the backups too; still never the trust.
    await mustChroot(root, ['dpkg', '-i', '/tmp/imagetrust.deb'])
    await mustChroot(root, ['dpkg', '-P', 'imagetrust'], {IMAGETRUST_PURGE_STATE: 'yes'})
    assert.equal(await exists(path.join(root, 'var/lib/imagetrust')), false, 'IMAGETRUST_PURGE_STATE=yes kept /var/lib/imagetrust')
    assert.equal(JSON.stringify(await hashTree(path.join(root, 'etc/containers'))), JSON.stringify(JSON.parse(before)[0]))
  })

  it('the .rpm: its payload unpacked with rpm2cpio into bookworm, the commands work, pulls are judged', async () => {
    const root = await newRoot('rpm-root')
    await mustRun('sh', ['-c', `rpm2cpio "$1" | (cd "$2" && cpio -idm --quiet)`, 'unpack', RPM, root])
    for (const file of ['usr/bin/imagetrust', 'usr/share/zsh/site-functions/_imagetrust', 'usr/lib/systemd/system/imagetrust-check.service']) {
      assert.ok(await exists(path.join(root, file)), `${file} not in the rpm`)
    }
    const unit = await readFile(path.join(root, 'usr/lib/systemd/system/imagetrust-check.service'), 'utf8')
    assert.match(unit, /^ExecStart=\/usr\/bin\/imagetrust check/m)
    await provesTrust(root)
  })

  it('check, in sync, evaluates none of the heavy modules in the bundle (openpgp, inquirer, yaml, diff)', async () => {
    const root = await newRoot('coverage-root')
    await copyFile(DEB, path.join(root, 'tmp/imagetrust.deb'))
    await mustChroot(root, ['dpkg', '-i', '/tmp/imagetrust.deb'])
    await mustChroot(root, ['imagetrust', 'init', '--yes', '--scope', `${lab.registry}/apps`, '--key', '/root/alpha.asc', '--lookaside', lab.lookasideUrl, '--default', 'reject', '--no-verify'])
    // The bundle that is the executable's program, run by this node under V8 coverage:
    // esbuild wraps each lazily loaded module in a function named by its path.
    // The check the bench times: in sync, on the fast path that apply's fingerprint opens (it names
    // the engines on PATH, so apply runs here, not in the chroot; a full check reads keys with openpgp).
    await mustRun(process.execPath, [BUNDLE, 'apply', '--root', root])
    const coverage = path.join(lab.dir, 'coverage')
    const checked = await run(process.execPath, [BUNDLE, 'check', '--root', root], {env: {...process.env, NODE_V8_COVERAGE: coverage}})
    assert.equal(checked.code, 0, checked.stderr)
    const evaluated = new Set<string>()
    const wrapped = new Set<string>()
    for (const file of await readdir(coverage)) {
      const {result} = JSON.parse(await readFile(path.join(coverage, file), 'utf8')) as {result: Array<{url: string; functions: Array<{functionName: string; ranges: Array<{count: number}>}>}>}
      for (const script of result.filter((s) => s.url.endsWith('/imagetrust.cjs'))) {
        for (const fn of script.functions.filter((f) => /^(?:node_modules|dist)\//.test(f.functionName))) {
          wrapped.add(fn.functionName)
          if (fn.ranges[0].count > 0) evaluated.add(fn.functionName)
        }
      }
    }
    for (const heavy of ['node_modules/openpgp/', 'node_modules/@inquirer/prompts/', 'node_modules/yaml/', 'node_modules/diff/']) {
      assert.ok([...wrapped].some((m) => m.startsWith(heavy)), `${heavy} is not a lazily evaluated module of the bundle`)
      const ran = [...evaluated].filter((m) => m.startsWith(heavy))
      assert.deepEqual(ran, [], `check evaluated ${heavy}`)
    }
    await rm(coverage, {recursive: true, force: true})
  })
})
