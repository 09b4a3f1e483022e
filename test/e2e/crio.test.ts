/**
 * CRI-O hosts, on fixture roots (CRI-O is not packaged for Debian 12) with a
 * stand-in `crio` on PATH that only prints a version. Enforcement of the files
 * written at CRI-O's paths is proven with real skopeo reading those files.
 */
import assert from 'node:assert/strict'
import {chmod, cp, mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, imagetrust} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/crio')

describe('CRI-O hosts', () => {
  let lab: Lab
  let key: GpgKey
  let env: NodeJS.ProcessEnv
  const images = {signed: '', unsigned: '', prodSigned: '', prodUnsigned: ''}

  before(async () => {
    lab = await Lab.started('itc-')
    key = await lab.makeGpgKey('crio')
    await lab.buildImage('localhost/c:1', 'crio')
    images.signed = await lab.push('localhost/c:1', 'global/app:1', key)
    images.unsigned = await lab.push('localhost/c:1', 'global/unsigned:1')
    images.prodSigned = await lab.push('localhost/c:1', 'prod/app:1', key)
    images.prodUnsigned = await lab.push('localhost/c:1', 'prod/unsigned:1')
    await writeFile(path.join(lab.dir, 'crio.asc'), key.publicArmored)
    // The stand-in crio: it only prints a version, as `crio --version` does.
    const bin = path.join(lab.dir, 'bin')
    await mkdir(bin)
    await writeFile(path.join(bin, 'crio'), '#!/bin/sh\necho "crio version 1.28.2"\n')
    await chmod(path.join(bin, 'crio'), 0o755)
    env = {...process.env, PATH: `${bin}:${process.env.PATH}`}
  })

  after(async () => {
    await lab?.stop()
  })

  async function fixtureRoot(name: 'default' | 'dropins'): Promise<string> {
    const root = path.join(lab.dir, `root-${name}`)
    await rm(root, {recursive: true, force: true})
    await cp(path.join(FIXTURES, name), root, {recursive: true})
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    return root
  }

  async function trust(namespaces = true): Promise<string> {
    const file = path.join(lab.dir, 'trust.yaml')
    const lines = [
      'version: 1',
      'default: reject',
      'keys:',
      `  crio: {file: crio.asc, fingerprint: ${key.fingerprint}}`,
      'scopes:',
      `  "${lab.registry}/global":`,
      '    policy: signed',
      '    keys: [crio]',
      `    lookaside: ${lab.lookasideUrl}`,
      `  "${lab.registry}/prod":`,
      '    policy: signed',
      '    keys: [crio]',
      `    lookaside: ${lab.lookasideUrl}`,
      ...(namespaces ? ['crio:', '  namespaces:', '    prod:', `      scopes: ["${lab.registry}/prod"]`] : []),
      '',
    ]
    await writeFile(file, lines.join('\n'))
    return file
  }

  it('detect finds the stand-in crio, merges drop-ins in name order and lists the namespace policies', async () => {
    const root = await fixtureRoot('dropins')
    await mkdir(path.join(root, 'etc/crio/namespaced'), {recursive: true})
    await writeFile(path.join(root, 'etc/crio/namespaced/prod.json'), '{"default":[{"type":"reject"}]}')
    const result = await imagetrust(['detect', '--root', root, '--json'], env)
    assert.equal(result.code, 0, result.stderr)
    const report = JSON.parse(result.stdout)
    const crioEngine = report.engines.find((e: {name: string}) => e.name === 'crio')
    assert.deepEqual({version: crioEngine.version, cimage: crioEngine.containersImage}, {version: '1.28.2', cimage: '5.27'})
    assert.equal(report.crio.signaturePolicy, '/etc/crio/policy.json')
    assert.equal(report.crio.signaturePolicyDir, '/etc/crio/namespaced')
    assert.equal(report.crio.effectivePolicy, '/etc/crio/policy.json')
    assert.deepEqual(report.crio.namespaces, [{namespace: 'prod', file: '/etc/crio/namespaced/prod.json'}])
    assert.equal(report.crio.unit, 'unknown')
  })

  it('apply writes the policy where CRI-O reads it, and one complete file per namespace; says no restart is needed', async () => {
    const root = await fixtureRoot('dropins')
    const config = await trust()
    const applied = await imagetrust(['apply', '--root', root, '-c', config], env)
    assert.equal(applied.code, 0, applied.stderr)
    assert.match(applied.stdout, /CRI-O re-reads its policy files and registries\.d on every pull: no restart or reload is needed\./)
    const read = async (p: string) => JSON.parse(await readFile(path.join(root, p), 'utf8'))
    const crioPolicy = await read('etc/crio/policy.json')
    const system = await read('etc/containers/policy.json')
    const prod = await read('etc/crio/namespaced/prod.json')
    // The namespace-only scope is in prod's file, not in the global ones.
    for (const global of [crioPolicy, system]) {
      assert.ok(global.transports.docker[`${lab.registry}/global`])
      assert.equal(global.transports.docker[`${lab.registry}/prod`], undefined)
    }

    assert.deepEqual(Object.keys(prod.transports.docker), [`${lab.registry}/global`, `${lab.registry}/prod`])
    assert.deepEqual(prod.default, [{type: 'reject'}])
    // CRI-O's config files are never touched.
    assert.equal(await readFile(path.join(root, 'etc/crio/crio.conf.d/10-signature-policy.conf'), 'utf8'), await readFile(path.join(FIXTURES, 'dropins/etc/crio/crio.conf.d/10-signature-policy.conf'), 'utf8'))
    const snapshot = await hashTree(root)
    const again = await imagetrust(['apply', '--root', root, '-c', config, '--json'], env)
    assert.equal(JSON.parse(again.stdout).changed, false)
    assert.deepEqual(await hashTree(root), snapshot)
  })

  it("real skopeo enforces the files at CRI-O's paths, globally and per namespace", async () => {
    const root = await fixtureRoot('dropins')
    assert.equal((await imagetrust(['apply', '--root', root, '-c', await trust()], env)).code, 0)
    const pull = (policy: string, image: string) =>
      lab.inSandbox(root, ['sh', '-c', `mkdir -p /etc/crio && mount --bind ${root}/etc/crio /etc/crio && exec "$@"`, 'crio', 'skopeo', '--policy', policy, 'copy', '--quiet', '--src-tls-verify=false', `docker://${image}`, `dir:${path.join(lab.dir, `out-${Date.now()}`)}`])
    assert.equal((await pull('/etc/crio/policy.json', images.signed)).code, 0)
    assert.match((await pull('/etc/crio/policy.json', images.unsigned)).stderr, /A signature was required/)
    // Outside the prod namespace, prod images fall to default: reject...
    assert.match((await pull('/etc/crio/policy.json', images.prodSigned)).stderr, /rejected by policy/)
    // ...inside it, signed prod images pull and unsigned ones do not.
    assert.equal((await pull('/etc/crio/namespaced/prod.json', images.prodSigned)).code, 0)
    assert.match((await pull('/etc/crio/namespaced/prod.json', images.prodUnsigned)).stderr, /A signature was required/)
  })

  it('explain names the policy CRI-O uses for a pull, per namespace', async () => {
    const root = await fixtureRoot('dropins')
    assert.equal((await imagetrust(['apply', '--root', root, '-c', await trust()], env)).code, 0)
    const explain = async (...args: string[]) => JSON.parse((await imagetrust(['explain', images.prodSigned, '--root', root, '--json', ...args], env)).stdout)
    const prod = await explain('--namespace', 'prod')
    assert.equal(prod.crio.policy, '/etc/crio/namespaced/prod.json')
    assert.equal(prod.policy.scope, `${lab.registry}/prod`)
    const dev = await explain('--namespace', 'dev')
    assert.equal(dev.crio.policy, '/etc/crio/policy.json')
    assert.equal(dev.policy.scope, null)
  })

  it('the default crio.conf (empty signature_policy) means the system policy; namespace files go to /etc/crio/policies', async () => {
    const root = await fixtureRoot('default')
    const applied = await imagetrust(['apply', '--root', root, '-c', await trust(), '--json'], env)
    assert.equal(applied.code, 0, applied.stderr)
    const files = JSON.parse(applied.stdout).files.map((f: {path: string}) => f.path.slice(root.length))
    assert.ok(files.includes('/etc/containers/policy.json'))
    assert.ok(files.includes('/etc/crio/policies/prod.json'))
    assert.ok(!files.includes('/etc/crio/policy.json'))
  })

  it('a namespace removed from the trust file loses its generated policy file', async () => {
    const root = await fixtureRoot('dropins')
    assert.equal((await imagetrust(['apply', '--root', root, '-c', await trust()], env)).code, 0)
    const applied = await imagetrust(['apply', '--root', root, '-c', await trust(false), '--json'], env)
    assert.equal(applied.code, 0, applied.stderr)
    assert.ok(JSON.parse(applied.stdout).files.some((f: {path: string; action: string}) => f.path.endsWith('/namespaced/prod.json') && f.action === 'delete'))
    await assert.rejects(readFile(path.join(root, 'etc/crio/namespaced/prod.json')), {code: 'ENOENT'})
    const policy = JSON.parse(await readFile(path.join(root, 'etc/crio/policy.json'), 'utf8'))
    assert.ok(policy.transports.docker[`${lab.registry}/prod`], 'the scope is global again')
  })

  it('verify sends namespace test pulls to crictl only, and says so when it is missing', async () => {
    const root = await fixtureRoot('dropins')
    const config = path.join(lab.dir, 'ns-test.yaml')
    await writeFile(config, (await readFile(await trust(), 'utf8')).replace(`  "${lab.registry}/prod":\n    policy: signed`, `  "${lab.registry}/prod":\n    test: {signed: ${images.prodSigned}}\n    policy: signed`))
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config], env)).code, 0)
    const result = await imagetrust(['verify', '--root', root, '-c', config, '--engine', 'skopeo', '--no-tls-verify', '--json'], env)
    assert.equal(result.code, 4)
    const report = JSON.parse(result.stdout)
    assert.deepEqual(report.results.map((r: {outcome: string; reason: string}) => [r.outcome, r.reason]), [['inconclusive', 'a pull in Kubernetes namespace prod needs CRI-O: verify --engine crictl']])
  })

  it('refuses crio namespaces with --user, and unknown scopes in a namespace', async () => {
    const config = path.join(lab.dir, 'bad-ns.yaml')
    await writeFile(config, 'version: 1\nscopes: {}\ncrio:\n  namespaces:\n    prod:\n      scopes: ["registry.example.com/nope"]\n')
    const result = await imagetrust(['check', '--root', lab.dir, '-c', config], env)
    assert.equal(result.code, 1)
    assert.match(result.stderr, /bad-ns\.yaml:6 .*scope "registry\.example\.com\/nope" is not defined under scopes:/)
    const home = path.join(lab.dir, 'ns-user-home')
    const asUser = await imagetrust(['apply', '--user', '--root', await fixtureRoot('default'), '-c', await trust()], {...env, HOME: home})
    assert.equal(asUser.code, 1)
    assert.match(asUser.stderr, /crio\.namespaces are system-wide: apply them without --user/)
  })
})
