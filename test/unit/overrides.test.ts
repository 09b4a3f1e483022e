import assert from 'node:assert/strict'
import {afterEach, before, beforeEach, describe, it} from 'node:test'

import {planDrift} from '../../src/plan/drift.ts'
import {findOverrides} from '../../src/policy/overrides.ts'
import type {Policy, PolicyRequirement} from '../../src/policy/types.ts'
import {makeKey, TestHost} from '../support/hostroot.ts'

const ACCEPT: PolicyRequirement = {type: 'insecureAcceptAnything'}
const REJECT: PolicyRequirement = {type: 'reject'}
const signed = (key: string): PolicyRequirement => ({type: 'signedBy', keyType: 'GPGKeys', keyPath: `/etc/pki/containers/${key}.gpg`})

/**
 * One table for "which foreign rule decides instead of ours": the docker
 * scopes present (owned ones marked with a leading +), the default, and the
 * overrides expected as "foreign>hidden:effect" (hidden "default" for the global default).
 */
const TABLE: Array<[name: string, scopes: Array<[string, PolicyRequirement]>, defaultReq: PolicyRequirement | null, expected: string[]]> = [
  ['a more specific accept under a signed registry', [['+reg:5000', signed('a')], ['reg:5000/app', ACCEPT]], null, ['reg:5000/app>reg:5000:weaker']],
  ['a tag scope under a signed repository', [['+reg.example.com/ns/app', signed('a')], ['reg.example.com/ns/app:1', ACCEPT]], null, ['reg.example.com/ns/app:1>reg.example.com/ns/app:weaker']],
  ['signed by another key is weaker too', [['+reg:5000', signed('a')], ['reg:5000/app', signed('b')]], null, ['reg:5000/app>reg:5000:weaker']],
  ['the same requirement is no override', [['+reg:5000', signed('a')], ['reg:5000/app', signed('a')]], null, []],
  ['a foreign reject under ours is stronger', [['+reg:5000', signed('a')], ['reg:5000/app', REJECT]], null, ['reg:5000/app>reg:5000:stronger']],
  ['a broader foreign scope is no override', [['+reg:5000/app', signed('a')], ['reg:5000', ACCEPT]], null, []],
  ['a host beats an owned wildcard', [['+*.example.com', signed('a')], ['reg.example.com', ACCEPT]], null, ['reg.example.com>*.example.com:weaker']],
  ['a narrower wildcard beats an owned wildcard', [['+*.com', signed('a')], ['*.example.com', ACCEPT]], null, ['*.example.com>*.com:weaker']],
  ['the nearest owned scope is the one hidden', [['+reg.example.com', signed('a')], ['+reg.example.com/ns', signed('b')], ['reg.example.com/ns/app', ACCEPT]], null, ['reg.example.com/ns/app>reg.example.com/ns:weaker']],
  ['a foreign reject between does not hide an accept beneath it', [['+reg.example.com', signed('a')], ['reg.example.com/ns', REJECT], ['reg.example.com/ns/app', ACCEPT]], null, ['reg.example.com/ns>reg.example.com:stronger', 'reg.example.com/ns/app>reg.example.com:weaker']],
  ['a port-less host does not cover a host with a port', [['+reg.example.com:5000', signed('a')], ['reg.example.com', ACCEPT]], null, []],
  ['an unrelated registry is not our scope', [['+reg:5000', signed('a')], ['quay.io', ACCEPT]], null, []],
  ['transport-wide "" accept under default: reject', [['', ACCEPT]], REJECT, ['>default:weaker']],
  ['an unrelated accept under default: reject', [['quay.io', ACCEPT]], REJECT, ['quay.io>default:weaker']],
  ['a foreign signed rule under default: reject is the host\'s trust', [['registry.redhat.io', signed('redhat')]], REJECT, []],
  ['an accept beneath a foreign "" still overrides default: reject', [['', REJECT], ['quay.io', ACCEPT]], REJECT, ['quay.io>default:weaker']],
  ['without an owned default, accept rules stand', [['quay.io', ACCEPT], ['', ACCEPT]], null, []],
  ['a scope that never matches overrides nothing', [['+docker.io/library/busybox', signed('a')], ['busybox', ACCEPT]], REJECT, []],
  ['"" does not hide an owned scope', [['+reg:5000', signed('a')], ['', ACCEPT]], null, []],
  ['signedBaseLayer refuses everything: stronger, not weaker', [['+reg:5000', signed('a')], ['reg:5000/app', {type: 'signedBaseLayer', baseLayerIdentity: {type: 'matchRepository'}}]], null, ['reg:5000/app>reg:5000:stronger']],
  ['a keyType containers/image cannot evaluate refuses everything', [['+reg:5000', signed('a')], ['reg:5000/app', {type: 'signedBy', keyType: 'X509Certificates', keyPath: '/x'}]], null, ['reg:5000/app>reg:5000:stronger']],
]

