/**
 * check and status ask the effective-policy module once per scope; the scope
 * index must be built once per policy, not once per question (that made them
 * quadratic: 97 s at 20,000 foreign scopes), yet never go stale.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {dockerScopeIndex, effectiveRule, ruleBeneath} from '../../src/policy/effective.ts'
import {ownedRuleBeneath} from '../../src/policy/overrides.ts'
import {parsePolicy} from '../../src/policy/parse.ts'

function policyOf(n: number) {
  const docker = Object.fromEntries(Array.from({length: n}, (_, i) => [`r${i % 7}.example.com/team${i}`, [{type: i % 2 ? 'reject' : 'insecureAcceptAnything'}]]))
  return parsePolicy(JSON.stringify({default: [{type: 'reject'}], transports: {docker: {...docker, 'r1.example.com': [{type: 'reject'}]}}}), '/t/policy.json').policy
}

describe('the docker scope index', () => {
  it('is built once per policy, however many scopes ask', () => {
    const policy = policyOf(2000)
    const index = dockerScopeIndex(policy)
    assert.ok(index)
    for (const scope of policy.transports![0].scopes) {
      ruleBeneath(policy, scope.scope)
      ownedRuleBeneath(policy, scope.scope, {scopes: new Set(['r1.example.com']), ownsDefault: true})
      assert.equal(dockerScopeIndex(policy), index, 'rebuilt for one question')
    }
  })

  it('sees an entry edited in place, and a scope added since', () => {
    const policy = structuredClone(policyOf(10)) // parsed policies are shared, so frozen: edits are made to a copy, as merges do
    const docker = policy.transports![0]
    assert.equal(effectiveRule(policy, 'r1.example.com/team1/app:1').scope, 'r1.example.com/team1')
    docker.scopes.find((s) => s.scope === 'r1.example.com/team1')!.requirements = [{type: 'insecureAcceptAnything'}]
    assert.deepEqual(effectiveRule(policy, 'r1.example.com/team1/app:1').requirements, [{type: 'insecureAcceptAnything'}])
    assert.equal(effectiveRule(policy, 'r2.example.com/new/app:1').scope, null)
    docker.scopes.push({scope: 'r2.example.com/new', requirements: [{type: 'reject'}]})
    assert.equal(effectiveRule(policy, 'r2.example.com/new/app:1').scope, 'r2.example.com/new')
  })
})
