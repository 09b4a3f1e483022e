import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import type {SignedIdentity} from '../../src/policy/types.ts'
import {matchSignedIdentity, parseNormalizedNamed, pulledReference} from '../../src/verify/identity.ts'

const D = `sha256:${'5b6e'.repeat(16)}`
const D2 = `sha256:${'0a1b'.repeat(16)}`
const R = '127.0.0.1:5001/test/signed2'

type Verdict = 'match' | 'mismatch' | 'unknown'
/** [pulled image, the signature's docker-reference, expected verdict, why] */
type Row = [pulled: string, signed: string, expected: Verdict, note?: string]

function check(identity: SignedIdentity | undefined, rows: Row[]): void {
  for (const [pulled, signed, expected, note] of rows) {
    it(`${pulled} signed as ${JSON.stringify(signed)}: ${expected}${note ? ` (${note})` : ''}`, () => {
      const intended = pulledReference(pulled)
      assert.equal(typeof intended, 'object', String(intended))
      const result = matchSignedIdentity(identity, intended as Exclude<typeof intended, string>, signed)
      assert.equal(result.verdict, expected, JSON.stringify(result))
      if (result.verdict !== 'match') assert.ok(result.reason.length > 0)
    })
  }
}

// Rows marked [verified] reproduce reference §9.4 (podman 4.3.1 / c/image 5.23).
describe('matchExact', () => {
  check({type: 'matchExact'}, [
    [`${R}:v1`, `${R}:v1`, 'match', 'verified'],
    [`${R}@${D}`, `${R}:v1`, 'mismatch', 'verified: a digest pull does not match a tag signature'],
    [`${R}@${D}`, `${R}@${D}`, 'match', 'same digest reference'],
    [`${R}@${D}`, `${R}@${D2}`, 'mismatch'],
    [`${R}:v2`, `${R}:v1`, 'mismatch'],
    [`${R}:v1`, R, 'mismatch', 'a signature without tag or digest never matches'],
    ['busybox', 'docker.io/library/busybox:latest', 'match', 'short name pulled as :latest'],
    ['busybox:1', 'busybox:1', 'match', 'the signed identity is normalised too'],
    ['busybox:1', 'index.docker.io/library/busybox:1', 'match', 'index.docker.io is docker.io'],
    ['busybox:1', 'docker.io/busybox:1', 'match', 'docker.io/x is docker.io/library/x'],
    ['busybox:1', 'quay.io/library/busybox:1', 'mismatch'],
    [`${R}:v1`, `${R}:v1@${D}`, 'mismatch', 'tag and digest in the signature is another string'],
    [`${R}:v1`, `docker://${R}:v1`, 'mismatch', 'a transport prefix does not parse'],
    [`${R}:v1`, '', 'mismatch', 'empty identity'],
    [`${R}:v1@${D}`, `${R}:v1@${D}`, 'unknown', 'engines disagree on a pull by tag and digest'],
  ])
})

describe('matchRepoDigestOrExact (the default)', () => {
  check({type: 'matchRepoDigestOrExact'}, [
    [`${R}@${D}`, `${R}:v1`, 'match', 'verified'],
    [`${R}:v2`, `${R}:v1`, 'mismatch', 'verified'],
    [`127.0.0.1:5001/mirror/signed2:v1`, `${R}:v1`, 'mismatch', 'verified'],
    [`${R}:v1`, `${R}:v1`, 'match'],
    [`${R}@${D}`, `${R}@${D2}`, 'match', 'digest pull: any identity in the repository (the digest is checked elsewhere)'],
    [`${R}@${D}`, R, 'mismatch', 'a signature without tag or digest never matches'],
    [`${R}@${D}`, '127.0.0.1:5001/test/other:v1', 'mismatch'],
    [`${R}:v1`, `${R}:v1@${D}`, 'mismatch', 'a tag pull must match the string exactly'],
    ['docker.io/busybox@' + D, 'busybox:1', 'match', 'docker.io short names on both sides'],
    ['index.docker.io/library/busybox:1', 'busybox:1', 'match'],
    ['busybox', 'busybox', 'mismatch', 'pulled as :latest, signed without a tag'],
    [`${R}:v1`, `${R.toUpperCase()}:v1`, 'mismatch', 'an uppercase path does not parse'],
    [`${R}@${D}`, `${R}@sha256:${'5B6E'.repeat(16)}`, 'mismatch', 'go-digest wants lowercase hex'],
    [`${R}@${D}`, `${R}@blake3:${'ab'.repeat(32)}`, 'unknown', 'blake3 is known only where a build registers it'],
    [`${R}@${D}`, `[::1]:5001/test/signed2:v1`, 'unknown', 'IPv6 hosts parse differently per version'],
    [`${R}:v1`, 'a'.repeat(64), 'mismatch', 'a 64-hex image ID is refused'],
  ])

  it('is what an absent signedIdentity means', () => {
    const intended = pulledReference(`${R}@${D}`) as Exclude<ReturnType<typeof pulledReference>, string>
    assert.deepEqual(matchSignedIdentity(undefined, intended, `${R}:v1`), {verdict: 'match'})
    assert.equal(matchSignedIdentity(undefined, pulledReference(`${R}:v2`) as typeof intended, `${R}:v1`).verdict, 'mismatch')
  })
})

