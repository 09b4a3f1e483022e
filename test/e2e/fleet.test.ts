/**
 * The Ansible role over real SSH, on a fleet of five hosts (test/support/fleet.ts):
 * each an sshd on its own 127.0.0.1 port in its own mount namespace, whose
 * /etc/containers, /etc/pki/containers, /etc/imagetrust, /var/lib/imagetrust and
 * /usr/local are its own, and where Node.js is not installed. The role runs with
 * no imagetrust_root: it manages the real paths, as on a real host. It installs
 * the single executable on three hosts and the .deb on two, converges them, and
 * drift.yml and the timer's check find the host edited by hand. Runs are few and
 * shared between scenarios: ansible-playbook is slow.
 */
import assert from 'node:assert/strict'
import {appendFile, copyFile, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type FleetHost, type Play, BOUND, Fleet} from '../support/fleet.ts'
import {type FleetInstall, fleetPackages} from '../support/fleet-packages.ts'
import {makeKey} from '../support/hostroot.ts'
import {etcContainersDigest, mustRun} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

const INSTALLS: Record<string, FleetInstall> = {f1: 'binary', f2: 'binary', f3: 'binary', f4: 'deb', f5: 'deb'}
const HOSTS = Object.keys(INSTALLS)
type Trust = {version: 1; default?: string; keys: Record<string, unknown>; scopes: Record<string, Record<string, unknown>>}

