import assert from 'node:assert/strict'
import {afterEach, beforeEach, describe, it} from 'node:test'

import {HostRoot} from '../../src/host/paths.ts'
import {sandboxContext} from '../../src/verify/context.ts'
import {casesFromTrust, runVerify} from '../../src/verify/verify.ts'
import {loadTrustFile} from '../../src/trustfile/load.ts'
import {TestHost} from '../support/hostroot.ts'

describe('verify checks its own test cases', () => {
  let host: TestHost
  beforeEach(async () => {
    host = await TestHost.create()
  })
  afterEach(async () => {
    await host?.remove()
  })

  it('a test image outside its scope is a misconfigured test naming the scope that judges it (exit 4), not NOT ENFORCED', async () => {
    const config = await host.local(
      'trust.yaml',
      [
        'version: 1',
        'default: reject',
        'scopes:',
        '  "registry.example.com/signed/app":',
        '    policy: reject',
        '    test: {unsigned: "registry.example.com/unsigned/plain:1"}',
        '  "registry.example.com/unsigned":',
        '    policy: reject',
      ].join('\n'),
    )
    const applied = await host.apply(config)
    assert.ok(applied.warnings.some((w) => /trust\.yaml:4: test image registry\.example\.com\/unsigned\/plain:1 is not under scope "registry\.example\.com\/signed\/app"/.test(w)), JSON.stringify(applied.warnings))
    const root = new HostRoot(host.root)
    const context = await sandboxContext(root)
    try {
      // No pull runs for a misconfigured case: skopeo is never called here.
      const report = await runVerify(casesFromTrust(await loadTrustFile(config)), ['skopeo'], context, {tlsVerify: false, root})
      assert.equal(report.exitCode, 4)
      assert.equal(report.results[0].outcome, 'misconfigured')
      assert.match(report.results[0].reason, /is not under scope "registry\.example\.com\/signed\/app"; containers\/image judges it by scope "registry\.example\.com\/unsigned"/)
      assert.deepEqual(report.summary, {confirmed: 0, notEnforced: 0, broken: 0, inconclusive: 0, misconfigured: 1})
    } finally {
      await context.cleanup()
    }
  })
})

describe('verify --native vouches only for what it checked', () => {
  let host: TestHost
  beforeEach(async () => {
    host = await TestHost.create()
  })
  afterEach(async () => {
    await host?.remove()
  })

  const signedBy = (key: string) => ({type: 'signedBy', keyType: 'GPGKeys', keyPath: `/etc/pki/containers/${key}.gpg`})
  const ROWS: Array<[name: string, requirements: unknown[], exitCode: number, summary: RegExp]> = [
    ['two signedBy requirements (both demanded)', [signedBy('a'), signedBy('b')], 4, /also requires signedBy, which --native does not check/],
    // A lone sigstoreSigned is checked natively (test/e2e/sigstore.test.ts); beside a signedBy it is not.
    ['a sigstoreSigned beside a signedBy (both demanded)', [signedBy('a'), {type: 'sigstoreSigned', keyPath: '/etc/pki/containers/c.pub'}], 4, /also requires sigstoreSigned/],
    ['a reject beside a signedBy', [signedBy('a'), {type: 'reject'}], 3, /rejects every image/],
  ]
  for (const [name, requirements, exitCode, summary] of ROWS) {
    it(`${name}: exit ${exitCode}, never valid`, async () => {
      const {nativeVerify} = await import('../../src/verify/native.ts')
      await host.write('/etc/containers/policy.json', JSON.stringify({default: [{type: 'reject'}], transports: {docker: {'registry.example.com': requirements}}}))
      const report = await nativeVerify(new HostRoot(host.root), 'registry.example.com/app:1', {tlsVerify: false})
      assert.equal(report.exitCode, exitCode)
      assert.equal(report.accepted, false)
      assert.match(report.summary, summary)
    })
  }
})