describe('foreign rules that override the trust file (one table)', () => {
  for (const [name, scopes, defaultReq, expected] of TABLE) {
    it(name, () => {
      const policy: Policy = {
        default: [defaultReq ?? ACCEPT],
        transports: [{name: 'docker', scopes: scopes.map(([scope, requirement]) => ({scope: scope.replace(/^\+/, ''), requirements: [requirement]}))}],
      }
      const owned = new Set(scopes.filter(([s]) => s.startsWith('+')).map(([s]) => s.slice(1)))
      const found = findOverrides(policy, {scopes: owned, ownsDefault: defaultReq !== null})
      assert.deepEqual(
        found.map((o) => `${o.scope}>${o.hides ?? 'default'}:${o.effect}`),
        expected,
      )
    })
  }
})

describe('apply, check and --take-over with overriding foreign rules', () => {
  const POLICY = '/etc/containers/policy.json'
  let host: TestHost
  let acme: Awaited<ReturnType<typeof makeKey>>

  before(async () => {
    acme = await makeKey('acme')
  })

  beforeEach(async () => {
    host = await TestHost.create()
    await host.local('acme.asc', acme.publicKey)
  })

  afterEach(async () => {
    await host?.remove()
  })

  const trust = (scopes: string, extra = '') =>
    host.local('trust.yaml', ['version: 1', extra, 'keys:', '  acme: {file: acme.asc}', 'scopes:', scopes].join('\n'))
  const SIGNED = '  "registry.example.com:5000":\n    policy: signed\n    keys: [acme]\n    lookaside: https://sigs.example.com'
  const foreignApp = (requirement: PolicyRequirement) =>
    host.write(POLICY, JSON.stringify({default: [ACCEPT], transports: {docker: {'registry.example.com:5000/app': [requirement]}}}))

  async function drift(config: string) {
    const prepared = await host.plan(config)
    return planDrift(prepared.plan, (p) => prepared.root.resolve(p))
  }

  it('a foreign more specific accept found before apply: apply warns naming both, check reports overridden', async () => {
    await foreignApp(ACCEPT)
    const config = await trust(SIGNED)
    const applied = await host.apply(config)
    const warning = applied.warnings.find((w) => w.includes('overrides'))
    assert.ok(warning, JSON.stringify(applied.warnings))
    assert.match(warning, /scope "registry\.example\.com:5000\/app" \(insecureAcceptAnything\) overrides scope "registry\.example\.com:5000" \(signedBy \/etc\/pki\/containers\/acme\.gpg\)/)
    assert.match(warning, /--take-over "registry\.example\.com:5000\/app"/)
    const found = await drift(config)
    assert.equal(found.length, 1)
    assert.deepEqual(found[0].reasons, ['overridden'])
    assert.equal(found[0].path, host.path(POLICY))
  })

  it('a foreign scope hand-added after apply is drift', async () => {
    const config = await trust(SIGNED)
    await host.apply(config)
    assert.deepEqual(await drift(config), [])
    const policy = await host.policy()
    policy.transports!.docker['registry.example.com:5000/app'] = [ACCEPT]
    await host.write(POLICY, JSON.stringify(policy))
    assert.deepEqual((await drift(config)).map((d) => d.reasons), [['overridden']])
  })

  it('--take-over gives the foreign scope our rule, holds it idempotently, and puts it back when released', async () => {
    await foreignApp(ACCEPT)
    const config = await trust(SIGNED)
    await host.apply(config, {takeOver: ['registry.example.com:5000/app']})
    let policy = await host.policy()
    assert.deepEqual(policy.transports!.docker['registry.example.com:5000/app'], policy.transports!.docker['registry.example.com:5000'])
    assert.deepEqual(await drift(config), [])
    assert.equal((await host.apply(config)).changed, false, 'held without the flag: the second apply changes nothing')

    // The rule it hid leaves the trust file: the host's own rule comes back.
    const released = await trust('  "other.example.com":\n    policy: reject')
    await host.apply(released)
    policy = await host.policy()
    assert.deepEqual(policy.transports!.docker['registry.example.com:5000/app'], [ACCEPT])
    assert.equal(policy.transports!.docker['registry.example.com:5000'], undefined)
  })

  it('--take-over of a scope that overrides nothing is an error naming the ones that do, and writes nothing', async () => {
    await foreignApp(ACCEPT)
    const config = await trust(SIGNED)
    const before = await host.read(POLICY)
    await assert.rejects(host.apply(config, {takeOver: ['quay.io']}), (error: Error & {hint?: string}) => {
      assert.match(error.message, /--take-over quay\.io: no such foreign scope/)
      assert.match(error.hint ?? '', /registry\.example\.com:5000\/app/)
      return true
    })
    assert.equal(await host.read(POLICY), before)
  })

  it('a transport-wide "" accept under default: reject is overridden, and can be taken over', async () => {
    await host.write(POLICY, JSON.stringify({default: [ACCEPT], transports: {docker: {'': [ACCEPT]}}}))
    const config = await trust(SIGNED, 'default: reject')
    const applied = await host.apply(config)
    assert.ok(applied.warnings.some((w) => w.includes('the docker transport default "" (insecureAcceptAnything) overrides the default (reject)')), JSON.stringify(applied.warnings))
    assert.deepEqual((await drift(config)).map((d) => d.reasons), [['overridden']])
    await host.apply(config, {takeOver: ['']})
    assert.deepEqual((await host.policy()).transports!.docker[''], [REJECT])
    assert.deepEqual(await drift(config), [])
    // default: reject leaves the trust file: the "" rule is the host's again.
    await host.apply(await trust(SIGNED))
    assert.deepEqual((await host.policy()).transports!.docker[''], [ACCEPT])
  })

  it('a take-over beneath another take-over holds (a RHEL-like "" accept plus a foreign accept)', async () => {
    await host.write(POLICY, JSON.stringify({default: [ACCEPT], transports: {docker: {'': [ACCEPT], 'registry.example.com:5000/x': [ACCEPT]}}}))
    const config = await trust(SIGNED, 'default: reject')
    await host.apply(config, {takeOver: ['']})
    assert.deepEqual((await drift(config)).map((d) => d.detail?.match(/^scope "([^"]+)"/)?.[1]), ['registry.example.com:5000/x'])
    await host.apply(config, {takeOver: ['registry.example.com:5000/x']})
    const policy = await host.policy()
    assert.deepEqual(policy.transports!.docker['registry.example.com:5000/x'], policy.transports!.docker['registry.example.com:5000'])
    assert.deepEqual(await drift(config), [])
    assert.equal((await host.apply(config)).changed, false)
  })

  it('a foreign accept hidden behind a foreign reject is still an override', async () => {
    await host.write(POLICY, JSON.stringify({default: [ACCEPT], transports: {docker: {'registry.example.com:5000/a': [REJECT], 'registry.example.com:5000/a/b': [ACCEPT]}}}))
    const config = await trust(SIGNED)
    await host.apply(config)
    assert.deepEqual((await drift(config)).map((d) => d.detail?.match(/^scope "([^"]+)"/)?.[1]), ['registry.example.com:5000/a/b'])
  })

  it('a taken-over scope keeps holding when a stricter trust scope appears beneath it, and carries that rule', async () => {
    await host.write(POLICY, JSON.stringify({default: [ACCEPT], transports: {docker: {'registry.example.com:5000/a/b': [ACCEPT]}}}))
    await host.apply(await trust(SIGNED), {takeOver: ['registry.example.com:5000/a/b']})
    const nested = await trust(`${SIGNED}\n  "registry.example.com:5000/a":\n    policy: reject`)
    await host.apply(nested)
    assert.deepEqual((await host.policy()).transports!.docker['registry.example.com:5000/a/b'], [REJECT])
    assert.deepEqual(await drift(nested), [])
  })

  it('--take-over works when CRI-O reads its own signature_policy without that scope', async () => {
    await foreignApp(ACCEPT)
    await host.write('/etc/crio/crio.conf', '[crio.image]\nsignature_policy = "/etc/crio/policy.json"\n')
    await host.write('/etc/crio/policy.json', JSON.stringify({default: [ACCEPT]}))
    const config = await trust(SIGNED)
    await host.apply(config, {takeOver: ['registry.example.com:5000/app']})
    assert.equal((await host.policy()).transports!.docker['registry.example.com:5000/app'][0] && (((await host.policy()).transports!.docker['registry.example.com:5000/app'][0]) as {type: string}).type, 'signedBy')
    assert.deepEqual(await drift(config), [])
  })

  it('in a CRI-O namespace policy a taken-over scope carries the namespace\'s rule, not the global one', async () => {
    const other = await makeKey('other')
    await host.local('other.asc', other.publicKey)
    await host.write(POLICY, JSON.stringify({default: [ACCEPT], transports: {docker: {'registry.example.com:5000/prod/app': [ACCEPT]}}}))
    await host.write('/etc/crio/crio.conf', '[crio.image]\nsignature_policy_dir = "/etc/crio/policies"\n')
    const config = await host.local(
      'trust.yaml',
      [
        'version: 1',
        'keys:',
        '  acme: {file: acme.asc}',
        '  other: {file: other.asc}',
        'scopes:',
        SIGNED,
        '  "registry.example.com:5000/prod":',
        '    policy: signed',
        '    keys: [other]',
        'crio:',
        '  namespaces:',
        '    prod: {scopes: ["registry.example.com:5000/prod"]}',
      ].join('\n'),
    )
    await host.apply(config, {takeOver: ['registry.example.com:5000/prod/app']})
    const prod = JSON.parse(await host.read('/etc/crio/policies/prod.json'))
    assert.deepEqual(prod.transports.docker['registry.example.com:5000/prod/app'], prod.transports.docker['registry.example.com:5000/prod'])
    assert.match(JSON.stringify(prod.transports.docker['registry.example.com:5000/prod/app']), /other\.gpg/)
    assert.deepEqual(await drift(config), [])
  })

  it('a taken-over scope that the trust file later names itself keeps its original for release', async () => {
    await foreignApp(ACCEPT)
    await host.apply(await trust(SIGNED), {takeOver: ['registry.example.com:5000/app']})
    const both = await trust(`${SIGNED}\n  "registry.example.com:5000/app":\n    policy: reject`)
    await host.apply(both)
    assert.deepEqual((await host.policy()).transports!.docker['registry.example.com:5000/app'], [REJECT])
    await host.apply(await trust(SIGNED))
    assert.deepEqual((await host.policy()).transports!.docker['registry.example.com:5000/app'], [ACCEPT], 'the host rule, not ours, comes back')
  })
})

describe('docker.io scope normalisation in the trust file', () => {
  let host: TestHost
  beforeEach(async () => {
    host = await TestHost.create()
  })
  afterEach(async () => {
    await host?.remove()
  })

  for (const [scope, hint] of [
    ['index.docker.io/library/alpine', 'docker.io/library/alpine'],
    ['docker.io/busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['index.docker.io', 'docker.io'],
  ]) {
    it(`refuses "${scope}", naming "${hint}" and the line`, async () => {
      const config = await host.local('trust.yaml', `version: 1\nscopes:\n  "${scope}":\n    policy: reject\n`)
      await assert.rejects(host.apply(config), (error: Error) => {
        assert.match(error.message, new RegExp(`trust\\.yaml:3.*never matches.*write "${hint.replaceAll('.', '\\.')}"`))
        return true
      })
    })
  }

  it('warns that docker.io/busybox covers a namespace, not the official image', async () => {
    const config = await host.local('trust.yaml', 'version: 1\nscopes:\n  "docker.io/busybox":\n    policy: reject\n')
    const applied = await host.apply(config)
    assert.ok(applied.warnings.some((w) => /trust\.yaml:3: scope "docker\.io\/busybox" covers repositories below docker\.io\/busybox\/, not the official image docker\.io\/library\/busybox/.test(w)), JSON.stringify(applied.warnings))
  })
})
