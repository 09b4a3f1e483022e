/**
 * The Ansible role and playbooks on a fleet of three hosts, for real with
 * ansible-playbook: each host is ansible_connection=local with its own --root
 * sandbox and its own install prefix, standing for a separate machine. The
 * CLI is installed by the role from the tarball `npm pack` makes. Runs are
 * few and shared between scenarios: ansible-playbook is slow.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, REPO_ROOT, mustRun, run, runIsolated} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

const HOSTS = ['h1', 'h2', 'h3'] as const
type Host = (typeof HOSTS)[number]
type Trust = {version: 1; default?: string; keys: Record<string, unknown>; scopes: Record<string, Record<string, unknown>>}
interface HostVars {
  trust: Trust
  keys: Record<string, string>
  verify?: boolean
}

interface Play {
  code: number
  output: string
  recap: Record<Host, {changed: number; failed: number}>
}

describe('Ansible role and playbooks on a fleet of three hosts', () => {
  let lab: Lab
  let dir: string
  let tarball: string
  let alpha: GpgKey
  let beta: GpgKey
  let signed: string
  let unsigned: string
  const vars = {} as Record<Host, HostVars>
  /** After the first two runs the CLI and the timer are in place; later runs skip those tasks (they are slow, and not what they test). */
  let installed = false
  const root = (h: Host): string => path.join(dir, h, 'root')
  const policyOf = async (h: Host): Promise<{default: unknown; transports: {docker: Record<string, unknown>}}> =>
    JSON.parse(await readFile(path.join(root(h), 'etc/containers/policy.json'), 'utf8'))
  const trees = async (): Promise<Record<Host, Record<string, string>>> =>
    Object.fromEntries(await Promise.all(HOSTS.map(async (h) => [h, await hashTree(root(h))]))) as Record<Host, Record<string, string>>

  before(async () => {
    lab = await Lab.started('imagetrust-fleet-')
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-fleet-'))
    // The package as it ships (npm test has just built dist/).
    await mustRun('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], {cwd: REPO_ROOT})
    tarball = path.join(dir, (await readdir(dir)).find((n) => n.endsWith('.tgz'))!)
    ;[alpha, beta] = await Promise.all([lab.makeGpgKey('falpha'), lab.makeGpgKey('fbeta')])
    await lab.buildImage('localhost/fleet:1', 'fleet')
    signed = await lab.push('localhost/fleet:1', 'shop/app:1', alpha)
    unsigned = await lab.push('localhost/fleet:1', 'shop/unsigned:1')
    for (const h of HOSTS) {
      await mkdir(path.join(root(h), 'etc/containers'), {recursive: true})
      await writeFile(path.join(root(h), 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
      vars[h] = {
        keys: {'alpha.asc': alpha.publicArmored},
        trust: {
          version: 1,
          default: 'reject',
          keys: {alpha: {type: 'gpg', file: 'keys/alpha.asc', fingerprint: alpha.fingerprint}},
          scopes: {
            [`${lab.registry}/shop`]: {policy: 'signed', keys: ['alpha'], lookaside: lab.lookasideUrl},
            'registry.example.com:5000/other': {policy: 'reject'},
          },
        },
      }
    }
  })

  after(async () => {
    await lab?.stop()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  async function play(playbook: 'site.yml' | 'drift.yml', ...extra: string[]): Promise<Play> {
    const inventory = path.join(dir, 'inventory.json')
    const hosts = Object.fromEntries(
      HOSTS.map((h) => [
        h,
        {
          imagetrust_root: root(h),
          imagetrust_prefix: path.join(dir, h, 'prefix'),
          imagetrust_trust: vars[h].trust,
          imagetrust_keys: vars[h].keys,
          imagetrust_verify: vars[h].verify ?? false,
          ...(installed ? {imagetrust_install: false, imagetrust_check_timer: false, imagetrust_command: path.join(dir, h, 'prefix/bin/imagetrust')} : {}),
        },
      ]),
    )
    await writeFile(
      inventory,
      JSON.stringify({
        all: {
          children: {container_hosts: {hosts}},
          vars: {
            ansible_connection: 'local',
            ansible_python_interpreter: '/usr/bin/python3',
            imagetrust_become: false,
            imagetrust_install: tarball,
            imagetrust_npm_args: ['--prefer-offline'],
            imagetrust_check_timer: true,
            imagetrust_extra_args: ['--engine', 'skopeo', '--no-tls-verify'],
          },
        },
      }),
    )
    const env = {
      ...process.env,
      HOME: dir,
      npm_config_cache: path.join(os.homedir(), '.npm'),
      ANSIBLE_LOCAL_TEMP: path.join(dir, 'ansible-tmp'),
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_PIPELINING: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
    }
    const result = await runIsolated('ansible-playbook', ['-i', inventory, path.join(REPO_ROOT, 'ansible', playbook), ...extra], {env})
    const output = result.stdout + result.stderr
    const recap = {} as Play['recap']
    for (const h of HOSTS) {
      const m = new RegExp(`^${h}\\s*:\\s*ok=\\d+\\s+changed=(\\d+)\\s+unreachable=\\d+\\s+failed=(\\d+)`, 'm').exec(result.stdout)
      assert.ok(m, `no recap for ${h}:\n${output}`)
      recap[h] = {changed: Number(m[1]), failed: Number(m[2])}
    }

    return {code: result.code, output, recap}
  }

  const changedOf = (p: Play): Record<Host, number> => Object.fromEntries(HOSTS.map((h) => [h, p.recap[h].changed])) as Record<Host, number>

  it('ansible-doc documents every variable of the role from its argument_specs', async () => {
    const doc = await run('ansible-doc', ['-t', 'role', '-r', path.join(REPO_ROOT, 'ansible/roles'), 'imagetrust'], {env: {...process.env, ANSIBLE_NOCOLOR: '1', PAGER: 'cat'}})
    assert.equal(doc.code, 0, doc.stderr)
    const defaults = await readFile(path.join(REPO_ROOT, 'ansible/roles/imagetrust/defaults/main.yml'), 'utf8')
    const names = [...defaults.matchAll(/^(imagetrust_\w+):/gm)].map((m) => m[1])
    assert.ok(names.length >= 10, defaults)
    for (const name of names) assert.match(doc.stdout, new RegExp(`${name}\\b`), `${name} is not documented`)
  })

  it('the module says so when the CLI is not installed', async () => {
    const args = path.join(dir, 'module-args.json')
    await writeFile(args, JSON.stringify({ANSIBLE_MODULE_ARGS: {command: [path.join(dir, 'nowhere/imagetrust')], config: '/dev/null', action: 'check'}}))
    const result = await run('/usr/bin/python3', [path.join(REPO_ROOT, 'ansible/roles/imagetrust/library/imagetrust.py'), args])
    const out = JSON.parse(result.stdout)
    assert.equal(out.failed, true, result.stdout)
    assert.equal(out.msg, `imagetrust not found at ${path.join(dir, 'nowhere/imagetrust')}`)
  })

  it('installs the CLI from the tarball and converges every host; the second run changes nothing', async () => {
    const first = await play('site.yml')
    assert.equal(first.code, 0, first.output)
    for (const h of HOSTS) {
      assert.ok(first.recap[h].changed > 0, `${h} unchanged on the first run:\n${first.output}`)
      assert.deepEqual((await policyOf(h)).transports.docker[`${lab.registry}/shop`], [
        {type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/containers/alpha.gpg'},
      ])
      const units = path.join(root(h), 'etc/systemd/system')
      assert.match(await readFile(path.join(units, 'imagetrust-check.service'), 'utf8'), new RegExp(`ExecStart=${path.join(dir, h, 'prefix/bin/imagetrust')} check `))
      assert.ok((await readdir(path.join(units, 'timers.target.wants'))).includes('imagetrust-check.timer'))
    }

    const snapshot = await trees()
    const second = await play('site.yml')
    assert.equal(second.code, 0, second.output)
    assert.deepEqual(changedOf(second), {h1: 0, h2: 0, h3: 0}, second.output)
    assert.deepEqual(await trees(), snapshot)
    installed = true
  })

  it('the installed units pass systemd-analyze verify', async (t) => {
    if ((await run('systemd-analyze', ['--version']).catch(() => ({code: 127}))).code !== 0) {
      t.skip('systemd-analyze is not installed here')
      return
    }

    const units = path.join(root('h1'), 'etc/systemd/system')
    const result = await run('systemd-analyze', ['verify', '--man=no', path.join(units, 'imagetrust-check.service'), path.join(units, 'imagetrust-check.timer')])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.doesNotMatch(result.stderr, /imagetrust-check/)
  })

  it('check mode changes no byte, shows the policy.json diff, and its changed matches the real run for every kind of change', async () => {
    // Round 1: a new scope (h1), a removed scope (h2), a new key (h3).
    // Signed without a lookaside: the tool warns, and the play must show it.
    vars.h1.trust.scopes['registry.example.com:5000/new'] = {policy: 'signed', keys: ['alpha']}
    delete vars.h2.trust.scopes['registry.example.com:5000/other']
    vars.h3.keys['beta.asc'] = beta.publicArmored
    vars.h3.trust.keys.beta = {type: 'gpg', file: 'keys/beta.asc', fingerprint: beta.fingerprint}
    vars.h3.trust.scopes[`${lab.registry}/shop`].keys = ['alpha', 'beta']
    // Round 2: a test:-only change (h1, verified for real), a default change (h2), nothing (h3).
    const round2 = (): void => {
      vars.h1.trust.scopes[`${lab.registry}/shop`].test = {signed, unsigned}
      vars.h1.verify = true
      vars.h2.trust.default = 'accept'
    }

    for (const [round, prepare] of [[1, () => undefined], [2, round2]] as const) {
      prepare()
      const before = await trees()
      const checked = await play('site.yml', '--check', '--diff')
      assert.equal(checked.code, 0, checked.output)
      assert.deepEqual(await trees(), before, `round ${round}: check mode wrote something`)
      if (round === 1) {
        assert.match(checked.output, new RegExp(`\\+\\+\\+ after: ${root('h1')}/etc/containers/policy\\.json\\n[^]*?\\+ +"registry\\.example\\.com:5000/new"`))
        assert.match(checked.output, new RegExp(`--- before: ${root('h2')}/etc/containers/policy\\.json`))
        assert.deepEqual(HOSTS.map((h) => checked.recap[h].changed > 0), [true, true, true], checked.output)
        assert.match(checked.output, /\[WARNING\]:\s+scope\s+"registry\.example\.com:5000\/new"\s+is\s+signed\s+but\s+has\s+no\s+lookaside/)
      } else {
        assert.deepEqual(HOSTS.map((h) => checked.recap[h].changed > 0), [true, true, false], checked.output)
      }

      const real = await play('site.yml')
      assert.equal(real.code, 0, real.output)
      assert.deepEqual(changedOf(real), changedOf(checked), `round ${round}: check mode said ${JSON.stringify(changedOf(checked))}\n${real.output}`)
    }

    assert.deepEqual((await policyOf('h1')).transports.docker['registry.example.com:5000/new'], [{type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/containers/alpha.gpg'}])
    assert.equal((await policyOf('h2')).transports.docker['registry.example.com:5000/other'], undefined)
    assert.deepEqual((await policyOf('h2')).default, [{type: 'insecureAcceptAnything'}])
  })

  it('drift.yml fails exactly the host edited by hand, naming the file and the change, and the timer\'s check logs it and fails', async () => {
    const file = path.join(root('h3'), 'etc/containers/policy.json')
    const policy = JSON.parse(await readFile(file, 'utf8'))
    policy.transports.docker[`${lab.registry}/shop`] = [{type: 'insecureAcceptAnything'}]
    await writeFile(file, JSON.stringify(policy, null, 4))
    const drift = await play('drift.yml')
    assert.notEqual(drift.code, 0, drift.output)
    assert.deepEqual(HOSTS.map((h) => drift.recap[h].failed), [0, 0, 1], drift.output)
    const scope = `docker:${lab.registry}/shop`.replaceAll('.', '\\.')
    assert.match(drift.output, new RegExp(`drift on h3: ${file.replaceAll('.', '\\.')}: content: scope ${scope} changed: host has accept, trust file wants signedBy`))
    assert.match(drift.output, /fleet: 1 of 3 host\(s\) drifted: h3 \([^)]*policy\.json\); in sync: h1, h2/)

    // What the timer runs: its ExecStart, as systemd would run it.
    const unit = await readFile(path.join(root('h3'), 'etc/systemd/system/imagetrust-check.service'), 'utf8')
    const argv = /^ExecStart=(.*)$/m.exec(unit)![1].split(' ')
    const checked = await runIsolated(argv[0], argv.slice(1))
    assert.equal(checked.code, 2, checked.stdout + checked.stderr)
    const lines = checked.stdout.split('\n').filter((l) => l.includes(file))
    assert.equal(lines.length, 1, checked.stdout)
    assert.match(lines[0], new RegExp(`scope ${scope} changed: host has accept, trust file wants signedBy GPGKeys`))
  })

  it('a bad trust file fails with the tool\'s message and writes nothing; imagetrust_verify fails the play on a wrong key', async () => {
    for (const h of ['h1', 'h2'] as const) vars[h].trust.scopes['registry.example.com:5000/bad'] = {policy: 'signed', keys: ['ghost']}
    // h3: the images are signed by alpha, but the trust file now wants beta only.
    vars.h3.trust.scopes[`${lab.registry}/shop`] = {policy: 'signed', keys: ['beta'], lookaside: lab.lookasideUrl, test: {signed, unsigned}}
    vars.h3.verify = true
    const before = await trees()
    const result = await play('site.yml')
    assert.notEqual(result.code, 0)
    assert.deepEqual(HOSTS.map((h) => result.recap[h].failed), [1, 1, 1], result.output)
    assert.match(result.output, /fatal: \[h1\]: FAILED! => .*imagetrust apply failed \(exit 1\): .*?trust\.yaml:\d+.*?key \\"ghost\\" is not defined/)
    assert.match(result.output, /fatal: \[h3\]: FAILED! => .*imagetrust apply --verify failed \(exit 3\): enforcement not confirmed, nothing was installed/)
    // Nothing written on any host: not even the trust file (h3's is put back).
    assert.deepEqual(await trees(), before)
  })
})
