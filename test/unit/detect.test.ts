import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {capabilitiesFor, commonCapabilities, containersImageFor} from '../../src/host/capabilities.ts'
import {readCrioConfig} from '../../src/host/detect.ts'
import {HostRoot} from '../../src/host/paths.ts'
import {TestHost} from '../support/hostroot.ts'

describe('containers/image features from tool versions', () => {
  const TABLE: Array<[tool: string, version: [number, number], cimage: string]> = [
    ['podman', [4, 3], '5.23'],
    ['podman', [4, 1], '5.10'],
    ['podman', [4, 2], '5.22'],
    ['podman', [5, 8], '5.39'],
    ['podman', [5, 7], '5.38'],
    ['podman', [6, 0], '5.40'],
    ['podman', [4, 9], '5.29'],
    ['skopeo', [1, 23], '5.40'],
    ['buildah', [1, 44], '5.40'],
    ['buildah', [1, 43], '5.39'],
    ['crio', [1, 34], '5.35'],
    ['skopeo', [1, 9], '5.22'],
    ['skopeo', [1, 8], '5.7'],
    ['crio', [1, 28], '5.27'],
    ['crio', [1, 36], '5.38'],
    ['podman', [5, 0], '5.30'],
    ['podman', [5, 2], '5.32'],
    ['buildah', [1, 39], '5.34'],
    ['buildah', [1, 41], '5.36'],
    ['skopeo', [1, 18], '5.34'],
    ['skopeo', [1, 20], '5.36'],
  ]
  for (const [tool, version, cimage] of TABLE) {
    it(`${tool} ${version.join('.')} vendors containers/image ${cimage}`, () => {
      assert.equal(containersImageFor(tool, version)!.join('.'), cimage)
    })
  }

  it('gates keyPaths, lookaside names and subkeys on the version', () => {
    assert.equal(capabilitiesFor([5, 21], 't').policy.signedByKeyPaths, false)
    assert.equal(capabilitiesFor([5, 21], 't').lookasideKeys, 'sigstore')
    assert.equal(capabilitiesFor([5, 22], 't').lookasideKeys, 'lookaside')
    assert.equal(capabilitiesFor([5, 36], 't').subkeySignatures, false)
    assert.equal(capabilitiesFor([5, 37], 't').subkeySignatures, true)
  })

  it('the oldest engine on the host decides', () => {
    const caps = commonCapabilities([
      {tool: 'podman', version: '5.8.0'},
      {tool: 'skopeo', version: '1.8.0'},
    ])
    assert.equal(caps.source, 'skopeo 1.8.0')
    assert.equal(caps.policy.signedByKeyPaths, false)
  })
})

describe("CRI-O's signature_policy", () => {
  it('merges crio.conf and crio.conf.d drop-ins in name order, last wins', async () => {
    const host = await TestHost.create()
    try {
      await host.write('/etc/crio/crio.conf', '[crio.image]\nsignature_policy = "/etc/crio/main.json"\n')
      await host.write('/etc/crio/crio.conf.d/20-late.conf', '[crio.image]\nsignature_policy = "/etc/crio/late.json"\n')
      await host.write('/etc/crio/crio.conf.d/10-early.conf', '[crio.image]\nsignature_policy = "/etc/crio/early.json"\nsignature_policy_dir = "/etc/crio/policies"\n')
      await host.write('/etc/crio/crio.conf.d/30-ignored.conf.bak', '[crio.image]\nsignature_policy = "/nope"\n')
      const config = await readCrioConfig(new HostRoot(host.root))
      assert.equal(config?.signaturePolicy, '/etc/crio/late.json')
      assert.equal(config?.signaturePolicyDir, '/etc/crio/policies')
      assert.equal(config?.effectivePolicy, '/etc/crio/late.json')
      assert.deepEqual(config?.files.map((f) => f.slice(host.root.length)), ['/etc/crio/crio.conf', '/etc/crio/crio.conf.d/10-early.conf', '/etc/crio/crio.conf.d/20-late.conf'])
    } finally {
      await host.remove()
    }
  })

  it('an empty signature_policy means the system default, and bad TOML names file and line', async () => {
    const host = await TestHost.create()
    try {
      await host.write('/etc/crio/crio.conf', '[crio.image]\nsignature_policy = ""\n')
      assert.equal((await readCrioConfig(new HostRoot(host.root)))?.effectivePolicy, '/etc/containers/policy.json')
      await host.write('/etc/crio/crio.conf.d/99-bad.conf', '[crio.image]\nsignature_policy = \n')
      await assert.rejects(readCrioConfig(new HostRoot(host.root)), /99-bad\.conf:2/)
      assert.equal(await readCrioConfig(new HostRoot(`${host.root}/nothing`)), undefined)
    } finally {
      await host.remove()
    }
  })
})
