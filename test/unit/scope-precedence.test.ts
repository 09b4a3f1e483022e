import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {effectiveRule as resolveDockerScope} from '../../src/policy/effective.ts'
import {dockerScopeChain} from '../../src/policy/match.ts'
import {parseDockerScope, parseImageReference} from '../../src/policy/reference.ts'
import type {Policy} from '../../src/policy/types.ts'

/** A policy whose docker transport has exactly these scopes (each accepting), default reject. */
function policyWith(scopes: string[], withTransport = true): Policy {
  return {
    default: [{type: 'reject'}],
    transports: withTransport ? [{name: 'docker', scopes: scopes.map((scope) => ({scope, requirements: [{type: 'insecureAcceptAnything'}]}))}] : [],
  }
}

const DIGEST = `sha256:${'5b6e'.repeat(16)}`

/**
 * One table for scope precedence: present scope keys, the image pulled, and
 * the scope containers/image uses (null = the global default). Rows marked
 * [verified] reproduce experiments of reference §9.4 on podman 4.3.1.
 */
const TABLE: Array<[scopes: string[], image: string, expected: string | null, note?: string]> = [
  // [verified] the precedence experiment (pol/prec.json)
  [['127.0.0.1:5001/test/unsigned:v1', '127.0.0.1:5001/test/unsigned', '127.0.0.1:5001/test', '127.0.0.1:5001', '127.0.0.1', ''], '127.0.0.1:5001/test/unsigned:v1', '127.0.0.1:5001/test/unsigned:v1'],
  [['127.0.0.1:5001/test/unsigned:v1', '127.0.0.1:5001/test/unsigned', '127.0.0.1:5001/test', '127.0.0.1:5001', '127.0.0.1', ''], '127.0.0.1:5001/test/unsigned:v2', '127.0.0.1:5001/test/unsigned'],
  [['127.0.0.1:5001/test/unsigned:v1', '127.0.0.1:5001/test/unsigned', '127.0.0.1:5001/test', '127.0.0.1:5001', '127.0.0.1', ''], '127.0.0.1:5001/test/other:v1', '127.0.0.1:5001/test'],
  [['127.0.0.1:5001/test/unsigned:v1', '127.0.0.1:5001/test/unsigned', '127.0.0.1:5001/test', '127.0.0.1:5001', '127.0.0.1', ''], '127.0.0.1:5001/top:v1', '127.0.0.1:5001'],
  [['127.0.0.1'], '127.0.0.1:5001/test/x:v1', null, 'a port-less host key does not match a host with a port'],
  [['127.0.0.1', ''], '127.0.0.1:5001/test/x:v1', '', 'the transport default "" comes before the global default'],
  // [verified] wildcards
  [['*.example.com'], 'foo.example.com/test/x:v1', '*.example.com'],
  [['*.example.com'], 'a.b.example.com/test/x:v1', '*.example.com'],
  [['*.example.com'], 'foo.example.com:5001/test/x:v1', '*.example.com', 'wildcards ignore the port'],
  [['*.example.com'], 'example.com/test/x:v1', null, '*.example.com does not match example.com itself'],
  [['*.example.com', 'foo.example.com'], 'foo.example.com/test/x:v1', 'foo.example.com', 'a host beats any wildcard'],
  [['*.example.com', '*.b.example.com'], 'a.b.example.com/test/x:v1', '*.b.example.com', 'the narrower wildcard first'],
  [['*.0.0.1'], '127.0.0.1:5001/test/x:v1', '*.0.0.1', 'IP literals split on dots too'],
  [['example*.*.com', '*example.com', '*.com'], 'foo.example.com/test/x:v1', '*.com'],
  // [verified] short names never match, and digests
  [['busybox', 'library/busybox'], 'busybox:latest', null],
  [['docker.io/library/busybox'], 'busybox', 'docker.io/library/busybox'],
  [['docker.io/library/busybox:latest'], 'busybox', 'docker.io/library/busybox:latest', 'no tag means :latest'],
  [[`127.0.0.1:5001/test/unsigned@${DIGEST}`], `127.0.0.1:5001/test/unsigned@${DIGEST}`, `127.0.0.1:5001/test/unsigned@${DIGEST}`],
  [[`127.0.0.1:5001/test/unsigned@${DIGEST}`], '127.0.0.1:5001/test/unsigned:v1', null, 'a digest scope does not apply to a pull by tag'],
  // ordering is fixed, not by key length
  [['registry.example.com/a', 'registry.example.com/a/b/c'], 'registry.example.com/a/b/c/d:1', 'registry.example.com/a/b/c'],
  [['registry.example.com/a', 'registry.example.com'], 'registry.example.com/a/b/c/d:1', 'registry.example.com/a'],
  [['registry.example.com', '*.example.com'], 'registry.example.com/x:1', 'registry.example.com'],
  [['registry.example.com:5000'], 'registry.example.com/x:1', null, 'a key with a port does not match the host without one'],
  [['docker.io'], 'docker.io/library/nginx:1.25', 'docker.io'],
  [['*.io'], 'quay.io/org/x:1', '*.io'],
  // docker.io normalisation: scopes are compared as strings against normalised names
  [['docker.io/busybox'], 'docker.io/busybox', null, 'docker.io/busybox is docker.io/library/busybox'],
  [['docker.io/busybox'], 'docker.io/busybox/tool:1', 'docker.io/busybox', 'a user namespace named busybox'],
  [['docker.io/library/busybox'], 'docker.io/busybox:1', 'docker.io/library/busybox'],
  [['docker.io/library/alpine'], 'index.docker.io/library/alpine:3', 'docker.io/library/alpine', 'index.docker.io is docker.io'],
  [['docker.io/library/alpine'], 'index.docker.io/alpine', 'docker.io/library/alpine'],
  [['index.docker.io/library/alpine', 'index.docker.io'], 'alpine', null, 'index.docker.io keys never match'],
  [['docker.io/bitnami'], 'bitnami/nginx:1', 'docker.io/bitnami'],
]