describe('the Ansible role over SSH on a fleet of five hosts without Node.js', () => {
  let dir: string
  let fleet: Fleet
  let packages: Record<FleetInstall, string>
  let etcBefore: string
  const trust = {} as Record<string, Trust>
  const keys = {} as Record<string, Record<string, string>>
  let beta: {publicKey: string; fingerprint: string}
  /** A host's own package, where it is not the one npm run dist made. */
  const packageOf: Record<string, string> = {}

  /** Every host's own files and what it wrote over /etc, /usr and /var (dpkg's database, units), to prove a run wrote nothing. */
  const trees = async (): Promise<Record<string, Record<string, string>>> =>
    Object.fromEntries(
      await Promise.all(
        HOSTS.map(async (h) => {
          const own = await hashTree(path.join(fleet.host(h).dir, 'fs'))
          for (const top of ['etc', 'usr', 'var']) {
            // Node.js is gone as overlay whiteouts (character devices): not files to read.
            const layer = await hashTree(path.join(fleet.host(h).dir, 'layers', top, 'upper'), {exclude: /^bin\/(node|nodejs|npm|npx|corepack)$/})
            for (const [file, hash] of Object.entries(layer)) own[`/${top}/${file}`] = hash
          }

          return [h, own]
        }),
      ),
    )
  const policyOf = async (h: string): Promise<{transports: {docker: Record<string, unknown>}}> => JSON.parse(await readFile(fleet.path(h, '/etc/containers/policy.json'), 'utf8'))

  before(async () => {
    etcBefore = await etcContainersDigest()
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-ssh-fleet-'))
    packages = await fleetPackages()
    fleet = await Fleet.start(dir, HOSTS.map((name) => ({name, hideNode: true})))
    const alpha = await makeKey('fleet-alpha')
    beta = await makeKey('fleet-beta')
    for (const h of HOSTS) {
      await writeFile(fleet.path(h, '/etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
      keys[h] = {'alpha.asc': alpha.publicKey}
      trust[h] = {
        version: 1,
        default: 'reject',
        keys: {alpha: {type: 'gpg', file: 'keys/alpha.asc', fingerprint: alpha.fingerprint}},
        scopes: {
          'registry.example.com:5000/shop': {policy: 'signed', keys: ['alpha'], lookaside: 'https://sigs.example.com'},
          'registry.example.com:5000/other': {policy: 'reject'},
        },
      }
    }
  })

  after(async () => {
    if (fleet) {
      await fleet.stop()
      assert.deepEqual(fleet.survivors(), [], 'a process of the fleet outlived it')
    }

    if (dir) await rm(dir, {recursive: true, force: true})
    if (etcBefore) assert.equal(await etcContainersDigest(), etcBefore, "this machine's /etc/containers changed")
  })

  /** No imagetrust_root, no imagetrust_prefix, no imagetrust_command: the role's defaults, on the hosts' real paths. */
  const play = (playbook: 'site.yml' | 'drift.yml', ...extra: string[]): Promise<Play> =>
    fleet.play(
      playbook,
      Object.fromEntries(HOSTS.map((h) => [h, {imagetrust_install: INSTALLS[h], imagetrust_package: packageOf[h] ?? packages[INSTALLS[h]], imagetrust_trust: trust[h], imagetrust_keys: keys[h]}])),
      {imagetrust_become: false, imagetrust_check_timer: true},
      extra,
    )

  const changedOf = (p: Play): Record<string, number> => Object.fromEntries(HOSTS.map((h) => [h, p.recap[h].changed]))
  const ssh = async (h: string, command: string): Promise<{code: number; out: string}> => {
    const result = await fleet.ssh(h, command)
    return {code: result.code, out: result.stdout + result.stderr}
  }

  it('every host is its own: its own sshd and namespace, its own /etc/containers, and no Node.js', async () => {
    assert.equal(new Set(fleet.hosts.map((h: FleetHost) => h.namespace)).size, HOSTS.length)
    for (const h of HOSTS) {
      const node = await ssh(h, 'command -v node || command -v nodejs || ls /usr/lib/node_modules/npm')
      assert.notEqual(node.code, 0, `${h} has Node.js: ${node.out}`)
      await writeFile(fleet.path(h, '/etc/containers/whoami'), h)
      const mine = await ssh(h, `cat /etc/containers/whoami && echo && for m in ${BOUND.join(' ')}; do findmnt -no TARGET $m; done`)
      assert.equal(mine.out, [h, ...BOUND].join('\n') + '\n')
      await rm(fleet.path(h, '/etc/containers/whoami'))
    }
  })

  it('forks 5: the five hosts run a task at the same time (each waits until all five have started it)', async () => {
    const barrier = path.join(dir, 'barrier')
    await mkdir(barrier)
    const playbook = path.join(dir, 'barrier.yml')
    const wait = `touch ${barrier}/{{ inventory_hostname }}; for i in $(seq 150); do [ $(ls ${barrier} | wc -l) -ge ${HOSTS.length} ] && exit 0; sleep 0.1; done; exit 1`
    await writeFile(playbook, JSON.stringify([{hosts: 'container_hosts', gather_facts: false, tasks: [{name: 'barrier', 'ansible.builtin.shell': wait}]}]))
    const result = await fleet.play(playbook, {}, {})
    assert.equal(result.code, 0, result.output)
  })

  it('installs the single executable (3 hosts) and the .deb (2 hosts) with forks 5 and converges every host; the second run changes nothing', async () => {
    const first = await play('site.yml')
    assert.equal(first.code, 0, first.output)
    for (const h of HOSTS) {
      assert.ok(first.recap[h].changed > 0, `${h} unchanged on the first run:\n${first.output}`)
      assert.deepEqual((await policyOf(h)).transports.docker['registry.example.com:5000/shop'], [
        {type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/containers/alpha.gpg'},
      ])
      const cli = INSTALLS[h] === 'deb' ? '/usr/bin/imagetrust' : '/usr/local/bin/imagetrust'
      const version = await ssh(h, `command -v imagetrust && imagetrust --version && ! command -v node`)
      assert.equal(version.code, 0, `${h}: ${version.out}`)
      assert.match(version.out, new RegExp(`^${cli}\\nimagetrust/\\S+`))
      if (INSTALLS[h] === 'deb') assert.match((await ssh(h, 'dpkg-query -W -f \'${db:Status-Abbrev}${Version}\' imagetrust')).out, /^ii /)
      const unit = await ssh(h, 'cat /etc/systemd/system/imagetrust-check.service && readlink /etc/systemd/system/timers.target.wants/imagetrust-check.timer')
      assert.match(unit.out, new RegExp(`^ExecStart=${cli} check --config /etc/imagetrust/trust\\.yaml$`, 'm'))
      assert.match(unit.out, /^\/etc\/systemd\/system\/imagetrust-check\.timer$/m)
    }

    const snapshot = await trees()
    const second = await play('site.yml')
    assert.equal(second.code, 0, second.output)
    assert.deepEqual(changedOf(second), Object.fromEntries(HOSTS.map((h) => [h, 0])), second.output)
    assert.deepEqual(await trees(), snapshot)
  })

  it('check mode changes no byte and reports what the real run then changes: a new scope, a new key, a new binary, a newer .deb', async () => {
    trust.f1.scopes['registry.example.com:5000/new'] = {policy: 'signed', keys: ['alpha'], lookaside: 'https://sigs.example.com'}
    // f2: nothing. f3: another build of the binary (one byte more: its checksum differs).
    packageOf.f3 = path.join(dir, 'imagetrust-linux-x64')
    await copyFile(packages.binary, packageOf.f3)
    await appendFile(packageOf.f3, '\n')
    keys.f4['beta.asc'] = beta.publicKey
    trust.f4.keys.beta = {type: 'gpg', file: 'keys/beta.asc', fingerprint: beta.fingerprint}
    trust.f4.scopes['registry.example.com:5000/shop'].keys = ['alpha', 'beta']
    // f5: the same .deb with a newer version.
    const unpacked = path.join(dir, 'deb')
    await mustRun('dpkg-deb', ['--raw-extract', packages.deb, unpacked])
    const control = path.join(unpacked, 'DEBIAN/control')
    const version = /^Version: (.*)$/m.exec(await readFile(control, 'utf8'))![1]
    await writeFile(control, (await readFile(control, 'utf8')).replace(/^Version: .*$/m, `Version: ${version}.1`))
    packageOf.f5 = path.join(dir, `imagetrust_${version}.1_amd64.deb`)
    await mustRun('dpkg-deb', ['-Zgzip', '-z1', '--build', unpacked, packageOf.f5])

    const before = await trees()
    const checked = await play('site.yml', '--check', '--diff')
    assert.equal(checked.code, 0, checked.output)
    assert.deepEqual(await trees(), before, 'check mode wrote something')
    assert.deepEqual(HOSTS.map((h) => checked.recap[h].changed > 0), [true, false, true, true, true], checked.output)
    assert.match(checked.output, /\+\+\+ after: \/etc\/containers\/policy\.json\n[^]*?\+ +"registry\.example\.com:5000\/new"/)
    assert.match(checked.output, /\+\+\+ after: \/etc\/imagetrust\/keys\/beta\.asc/)

    const real = await play('site.yml')
    assert.equal(real.code, 0, real.output)
    assert.deepEqual(changedOf(real), changedOf(checked), `check mode said ${JSON.stringify(changedOf(checked))}\n${real.output}`)
    assert.ok((await policyOf('f1')).transports.docker['registry.example.com:5000/new'])
    assert.deepEqual(await readFile(fleet.path('f3', '/usr/local/bin/imagetrust')), await readFile(packageOf.f3))
    assert.equal((await ssh('f5', "dpkg-query -W -f '${Version}' imagetrust")).out, `${version}.1`)
  })

  it("drift.yml fails exactly the host edited by hand; the timer's check (its ExecStart, run over SSH) exits 2 there and 0 elsewhere", async () => {
    const file = fleet.path('f4', '/etc/containers/policy.json')
    const policy = JSON.parse(await readFile(file, 'utf8'))
    policy.transports.docker['registry.example.com:5000/shop'] = [{type: 'insecureAcceptAnything'}]
    await writeFile(file, JSON.stringify(policy, null, 4))
    const drift = await play('drift.yml')
    assert.notEqual(drift.code, 0, drift.output)
    assert.deepEqual(HOSTS.map((h) => drift.recap[h].failed), [0, 0, 0, 1, 0], drift.output)
    assert.match(drift.output, /drift on f4: \/etc\/containers\/policy\.json: content: scope docker:registry\.example\.com:5000\/shop changed: host has accept, trust file wants signedBy/)
    assert.match(drift.output, /fleet: 1 of 5 host\(s\) drifted: f4 \(\/etc\/containers\/policy\.json\); in sync: f1, f2, f3, f5/)

    // There is no systemd in these hosts (the role linked the timer; it would start at boot): run what it runs.
    for (const h of ['f4', 'f1']) {
      const unit = await ssh(h, 'cat /etc/systemd/system/imagetrust-check.service')
      const execStart = /^ExecStart=(.*)$/m.exec(unit.out)![1]
      const checked = await ssh(h, execStart)
      if (h === 'f1') {
        assert.equal(checked.code, 0, checked.out)
        continue
      }

      assert.equal(checked.code, 2, checked.out)
      const lines = checked.out.split('\n').filter((l) => l.includes('/etc/containers/policy.json'))
      assert.equal(lines.length, 1, checked.out)
      assert.match(lines[0], /scope docker:registry\.example\.com:5000\/shop changed: host has accept, trust file wants signedBy GPGKeys/)
    }
  })
})
