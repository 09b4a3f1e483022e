/**
 * imagetrust status on a --root host with a foreign scope overriding an
 * owned one, scopes taken over (a replaced host scope and a --take-over), a
 * user policy that shadows the system one, and a CRI-O namespace policy.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {imagetrust} from '../support/lab.ts'
import {makeKey} from '../support/hostroot.ts'

interface Scope {
  transport: string
  scope: string
  owner: string
  requirement: string
  keys: Array<{path: string; fingerprints: string[]; expires: string[]; installed: boolean}>
  lookaside?: string
  shadows?: string
  overrides?: string
  overriddenBy: string[]
}

interface Target {
  kind: string
  namespace?: string
  file: string
  shadowedBy?: string
  default?: {requirement: string; owner: string}
  scopes: Scope[]
}

describe('status', () => {
  let dir: string
  let root: string
  let config: string
  let fingerprint: string
  const home = '/home/tester'
  const env = {...process.env, HOME: home}

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'its-'))
    root = path.join(dir, 'root')
    const acme = await makeKey('acme')
    fingerprint = acme.fingerprint
    await writeFile(path.join(dir, 'acme.asc'), acme.publicKey)
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await mkdir(path.join(root, 'etc/crio'), {recursive: true})
    await writeFile(path.join(root, 'etc/crio/crio.conf'), '[crio.image]\nsignature_policy_dir = "/etc/crio/policies"\n')
    const accept = [{type: 'insecureAcceptAnything'}]
    await writeFile(
      path.join(root, 'etc/containers/policy.json'),
      JSON.stringify({default: accept, transports: {docker: {'quay.io': accept, 'reg.example.com:5000/app': accept, 'reg.example.com:5000/legacy': [{type: 'reject'}]}}}),
    )
    config = path.join(dir, 'trust.yaml')
    await writeFile(
      config,
      [
        'version: 1',
        'default: reject',
        'keys:',
        `  acme: {file: acme.asc, fingerprint: ${fingerprint}}`,
        'scopes:',
        '  "reg.example.com:5000": {policy: signed, keys: [acme], lookaside: "http://127.0.0.1:9/sigs"}',
        '  "reg.example.com:5000/legacy": {policy: signed, keys: [acme]}',
        '  "reg.example.com:5000/prod": {policy: reject}',
        'crio:',
        '  namespaces:',
        '    prod:',
        '      scopes: ["reg.example.com:5000/prod"]',
        '',
      ].join('\n'),
    )
    const applied = await imagetrust(['apply', '--root', root, '-c', config, '--take-over', 'quay.io'], env)
    assert.equal(applied.code, 0, applied.stderr)
    // A user policy that shadows the system one, written after apply, as a user would.
    await mkdir(path.join(root, home, '.config/containers'), {recursive: true})
    await writeFile(path.join(root, home, '.config/containers/policy.json'), JSON.stringify({default: accept}))
    assert.equal((await imagetrust(['check', '--root', root, '-c', config], env)).code, 2)
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  async function status(): Promise<{targets: Target[]; lastApply: string; lastCheck: string; warnings: string[]}> {
    const result = await imagetrust(['status', '--root', root, '-c', config, '--json'], env)
    assert.equal(result.code, 0, result.stderr)
    return JSON.parse(result.stdout)
  }

  const scope = (target: Target | undefined, name: string): Scope => {
    const found = target?.scopes.find((s) => s.transport === 'docker' && s.scope === name)
    assert.ok(found, `scope ${name} missing from ${JSON.stringify(target?.scopes.map((s) => s.scope))}`)
    return found
  }

  it('names the owner of every scope, and what overrides what', async () => {
    const report = await status()
    const system = report.targets.find((t) => t.kind === 'system')!
    assert.equal(system.file, path.join(root, 'etc/containers/policy.json'))
    assert.deepEqual(system.default, {requirement: 'reject everything', requirements: [{type: 'reject'}], owner: 'imagetrust'})
    const registry = scope(system, 'reg.example.com:5000')
    assert.equal(registry.owner, 'imagetrust')
    assert.equal(registry.keys[0].path, '/etc/pki/containers/acme.gpg')
    assert.deepEqual(registry.keys[0].fingerprints, [fingerprint])
    assert.equal(registry.keys[0].installed, true)
    assert.equal(registry.lookaside, 'http://127.0.0.1:9/sigs')
    assert.match(registry.requirement, /^GPG \(simple signing\) signature by \/etc\/pki\/containers\/acme\.gpg, identity matchRepoDigestOrExact$/)
    assert.equal(registry.overriddenBy.length, 1)
    assert.match(registry.overriddenBy[0], /^scope "reg\.example\.com:5000\/app" \(insecureAcceptAnything\) overrides scope "reg\.example\.com:5000"/)
    const app = scope(system, 'reg.example.com:5000/app')
    assert.equal(app.owner, 'foreign')
    assert.match(app.overrides!, /overrides scope "reg\.example\.com:5000" .* accepted that the trust file refuses/)
    assert.equal(app.shadows, 'scope "reg.example.com:5000"')
    assert.equal(scope(system, 'reg.example.com:5000/legacy').owner, 'taken over')
    const quay = scope(system, 'quay.io')
    assert.equal(quay.owner, 'taken over')
    assert.equal(quay.requirement, 'reject everything')
    assert.ok(report.warnings.some((w) => /reg\.example\.com:5000\/app.*overrides/.test(w)))
  })

  it('shows the shadowing user policy, and the CRI-O namespace policy with its owner', async () => {
    const report = await status()
    const system = report.targets.find((t) => t.kind === 'system')!
    assert.equal(system.shadowedBy, path.join(root, home, '.config/containers/policy.json'))
    const user = report.targets.find((t) => t.kind === 'user')!
    assert.equal(user.default?.owner, 'foreign')
    assert.equal(user.default?.requirement, 'accept anything, signed or not')
    const prod = report.targets.find((t) => t.kind === 'crio-namespace' && t.namespace === 'prod')
    assert.ok(prod, JSON.stringify(report.targets.map((t) => t.kind)))
    assert.equal(prod.file, path.join(root, 'etc/crio/policies/prod.json'))
    assert.equal(scope(prod, 'reg.example.com:5000/prod').owner, 'imagetrust')
    assert.equal(scope(prod, 'reg.example.com:5000/prod').requirement, 'reject everything')
    assert.ok(report.warnings.some((w) => w.includes('.config/containers/policy.json shadows')))
  })

  it('records when apply and check last ran, and prints a table', async () => {
    const report = await status()
    assert.ok(report.lastApply && Date.parse(report.lastApply) <= Date.parse(report.lastCheck), JSON.stringify([report.lastApply, report.lastCheck]))
    const text = await imagetrust(['status', '--root', root, '-c', config], env)
    assert.match(text.stdout, /^ {2}reg\.example\.com:5000\/app +foreign +accept anything, signed or not$/m)
    assert.match(text.stdout, /^ {6}OVERRIDES: scope "reg\.example\.com:5000\/app"/m)
    assert.match(text.stdout, /^ {2}quay\.io +taken over +reject everything$/m)
    assert.match(text.stdout, /^last apply: \d{4}-\d\d-\d\dT.*; last check: \d{4}-/m)
  })
})