describe('matchRepository', () => {
  check({type: 'matchRepository'}, [
    [`${R}:v2`, `${R}:v1`, 'match', 'verified'],
    [`${R}@${D}`, `${R}:v1`, 'match'],
    [`${R}:v1`, R, 'match', 'a repository-only identity (cosign) is fine here'],
    [`${R}:v1`, '127.0.0.1:5001/test/other:v1', 'mismatch'],
    [`${R}:v1`, '127.0.0.1:5001/test/signed2/sub:v1', 'mismatch', 'a sub-repository is another repository'],
    [`${R}:v1`, '127.0.0.1:5002/test/signed2:v1', 'mismatch', 'another port is another registry'],
    ['busybox:1', 'docker.io/library/busybox', 'match'],
    ['busybox:1', 'index.docker.io/busybox:2', 'match'],
    ['library/busybox:1', 'busybox', 'match'],
    ['busybox:1', 'localhost/busybox:1', 'mismatch'],
    [`${R}:v1`, `${R}:-bad`, 'mismatch', 'an invalid tag'],
  ])
})

describe('exactReference', () => {
  check({type: 'exactReference', dockerReference: `${R}:v1`}, [
    [`127.0.0.1:5001/mirror/signed2:v1`, `${R}:v1`, 'match', 'verified: the pulled name does not matter'],
    [`${R}@${D}`, `${R}:v1`, 'match'],
    [`${R}:v1`, `${R}:v2`, 'mismatch'],
    [`${R}:v1`, R, 'mismatch'],
    [`${R}:v1`, `${R}@${D}`, 'mismatch'],
    [`${R}:v1@${D}`, `${R}:v1`, 'match', 'the pulled reference is not used'],
  ])
  check({type: 'exactReference', dockerReference: 'busybox:1'}, [
    ['quay.io/x/y:1', 'docker.io/library/busybox:1', 'match', 'both sides normalised, not compared as strings'],
    ['quay.io/x/y:1', 'index.docker.io/busybox:1', 'match'],
    ['quay.io/x/y:1', 'busybox:2', 'mismatch'],
  ])
  check({type: 'exactReference', dockerReference: `${R}@${D}`}, [
    ['quay.io/x/y:1', `${R}@${D}`, 'match'],
    ['quay.io/x/y:1', `${R}@${D2}`, 'mismatch'],
  ])
  check({type: 'exactReference', dockerReference: R}, [['quay.io/x/y:1', `${R}:v1`, 'mismatch', 'a name-only dockerReference is an invalid policy']])
})

describe('exactRepository', () => {
  check({type: 'exactRepository', dockerRepository: R}, [
    ['127.0.0.1:5001/mirror/signed2:v1', `${R}:v1`, 'match', 'verified'],
    ['quay.io/x/y:1', `${R}@${D}`, 'match'],
    ['quay.io/x/y:1', R, 'match'],
    ['quay.io/x/y:1', '127.0.0.1:5001/test/other:v1', 'mismatch'],
    ['quay.io/x/y:1', '127.0.0.1:5001/test:v1', 'mismatch', 'the parent namespace is not the repository'],
    ['quay.io/x/y:1', 'not a reference', 'mismatch'],
  ])
  check({type: 'exactRepository', dockerRepository: 'busybox:1'}, [
    ['quay.io/x/y:1', 'docker.io/library/busybox:7', 'match', 'a tag in dockerRepository is ignored; short name normalised'],
    ['quay.io/x/y:1', 'index.docker.io/busybox', 'match'],
    ['quay.io/x/y:1', 'quay.io/library/busybox:1', 'mismatch'],
  ])
})

