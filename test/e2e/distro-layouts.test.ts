/**
 * Each distribution's containers-common layout (test/fixtures/distro/layouts)
 * × each lab oracle version: the policy file the oracle really opens (run in
 * a private mount namespace where /etc/containers, /etc/pki and
 * /usr/share/containers are the sandbox root's) is the one `detect --json`
 * and `explain --json` say that engine reads. Then apply, and that version
 * judges an image signed by the trusted key, an unsigned one, and one under a
 * vendor rule: vendor rules keep working, nothing fails to load. The engine
 * found on PATH carries the version: the lab's skopeo 1.23 (5.40) and CRI-O
 * 1.36 (5.38), and a podman and a buildah that only print 4.9.0 (5.29) and
 * 1.39.0 (5.34). This machine's podman 4.3.1 and skopeo 1.9.3 stay on PATH
 * behind them: a mixed host, as many are.
 */
import assert from 'node:assert/strict'
import {chmod, cp, mkdir, mkdtemp, readFile, realpath, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, imagetrust, run} from '../support/lab.ts'
import {LAB_BIN, ORACLE_VERSIONS, type OracleAnswer, oracleBin, type OracleVersion} from '../support/lab-bin.ts'
import {assertMatchesSchema} from '../support/schema.ts'

const LAYOUTS = path.resolve(import.meta.dirname, '../fixtures/distro/layouts')
const DISTROS = ['fedora-45', 'fedora-coreos', 'rhel-9', 'debian-13', 'ubuntu-24.04'] as const
/** Where each layout keeps its vendor policy. */
const VENDOR_POLICY: Record<(typeof DISTROS)[number], string> = {
  'fedora-45': 'usr/share/containers/policy.json',
  'fedora-coreos': 'usr/share/containers/policy.json',
  'rhel-9': 'etc/containers/policy.json',
  'debian-13': 'etc/containers/policy.json',
  'ubuntu-24.04': 'etc/containers/policy.json',
}