describe('scope precedence (containers/image order)', () => {
  for (const [scopes, image, expected, note] of TABLE) {
    it(`${image} with [${scopes.join(', ')}] → ${expected === null ? 'default' : JSON.stringify(expected)}${note ? ` (${note})` : ''}`, () => {
      assert.equal(resolveDockerScope(policyWith(scopes), image).scope, expected)
    })
  }

  it('uses the global default when the docker transport is absent', () => {
    const resolution = resolveDockerScope(policyWith([], false), 'quay.io/x:1')
    assert.equal(resolution.scope, null)
    assert.deepEqual(resolution.requirements, [{type: 'reject'}])
  })

  it('lists the whole chain that was tried, in order', () => {
    assert.deepEqual(dockerScopeChain(parseImageReference('a.b.example.com:5000/ns/repo:1') as never), [
      'a.b.example.com:5000/ns/repo:1',
      'a.b.example.com:5000/ns/repo',
      'a.b.example.com:5000/ns',
      'a.b.example.com:5000',
      '*.b.example.com',
      '*.example.com',
      '*.com',
    ])
    const {tried} = resolveDockerScope(policyWith(['a.b.example.com:5000']), 'a.b.example.com:5000/ns/repo:1')
    assert.deepEqual(
      tried.map((t) => [t.scope, t.present]),
      [
        ['a.b.example.com:5000/ns/repo:1', false],
        ['a.b.example.com:5000/ns/repo', false],
        ['a.b.example.com:5000/ns', false],
        ['a.b.example.com:5000', true],
      ],
    )
  })
})

describe('trust-file scope syntax', () => {
  const VALID: Array<[string, string]> = [
    ['registry.example.com:5000', 'registry'],
    ['registry.example.com/ns/repo', 'namespace'],
    ['registry.example.com/ns/repo:1.0', 'reference'],
    [`registry.example.com/ns/repo@${DIGEST}`, 'reference'],
    ['localhost/x', 'namespace'],
    ['*.example.com', 'wildcard'],
  ]
  for (const [scope, kind] of VALID) it(`accepts ${scope} as ${kind}`, () => assert.equal((parseDockerScope(scope) as {kind: string}).kind, kind))

  const INVALID: Array<[string, RegExp]> = [
    ['busybox', /short name, which never matches/],
    ['library/busybox', /short name/],
    ['https://registry.example.com', /without a URL scheme/],
    ['example*.*.com', /a \* may only start a scope/],
    ['*.example.com:5000', /invalid wildcard scope/],
    ['registry.example.com/Upper', /invalid repository path component "Upper"/],
    ['registry.example.com/ns/', /invalid repository path component ""/],
    ['registry.example.com/x:bad tag', /invalid tag/],
    ['registry.example.com/x@sha256:short', /invalid digest/],
    [`registry.example.com/x:1@${DIGEST}`, /a tag and a digest together never match/],
  ]
  for (const [scope, error] of INVALID) it(`refuses ${scope}`, () => assert.match(parseDockerScope(scope) as string, error))
})
