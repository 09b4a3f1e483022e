import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {gnupgHomeOf, isSigningHost, parseSecretKeys} from '../../src/keys/signer.ts'
import {contentType, parseListen, requestSegments} from '../../src/lookaside/server.ts'
import {isRemoteTarget} from '../../src/signing/publish.ts'
import type {TrustFile} from '../../src/trustfile/types.ts'

describe('lookaside serve: request paths', () => {
  const CASES: Array<[string, string[] | number]> = [
    ['/', []],
    ['/apps/app@sha256=ab/signature-1', ['apps', 'app@sha256=ab', 'signature-1']],
    ['/apps/app%40sha256%3Dab/signature-1?x=1', ['apps', 'app@sha256=ab', 'signature-1']],
    ['//apps//x', ['apps', 'x']],
    ['/../etc/passwd', 403],
    ['/a/./b', 403],
    ['/%2e%2e/etc/passwd', 403],
    ['/%2E%2e/etc/passwd', 403],
    ['/..%2fetc%2fpasswd', 403],
    ['/a%2fb', 403],
    ['/a%5cb', 403],
    ['/a%00', 403],
    ['/%E0%A4%A', 400],
    ['relative', 400],
    ['http://evil/x', 400],
  ]
  for (const [target, expected] of CASES) {
    it(`${target} → ${JSON.stringify(expected)}`, () => assert.deepEqual(requestSegments(target), expected))
  }

  it('content types and --listen', () => {
    assert.equal(contentType('/x/signature-1'), 'application/octet-stream')
    assert.equal(contentType('/x/a.json'), 'application/json')
    assert.deepEqual(parseListen('127.0.0.1:8000'), {host: '127.0.0.1', port: 8000})
    assert.deepEqual(parseListen('[::1]:0'), {host: '::1', port: 0})
    assert.throws(() => parseListen('8000'), /HOST:PORT/)
    assert.throws(() => parseListen('127.0.0.1:70000'), /HOST:PORT/)
  })
})

describe('publish: remote targets', () => {
  const CASES: Array<[string, boolean]> = [
    ['/srv/sigstore', false],
    ['./web', false],
    ['web', false],
    ['./host:dir', false],
    ['www@sigs.example.com:/srv/sigstore', true],
    ['sigs.example.com:/srv/sigstore', true],
    ['sigs:relative/dir', true],
    ['file:///srv/x', false],
  ]
  for (const [to, remote] of CASES) it(`${to} is ${remote ? 'remote' : 'local'}`, () => assert.equal(isRemoteTarget(to), remote))
})

describe('signer', () => {
  it('parses gpg --with-colons secret key listings, stubs and subkeys included', () => {
    const listing = [
      'sec:u:255:22:AA3D8E5F7018FB86:1795605095:1858677095::u:::scSC:::+::ed25519:::0:',
      'fpr:::::::::F36632CCEC36E2F48A5C67DDAA3D8E5F7018FB86:',
      'grp:::::::::0510BA26C71596E58D0BCFBB69A54B76531681A2:',
      'uid:u::::1795605095::801F6CB1D6168D54D68242E0F7053F571866EB74::t <t@x>::::::::::0:',
      'sec:u:255:22:1111111111111111:1795605095:::u:::cSC:::#::ed25519:::0:',
      'fpr:::::::::2222222222222222222222222222222222222222:',
      'uid:u::::1795605095::801F::offline <o@x>::::::::::0:',
      'ssb:u:255:22:3333333333333333:1795605095::::::s:::+::ed25519::',
      'fpr:::::::::4444444444444444444444444444444444444444:',
    ].join('\n')
    const keys = parseSecretKeys(listing)
    assert.deepEqual(
      keys.map((k) => [k.fingerprint, k.capabilities, k.secret, k.userIds, k.subkeys.map((s) => [s.fingerprint, s.capabilities])]),
      [
        ['F36632CCEC36E2F48A5C67DDAA3D8E5F7018FB86', 'scSC', '+', ['t <t@x>'], []],
        ['2222222222222222222222222222222222222222', 'cSC', '#', ['offline <o@x>'], [['4444444444444444444444444444444444444444', 's']]],
      ],
    )
  })

  it('the signing host: hosts: matched against the full or short hostname; absent: every host', () => {
    const trust = (hosts?: string[]) => ({signer: {fingerprint: 'F', line: 1, ...(hosts ? {hosts} : {})}}) as unknown as TrustFile
    assert.equal(isSigningHost(trust(), 'anything'), true)
    assert.equal(isSigningHost(trust(['build01']), 'build01.example.com'), true)
    assert.equal(isSigningHost(trust(['build01.example.com']), 'build01.example.com'), true)
    assert.equal(isSigningHost(trust(['build01']), 'web01'), false)
    assert.equal(isSigningHost({} as TrustFile, 'build01'), false)
  })

  it('gnupgHome: relative to the trust file, ~ expanded, $GNUPGHOME by default', () => {
    assert.equal(gnupgHomeOf({gnupgHome: 'gnupg'}, '/etc/imagetrust'), '/etc/imagetrust/gnupg')
    assert.equal(gnupgHomeOf({gnupgHome: '/var/lib/s'}, '/etc/imagetrust'), '/var/lib/s')
    assert.match(gnupgHomeOf({gnupgHome: '~/.gnupg'}, '/x'), /\/\.gnupg$/)
    const saved = process.env.GNUPGHOME
    process.env.GNUPGHOME = '/tmp/g'
    assert.equal(gnupgHomeOf({}, '/x'), '/tmp/g')
    if (saved === undefined) delete process.env.GNUPGHOME
    else process.env.GNUPGHOME = saved
  })
})