describe('distribution layouts × containers/image versions', () => {
  let lab: Lab
  let ours: GpgKey
  let vendor: GpgKey
  let home: string
  const images = {signed: '', unsigned: '', vendor: ''}
  const bins = new Map<OracleVersion | 'all', string>()

  before(async () => {
    lab = await Lab.started('imagetrust-distro-')
    ;[ours, vendor] = await Promise.all([lab.makeGpgKey('ours', {keyType: 'rsa'}), lab.makeGpgKey('vendor', {keyType: 'rsa'})])
    await lab.buildImage('localhost/tiny:1', 'distro tiny')
    images.signed = await lab.push('localhost/tiny:1', 'apps/signed:1', ours)
    images.unsigned = await lab.push('localhost/tiny:1', 'apps/unsigned:1')
    images.vendor = await lab.push('localhost/tiny:1', 'vendor/base:1', vendor)
    await writeFile(path.join(lab.dir, 'ours.asc'), ours.publicArmored)
    home = path.join(lab.dir, 'home')
    await mkdir(home)
    for (const version of ORACLE_VERSIONS) bins.set(version, await engineBin(lab.dir, [version]))
    bins.set('all', await engineBin(lab.dir, ORACLE_VERSIONS))
  })

  after(async () => lab?.stop())

  /** A sandbox root from the layout, with one vendor rule for the lab's registry (and its lookaside, in /etc). */
  async function layoutRoot(distro: (typeof DISTROS)[number], version: OracleVersion | 'all'): Promise<string> {
    const root = path.join(lab.dir, `${distro}-${version}`)
    await cp(path.join(LAYOUTS, distro), root, {recursive: true, verbatimSymlinks: true})
    const policyFile = path.join(root, VENDOR_POLICY[distro])
    const policy = JSON.parse(await readFile(policyFile, 'utf8')) as {transports?: Record<string, Record<string, unknown>>}
    policy.transports ??= {}
    policy.transports.docker ??= {}
    policy.transports.docker[`${lab.registry}/vendor`] = [{type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/vendor/vendor.gpg'}]
    await writeFile(policyFile, JSON.stringify(policy, null, 4) + '\n')
    await mkdir(path.join(root, 'etc/pki/vendor'), {recursive: true})
    await writeFile(path.join(root, 'etc/pki/vendor/vendor.gpg'), vendor.publicArmored)
    await mkdir(path.join(root, 'etc/containers/registries.d'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/registries.d/vendor-lab.yaml'), `docker:\n  ${lab.registry}/vendor:\n    lookaside: ${lab.lookasideUrl}\n`)
    return root
  }

  async function trustFile(): Promise<string> {
    const file = path.join(lab.dir, 'trust.yaml')
    await writeFile(
      file,
      ['version: 1', 'keys:', `  ours: {type: gpg, file: ours.asc, fingerprint: ${ours.fingerprint}}`, 'scopes:', `  "${lab.registry}/apps":`, '    policy: signed', '    keys: [ours]', `    lookaside: ${lab.lookasideUrl}`, ''].join('\n'),
    )
    return file
  }

  for (const distro of DISTROS) {
    it(`${distro}: every version reads the file detect and explain name; after apply, signed, unsigned and vendor images are judged right`, async () => {
      const failures: string[] = []
      // One host with an engine at every version: detect and explain name each one's file.
      const shared = await layoutRoot(distro, 'all')
      const env = {...process.env, PATH: `${bins.get('all')}:${process.env.PATH}`, HOME: home}
      const [detect, explain] = await Promise.all([imagetrust(['detect', '--root', shared, '--json'], env), imagetrust(['explain', '--root', shared, '--json', images.signed], env)])
      assert.equal(detect.code, 0, detect.stderr)
      const detected = JSON.parse(detect.stdout) as {views: Array<{containersImage: string; policy: {reads?: string}}>}
      assertMatchesSchema('detect', detected)
      const explained = explain.code === 0 ? (JSON.parse(explain.stdout) as {engines: Array<{containersImage: string; policyFile: string | null}>}) : undefined
      if (explained) assertMatchesSchema('explain', explained)
      const answers = await Promise.all(ORACLE_VERSIONS.map((version) => oracle(version, shared, home, images.signed)))
      for (const [i, version] of ORACLE_VERSIONS.entries()) {
        const answer = answers[i]
        const opened = answer.policyError ? 'none' : answer.policyFiles[0]
        // The oracle sees the file opened: a symlink's target (Fedora CoreOS). The engine names the link.
        const said = await followed(shared, detected.views.find((v) => v.containersImage === version)?.policy.reads)
        const file = explained?.engines.find((e) => e.containersImage === version)?.policyFile
        const told = await followed(shared, file?.slice(shared.length))
        if (said !== opened || told !== opened) failures.push(`${version}: detect says ${said}, explain ${told}, the oracle opened ${opened} (${answer.policyError ?? ''}${explain.code === 0 ? '' : explain.stderr})`)
      }

      const config = await trustFile()
      // Each version on its own root: they run side by side.
      for (const found of await Promise.all(ORACLE_VERSIONS.map((version) => applyAndJudge(distro, version, config)))) failures.push(...found)
      assert.deepEqual(failures, [])
    })
  }

  /** Apply on a host whose engine is at this version, then that version judges the three images. */
  async function applyAndJudge(distro: (typeof DISTROS)[number], version: OracleVersion, config: string): Promise<string[]> {
    const failures: string[] = []
    const root = await layoutRoot(distro, version)
    const applied = await imagetrust(['apply', '--root', root, '-c', config], {...process.env, PATH: `${bins.get(version)}:${process.env.PATH}`, HOME: home})
    if (applied.code !== 0) return [`${version}: apply failed: ${applied.stderr}`]
    const [signed, unsigned, vendorImage] = await Promise.all([images.signed, images.unsigned, images.vendor].map((image) => oracle(version, root, home, image)))
    for (const [name, answer] of Object.entries({signed, unsigned, vendor: vendorImage})) {
      if (answer.policyError || answer.registriesError) failures.push(`${version} after apply, ${name}: ${answer.policyError ?? answer.registriesError}`)
    }

    if (signed.allowed !== true) failures.push(`${version}: the signed image is refused: ${signed.reason}`)
    if (unsigned.allowed !== false) failures.push(`${version}: the unsigned image is not refused`)
    // A lone /usr/share policy is read from 5.40 on only: older engines never had its vendor rules.
    const vendorRead = distro !== 'fedora-45' || version === '5.40'
    const written = await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8')
    if (vendorRead && vendorImage.allowed !== true) failures.push(`${version}: the vendor-signed image is refused: ${vendorImage.reason}`)
    if (vendorRead && !written.includes('/etc/pki/vendor/vendor.gpg')) failures.push(`${version}: the vendor rule is gone from /etc`)
    if (!vendorRead && !applied.stderr.includes('is not read by')) failures.push(`${version}: apply does not say that /usr/share/containers/policy.json is not read: ${applied.stderr}`)
    return failures
  }
})

/** A host path as opened: symlinks followed inside the root ("none" for no file). */
async function followed(root: string, hostPath: string | undefined): Promise<string> {
  return hostPath ? (await realpath(root + hostPath)).slice(root.length) : 'none'
}

/** A PATH directory whose engines report versions that map to these containers/image versions. */
async function engineBin(dir: string, versions: readonly OracleVersion[]): Promise<string> {
  const bin = path.join(dir, `bin-${versions.join('-')}`)
  await mkdir(bin)
  const fake = async (name: string, text: string) => {
    await writeFile(path.join(bin, name), `#!/bin/sh\n[ "$1" = --version ] && { echo "${text}"; exit 0; }\nexit 1\n`)
    await chmod(path.join(bin, name), 0o755)
  }

  for (const version of versions) {
    if (version === '5.40') await cp(path.join(LAB_BIN, 'skopeo'), path.join(bin, 'skopeo'))
    if (version === '5.38') await cp(path.join(LAB_BIN, 'crio'), path.join(bin, 'crio'))
    if (version === '5.34') await fake('buildah', 'buildah version 1.39.0 (image-spec 1.1.0, runtime-spec 1.2.0)')
    if (version === '5.29') await fake('podman', 'podman version 4.9.0')
  }

  return bin
}

/**
 * The oracle in a private mount namespace whose /etc/containers, /etc/pki and
 * /usr/share/containers are the root's: the engine's own lookup, real paths.
 */
export async function oracle(version: OracleVersion, root: string, home: string, image: string): Promise<OracleAnswer> {
  const bin = await oracleBin(version)
  const layer = await mkdtemp(path.join(os.tmpdir(), 'itd-'))
  const script = [
    'set -e',
    `mkdir -p ${root}/etc/containers ${root}/etc/pki ${root}/usr/share/containers ${layer}/u ${layer}/w`,
    // /etc is a throw-away overlay: /etc/pki is made there, never on this machine.
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${layer}/u,workdir=${layer}/w /etc`,
    'mkdir -p /etc/containers /etc/pki',
    `mount --bind ${root}/etc/containers /etc/containers`,
    `mount --bind ${root}/etc/pki /etc/pki`,
    `mount --bind ${root}/usr/share/containers /usr/share/containers`,
    'exec "$@"',
  ].join('\n')
  const result = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'oracle', bin, `docker://${image}`], {env: {PATH: process.env.PATH, HOME: home}})
  await rm(layer, {recursive: true, force: true})
  if (result.code !== 0) throw new Error(`the ${version} oracle failed (${result.code}): ${result.stderr}`)
  return JSON.parse(result.stdout) as OracleAnswer
}
