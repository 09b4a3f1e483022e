/**
 * Property-based tests of the merge, over random host policies and random
 * trust files (scope names drawn from one small pool, so they collide).
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import fc from 'fast-check'

import {parsePolicy} from '../../src/policy/parse.ts'
import {makeKey, TestHost} from '../support/hostroot.ts'

const POLICY = '/etc/containers/policy.json'
const POOL = ['registry.example.com', 'registry.example.com/a', 'quay.example.com/b', '*.example.org', 'docker.io/library/x', 'r.example.com:5000/c', 'localhost/d']
const REQUIREMENTS = [[{type: 'insecureAcceptAnything'}], [{type: 'reject'}], [{type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/rpm-gpg/other'}]]

const hostPolicy = fc.record({
  default: fc.constantFrom([{type: 'insecureAcceptAnything'}], [{type: 'reject'}]),
  docker: fc.uniqueArray(fc.tuple(fc.constantFrom(...POOL), fc.constantFrom(...REQUIREMENTS)), {selector: ([scope]) => scope, maxLength: 5}),
  daemon: fc.boolean(),
})

const trustScopes = fc.uniqueArray(fc.tuple(fc.constantFrom(...POOL), fc.constantFrom('accept', 'reject', 'signed')), {selector: ([scope]) => scope, maxLength: 5})
const trustDefault = fc.constantFrom(undefined, 'reject', 'accept')

type HostPolicy = typeof hostPolicy extends fc.Arbitrary<infer T> ? T : never

function policyText(p: HostPolicy): string {
  const transports: Record<string, unknown> = {}
  if (p.docker.length > 0) transports.docker = Object.fromEntries(p.docker)
  if (p.daemon) transports['docker-daemon'] = {'': [{type: 'insecureAcceptAnything'}]}
  return JSON.stringify({default: p.default, ...(Object.keys(transports).length > 0 ? {transports} : {})}, null, 4) + '\n'
}

function trustText(scopes: Array<[string, string]>, defaultPolicy: string | undefined): string {
  const lines = ['version: 1', ...(defaultPolicy ? [`default: ${defaultPolicy}`] : []), 'keys:', '  k: {file: k.asc}', 'scopes:']
  for (const [scope, policy] of scopes) lines.push(`  "${scope}":`, `    policy: ${policy}`, ...(policy === 'signed' ? ['    keys: [k]'] : []))
  if (scopes.length === 0) lines.push('  {}')
  return lines.join('\n').replace('scopes:\n  {}', 'scopes: {}') + '\n'
}

describe('merge properties', () => {
  let host: TestHost
  let key: string

  before(async () => {
    key = (await makeKey('prop')).publicKey
  })

  after(async () => {
    await host?.remove()
  })

  async function freshHost(policy: HostPolicy): Promise<TestHost> {
    await host?.remove()
    host = await TestHost.create()
    await host.local('k.asc', key)
    await host.write(POLICY, policyText(policy))
    return host
  }

  it('apply passes the strict parser, keeps every foreign scope unchanged and in order, and a second apply changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(hostPolicy, trustScopes, trustDefault, async (policy, scopes, defaultPolicy) => {
        const h = await freshHost(policy)
        const config = await h.local('trust.yaml', trustText(scopes, defaultPolicy))
        await h.apply(config)
        const text = await h.read(POLICY)
        parsePolicy(text, POLICY) // throws if containers/image would refuse it
        const after = JSON.parse(text)
        const ours = new Set(scopes.map(([s]) => s))
        const foreign = policy.docker.filter(([s]) => !ours.has(s))
        const kept = Object.entries(after.transports?.docker ?? {}).filter(([s]) => !ours.has(s))
        assert.deepEqual(kept, foreign)
        if (policy.daemon) assert.deepEqual(after.transports['docker-daemon'], {'': [{type: 'insecureAcceptAnything'}]})
        if (!defaultPolicy) assert.deepEqual(after.default, policy.default)
        const again = await h.apply(config)
        assert.equal(again.changed, false)
      }),
      {numRuns: 40},
    )
  })

  it('removing a scope from the trust file removes exactly what the tool added: the same host as never having had it', async () => {
    await fc.assert(
      fc.asyncProperty(hostPolicy, trustScopes.filter((s) => s.length > 0), trustDefault, fc.nat(), async (policy, scopes, defaultPolicy, pick) => {
        const removed = scopes[pick % scopes.length][0]
        const rest = scopes.filter(([s]) => s !== removed)
        // History: apply all, then apply without one scope.
        const h = await freshHost(policy)
        await h.apply(await h.local('trust.yaml', trustText(scopes, defaultPolicy)))
        await h.apply(await h.local('trust.yaml', trustText(rest, defaultPolicy)))
        const withHistory = JSON.parse(await h.read(POLICY))
        // No history: apply the smaller trust file to the original host.
        const fresh = await freshHost(policy)
        await fresh.apply(await fresh.local('trust.yaml', trustText(rest, defaultPolicy)))
        assert.deepEqual(withHistory, JSON.parse(await fresh.read(POLICY)))
      }),
      {numRuns: 30},
    )
  })
})