describe('remapIdentity', () => {
  // [verified] prefix 127.0.0.1:5001/mirror → 127.0.0.1:5001/test
  check({type: 'remapIdentity', prefix: '127.0.0.1:5001/mirror', signedPrefix: '127.0.0.1:5001/test'}, [
    ['127.0.0.1:5001/mirror/signed2:v1', `${R}:v1`, 'match', 'verified'],
    [`127.0.0.1:5001/mirror/signed2@${D}`, `${R}:v1`, 'match', 'verified: by digest, then the repository'],
    [`${R}:v1`, `${R}:v1`, 'match', 'verified: the prefix does not apply, the reference is used as is'],
    ['127.0.0.1:5001/mirror/signed2:v2', `${R}:v1`, 'mismatch', 'after remapping, a tag must match exactly'],
    ['127.0.0.1:5001/mirrored/signed2:v1', '127.0.0.1:5001/testd/signed2:v1', 'mismatch', 'the prefix matches on a / boundary only'],
    ['127.0.0.1:5001/mirrored/signed2:v1', '127.0.0.1:5001/mirrored/signed2:v1', 'match', 'not remapped, matched as is'],
    ['127.0.0.1:5001/mirror:v1', '127.0.0.1:5001/test:v1', 'match', 'the whole name equal to the prefix is remapped'],
    ['127.0.0.1:5001/mirror/signed2:v1', '127.0.0.1:5001/mirror/signed2:v1', 'mismatch', 'once remapped, the original identity no longer matches'],
    ['127.0.0.1:5001/mirror/a/b:v1', '127.0.0.1:5001/test/a/b:v1', 'match', 'deeper paths keep their rest'],
  ])
  check({type: 'remapIdentity', prefix: 'mirror.example.com', signedPrefix: 'docker.io/library'}, [
    ['mirror.example.com/busybox:1', 'busybox:1', 'match', 'host prefix remapped to docker.io/library; the signature is normalised'],
    ['mirror.example.com:5000/busybox:1', 'busybox:1', 'mismatch', 'a host prefix does not match the same host with a port'],
    ['mirror.example.com.evil.net/busybox:1', 'busybox:1', 'mismatch', 'nor a longer host'],
  ])
  check({type: 'remapIdentity', prefix: 'docker.io/library', signedPrefix: 'mirror.example.com/lib'}, [
    ['busybox:1', 'mirror.example.com/lib/busybox:1', 'match', 'the prefix is compared with the expanded docker.io/library/busybox'],
    ['index.docker.io/busybox@' + D, 'mirror.example.com/lib/busybox:9', 'match'],
  ])
  check({type: 'remapIdentity', prefix: 'busybox', signedPrefix: 'mirror.example.com/busybox'}, [
    ['busybox:1', 'mirror.example.com/busybox:1', 'mismatch', 'a short prefix never matches the expanded name'],
    ['busybox:1', 'busybox:1', 'match', 'so the reference is used unchanged'],
  ])
  check({type: 'remapIdentity', prefix: 'mirror.example.com/x', signedPrefix: 'docker.io/busybox'}, [
    ['mirror.example.com/x:1', 'busybox:1', 'mismatch', 'rewritten to docker.io/busybox:1, not normalised: ParseNamed refuses it'],
  ])
  check({type: 'remapIdentity', prefix: '*.example.com', signedPrefix: 'quay.io/x'}, [
    ['a.example.com/y:1', 'quay.io/x/y:1', 'mismatch', 'there is no *. form: containers/image refuses the policy'],
  ])
  check({type: 'remapIdentity', prefix: 'mirror.example.com/x:1', signedPrefix: 'quay.io/x'}, [['mirror.example.com/x:1', 'quay.io/x:1', 'mismatch', 'a prefix with a tag is invalid']])
  check({type: 'remapIdentity', prefix: '127.0.0.1:5001/mirror', signedPrefix: '127.0.0.1:5001/test'}, [
    [`127.0.0.1:5001/mirror/signed2:v1@${D}`, `${R}:v1`, 'unknown', 'tag and digest'],
  ])
})

describe('identities that are not evaluated', () => {
  it('an unknown signedIdentity type is unknown, never a match', () => {
    const intended = pulledReference(`${R}:v1`) as Exclude<ReturnType<typeof pulledReference>, string>
    const result = matchSignedIdentity({type: 'matchAnything'} as unknown as SignedIdentity, intended, `${R}:v1`)
    assert.equal(result.verdict, 'unknown')
  })
})

describe('parseNormalizedNamed', () => {
  const rows: Array<[string, string | null]> = [
    ['busybox', 'docker.io/library/busybox'],
    ['docker.io/busybox:1', 'docker.io/library/busybox:1'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox'],
    ['user/app', 'docker.io/user/app'],
    ['localhost/app', 'localhost/app'],
    ['localhost:5000', 'docker.io/library/localhost:5000'],
    ['Example.com/app', 'Example.com/app'],
    [`quay.io/a/b:t@${D}`, `quay.io/a/b:t@${D}`],
    ['quay.io/A/b', null],
    ['docker://quay.io/a/b:1', null],
  ]
  for (const [input, expected] of rows) {
    it(`${input} → ${expected ?? 'invalid'}`, () => {
      const parsed = parseNormalizedNamed(input)
      if (expected === null) assert.ok(!('ref' in parsed))
      else {
        assert.ok('ref' in parsed, JSON.stringify(parsed))
        const {ref} = parsed
        assert.equal(`${ref.domain}/${ref.path}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`, expected)
      }
    })
  }

  it('pulledReference adds :latest the way the docker transport does', () => {
    assert.deepEqual(pulledReference('docker://busybox'), {domain: 'docker.io', path: 'library/busybox', tag: 'latest', digest: undefined})
  })
})
