/**
 * The engine view on whole hosts: $CONTAINERS_POLICY_JSON in a service
 * unit's environment (or the shell's) shadows the managed policy where the
 * engine's containers/image reads it (5.40: podman.service with Podman 6),
 * and not where it does not (CRI-O 1.36 is 5.38); and a mixed host, Podman
 * 6 (5.40) with CRI-O 1.36 (5.38) on a Fedora 45 layout, where status and
 * explain show each engine's view until apply makes them one. Each claim is
 * checked with the oracle of that version. This machine's skopeo 1.9.3
 * stays on PATH: one more engine, which the assertions leave aside.
 */
import assert from 'node:assert/strict'
import {chmod, cp, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {makeGpgKey} from '../support/gpg.ts'
import {imagetrust, run} from '../support/lab.ts'
import {LAB_BIN, type OracleAnswer, oracleBin, type OracleVersion} from '../support/lab-bin.ts'
import {assertMatchesSchema} from '../support/schema.ts'

const FEDORA_45 = path.resolve(import.meta.dirname, '../fixtures/distro/layouts/fedora-45')
const DEBIAN_13 = path.resolve(import.meta.dirname, '../fixtures/distro/layouts/debian-13')

interface Drift {
  path: string
  reasons: string[]
}

describe('the engine view on whole hosts', () => {
  let dir: string
  let config: string
  let home: string
  /** PATH dirs: a podman that prints 6.0.0 (5.40), the lab's CRI-O 1.36 (5.38), and both. */
  const bins = {podman6: '', crio: '', both: ''}

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-view-host-'))
    home = path.join(dir, 'home')
    await mkdir(home)
    const key = await makeGpgKey(dir, 'ours', 'rsa')
    await writeFile(path.join(dir, 'ours.asc'), key.publicArmored)
    config = path.join(dir, 'trust.yaml')
    await writeFile(config, ['version: 1', 'keys:', `  ours: {type: gpg, file: ours.asc, fingerprint: ${key.fingerprint}}`, 'scopes:', '  "registry.example/apps":', '    policy: signed', '    keys: [ours]', ''].join('\n'))
    for (const name of Object.keys(bins) as Array<keyof typeof bins>) {
      bins[name] = path.join(dir, `bin-${name}`)
      await mkdir(bins[name])
      if (name !== 'crio') {
        await writeFile(path.join(bins[name], 'podman'), '#!/bin/sh\n[ "$1" = --version ] && { echo "podman version 6.0.0"; exit 0; }\nexit 1\n')
        await chmod(path.join(bins[name], 'podman'), 0o755)
      }

      if (name !== 'podman6') await cp(path.join(LAB_BIN, 'crio'), path.join(bins[name], 'crio'))
    }
  })

  after(async () => rm(dir, {recursive: true, force: true}))

  async function newRoot(name: string, layout: string): Promise<string> {
    const root = path.join(dir, name)
    await cp(layout, root, {recursive: true})
    return root
  }

  async function unitEnv(root: string, file: string, variable: string): Promise<void> {
    await mkdir(path.join(root, path.dirname(file)), {recursive: true})
    await writeFile(path.join(root, file), `[Service]\nEnvironment="${variable}"\n`)
  }

  const envWith = (bin: string, extra: NodeJS.ProcessEnv = {}) => ({...process.env, PATH: `${bin}:${process.env.PATH}`, HOME: home, ...extra})

  async function check(root: string, env: NodeJS.ProcessEnv): Promise<{code: number; drift: Drift[]}> {
    const result = await imagetrust(['check', '--root', root, '-c', config, '--json'], env)
    const report = JSON.parse(result.stdout) as {drift: Drift[]}
    assertMatchesSchema('check', report)
    return {code: result.code, drift: report.drift}
  }

  it('CONTAINERS_POLICY_JSON in podman.service shadows the managed policy for Podman 6 (5.40): drift "shadowed", check exits 2', async () => {
    const root = await newRoot('podman-unit', DEBIAN_13)
    await writeFile(path.join(root, 'etc/containers/elsewhere.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await unitEnv(root, 'etc/systemd/system/podman.service.d/50-policy.conf', 'CONTAINERS_POLICY_JSON=/etc/containers/elsewhere.json')
    const applied = await imagetrust(['apply', '--root', root, '-c', config], envWith(bins.podman6))
    assert.equal(applied.code, 0, applied.stderr)
    assert.match(applied.stderr, /CONTAINERS_POLICY_JSON in podman\.service makes podman 6\.0\.0 read .*elsewhere\.json/)
    const {code, drift} = await check(root, envWith(bins.podman6))
    assert.equal(code, 2)
    assert.deepEqual(drift.find((d) => d.reasons.includes('shadowed'))?.path, path.join(root, 'etc/containers/elsewhere.json'))
    // The 5.40 library reads the file the variable names, not the managed one.
    const answer = await oracle('5.40', root, {CONTAINERS_POLICY_JSON: '/etc/containers/elsewhere.json'})
    assert.deepEqual(answer.policyFiles, ['/etc/containers/elsewhere.json'])
  })

  it('CONTAINERS_POLICY_JSON in the invoking shell shadows it too, for the engines run from that shell', async () => {
    const root = await newRoot('shell-env', DEBIAN_13)
    await writeFile(path.join(root, 'etc/containers/elsewhere.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    const env = envWith(bins.podman6, {CONTAINERS_POLICY_JSON: '/etc/containers/elsewhere.json'})
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config], env)).code, 0)
    const {code, drift} = await check(root, env)
    assert.equal(code, 2)
    assert.ok(drift.some((d) => d.reasons.includes('shadowed')))
    // Without the variable the same host is in sync: the fingerprint keys on it.
    assert.equal((await check(root, envWith(bins.podman6))).code, 0)
  })

  it('CONTAINERS_POLICY_JSON in crio.service shadows nothing for CRI-O 1.36: its containers/image 5.38 ignores the variable', async () => {
    const root = await newRoot('crio-unit', DEBIAN_13)
    await writeFile(path.join(root, 'etc/containers/elsewhere.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await unitEnv(root, 'usr/lib/systemd/system/crio.service', 'CONTAINERS_POLICY_JSON=/etc/containers/elsewhere.json')
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config], envWith(bins.crio))).code, 0)
    const {code, drift} = await check(root, envWith(bins.crio))
    assert.equal(code, 0, JSON.stringify(drift))
    const answer = await oracle('5.38', root, {CONTAINERS_POLICY_JSON: '/etc/containers/elsewhere.json'})
    assert.deepEqual(answer.policyFiles, ['/etc/containers/policy.json'])
  })

  it('Podman 6 and CRI-O 1.36 on a Fedora 45 layout: status and explain show each view; apply gives both the same file', async () => {
    const root = await newRoot('mixed', FEDORA_45)
    const env = envWith(bins.both)
    const status = async () => {
      const result = await imagetrust(['status', '--root', root, '-c', config, '--json'], env)
      const report = JSON.parse(result.stdout) as {engines: Array<{engine: string; policy: string | null; registriesD: string[]}>; enginesDiffer: boolean; targets: Array<{kind: string}>}
      assertMatchesSchema('status', report)
      return report
    }

    const before = await status()
    assert.equal(before.enginesDiffer, true)
    assert.deepEqual(
      before.engines.filter((e) => e.engine !== 'skopeo').map((e) => [e.engine, e.policy]),
      [
        ['podman', path.join(root, 'usr/share/containers/policy.json')],
        ['crio', null],
      ],
    )
    assert.ok(before.targets.some((t) => t.kind === 'vendor'))
    const explained = await imagetrust(['explain', '--root', root, '--json', 'registry.example/apps/x:1'], env)
    const explanation = JSON.parse(explained.stdout) as {enginesDiffer: boolean; engines: Array<{engine: string; policyFile: string | null}>}
    assertMatchesSchema('explain', explanation)
    assert.equal(explanation.enginesDiffer, true)
    assert.deepEqual(
      explanation.engines.filter((e) => e.engine !== 'skopeo').map((e) => e.policyFile),
      [path.join(root, 'usr/share/containers/policy.json'), null],
    )
    // What each library really does on this host before apply.
    assert.deepEqual((await oracle('5.40', root)).policyFiles, ['/usr/share/containers/policy.json'])
    assert.match((await oracle('5.38', root)).policyError ?? '', /no policy\.json file found/)

    const applied = await imagetrust(['apply', '--root', root, '-c', config], env)
    assert.equal(applied.code, 0, applied.stderr)
    assert.match(applied.stdout + applied.stderr, /starts from .*usr\/share\/containers\/policy\.json \(every vendor rule kept\)/)
    const after = await status()
    const policies = new Set(after.engines.map((e) => e.policy))
    assert.deepEqual([...policies], [path.join(root, 'etc/containers/policy.json')])
    // They still differ in registries.d: 5.40 loads the vendor's /usr/share files, 5.38 never does.
    assert.equal(after.enginesDiffer, true)
    const podman = after.engines.find((e) => e.engine === 'podman')!
    const crio = after.engines.find((e) => e.engine === 'crio')!
    assert.ok(podman.registriesD.some((f) => f.includes('/usr/share/containers/registries.d/')))
    assert.ok(!crio.registriesD.some((f) => f.includes('/usr/share/')))
    for (const version of ['5.38', '5.40'] as const) assert.deepEqual((await oracle(version, root)).policyFiles, ['/etc/containers/policy.json'], version)
  })
})

/** The oracle in a private mount namespace whose /etc/containers and /usr/share/containers are the root's. */
async function oracle(version: OracleVersion, root: string, env: Record<string, string> = {}): Promise<OracleAnswer> {
  const bin = await oracleBin(version)
  const script = [
    'set -e',
    `mkdir -p ${root}/etc/containers ${root}/usr/share/containers`,
    `mount --bind ${root}/etc/containers /etc/containers`,
    `mount --bind ${root}/usr/share/containers /usr/share/containers`,
    'exec "$@"',
  ].join('\n')
  const result = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'oracle', bin], {env: {PATH: process.env.PATH, HOME: path.join(root, 'no-home'), ...env}})
  if (result.code !== 0) throw new Error(`the ${version} oracle failed (${result.code}): ${result.stderr}`)
  return JSON.parse(result.stdout) as OracleAnswer
}
