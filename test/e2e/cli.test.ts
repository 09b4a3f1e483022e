/** The built CLI as a script sees it: exit codes, --json shapes, errors that name file and line, nothing written on bad input. */
import assert from 'node:assert/strict'
import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {imagetrust} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

describe('imagetrust CLI contract', () => {
  let dir: string
  let root: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-cli-'))
    root = path.join(dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  const BAD_INPUTS: Array<[name: string, trust: string, message: RegExp]> = [
    ['malformed YAML', 'version: 1\nscopes: {a: [}\n', /trust\.yaml:2:\d+: /],
    ['bad scope syntax', 'version: 1\nscopes:\n  "Registry.Example.com/UP":\n    policy: reject\n', /trust\.yaml:3 .*invalid repository path component "UP"/],
    ['undefined key', 'version: 1\nscopes:\n  "r.example.com":\n    policy: signed\n    keys: [ghost]\n', /trust\.yaml:5 \(scopes\.r\.example\.com\.keys\.0\): key "ghost" is not defined/],
    ['unreadable key file', 'version: 1\nkeys:\n  k: {file: missing.asc}\n', /trust\.yaml:3: key "k": cannot read .*missing\.asc: ENOENT/],
    ['bogus key', 'version: 1\nkeys:\n  k: {data: "not a key"}\n', /trust\.yaml:3: key "k" is not a readable OpenPGP public key/],
  ]

  for (const [name, trust, message] of BAD_INPUTS) {
    it(`${name}: exit 1, names file and line, host unchanged`, async () => {
      const config = path.join(dir, 'trust.yaml')
      await writeFile(config, trust)
      const before = await hashTree(root)
      for (const command of ['apply', 'plan', 'check']) {
        const result = await imagetrust([command, '--root', root, '-c', config])
        assert.equal(result.code, 1, `${command}: ${result.stdout}${result.stderr}`)
        assert.match(result.stderr, message)
      }

      assert.deepEqual(await hashTree(root), before)
    })
  }

  it('a missing trust file is a clear error with a hint', async () => {
    const result = await imagetrust(['check', '--root', root])
    assert.equal(result.code, 1)
    assert.match(result.stderr, new RegExp(`trust file ${root}/etc/imagetrust/trust.yaml does not exist`))
    assert.match(result.stderr, /hint: /)
  })

  it('plan prints a unified diff; check --json gives inSync and drift; apply --json the documented shape', async () => {
    const config = path.join(dir, 'ok.yaml')
    await writeFile(config, 'version: 1\ndefault: reject\nlocalTransports: default\nscopes:\n  "r.example.com":\n    policy: accept\n')
    const plan = await imagetrust(['plan', '--root', root, '-c', config])
    assert.equal(plan.code, 0)
    assert.match(plan.stdout, /^--- .*policy\.json\n\+\+\+ .*policy\.json\n@@ /m)
    assert.match(plan.stdout, /^-\{"default":\[\{"type":"insecureAcceptAnything"\}\]\}$/m)
    assert.match(plan.stdout, /^\+ {12}"type": "reject"$/m)
    const drift = await imagetrust(['check', '--root', root, '-c', config, '--json'])
    assert.equal(drift.code, 2)
    const report = JSON.parse(drift.stdout)
    assert.equal(report.inSync, false)
    const {changes, ...entry} = report.drift[0]
    assert.deepEqual(entry, {path: path.join(root, 'etc/containers/policy.json'), kind: 'policy', action: 'update', reasons: ['content']})
    // What changed inside the file, named.
    assert.deepEqual(
      changes.map((c: {what: string; change: string; name?: string; found?: string; expected?: string}) => [c.what, c.change, c.name, c.found, c.expected]),
      [
        ['default', 'changed', undefined, 'accept', 'reject'],
        ['scope', 'removed', 'docker:r.example.com', undefined, 'accept'],
      ],
    )
    const applied = JSON.parse((await imagetrust(['apply', '--root', root, '-c', config, '--json'])).stdout)
    assert.equal(applied.changed, true)
    assert.match(applied.backup, /^\d{8}T\d+Z-[0-9a-f]{6}$/)
    assert.deepEqual(applied.files.map((f: {action: string}) => f.action), ['update', 'create'])
    const clean = await imagetrust(['check', '--root', root, '-c', config, '--json'])
    assert.equal(clean.code, 0)
    assert.deepEqual(JSON.parse(clean.stdout), {inSync: true, drift: [], warnings: [], basis: 'unchanged since apply'})
  })

  it('rollback refuses to lose a later hand edit unless --force', async () => {
    const policyPath = path.join(root, 'etc/containers/policy.json')
    await writeFile(policyPath, '{"default":[{"type":"reject"}]}\n')
    const refused = await imagetrust(['rollback', '--root', root])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /changed after apply .*rollback would lose that change/)
    const forced = await imagetrust(['rollback', '--root', root, '--force', '--json'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.equal(JSON.parse(forced.stdout).files.length, 2)
  })

  it('detect reports engines and a $HOME policy that shadows /etc', async () => {
    const home = path.join(dir, 'home')
    await mkdir(path.join(root, home, '.config/containers'), {recursive: true})
    await writeFile(path.join(root, home, '.config/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}')
    const result = await imagetrust(['detect', '--root', root, '--json'], {...process.env, HOME: home})
    assert.equal(result.code, 0, result.stderr)
    const report = JSON.parse(result.stdout)
    assert.ok(report.engines.some((e: {name: string}) => e.name === 'podman'))
    assert.equal(report.capabilities.policy.signedByKeyPaths, true)
    const shadow = report.configPaths.find((p: {shadows?: string}) => p.shadows)
    assert.equal(shadow.path, path.join(root, home, '.config/containers/policy.json'))
    assert.match(report.warnings[0], /shadows \/etc\/containers\/policy\.json/)
  })

  it('an unwritable target is a clear error, and the old file stays', async () => {
    const config = path.join(dir, 'ro.yaml')
    await writeFile(config, 'version: 1\ndefault: accept\n')
    const roRoot = path.join(dir, 'ro-root')
    await mkdir(path.join(roRoot, 'etc/containers'), {recursive: true})
    await writeFile(path.join(roRoot, 'etc/containers/policy.json'), '{"default":[{"type":"reject"}]}\n')
    // chmod is no barrier for root, so make the directory a file's child instead.
    await rm(path.join(roRoot, 'etc/containers'), {recursive: true})
    await writeFile(path.join(roRoot, 'etc/containers'), 'not a directory')
    const result = await imagetrust(['apply', '--root', roRoot, '-c', config])
    assert.equal(result.code, 1)
    assert.match(result.stderr, /ENOTDIR|not a directory/)
    void chmod
  })
})
