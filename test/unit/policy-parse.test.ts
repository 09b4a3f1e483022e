import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, it} from 'node:test'

import {capabilitiesFor} from '../../src/host/capabilities.ts'
import {ParseError} from '../../src/lib/errors.ts'
import {decodeJsonBytes, parseStrictJson, toValue} from '../../src/policy/json.ts'
import {parsePolicy} from '../../src/policy/parse.ts'
import {newSignedBy, PolicyRuleError} from '../../src/policy/requirements.ts'
import {serializePolicy} from '../../src/policy/serialize.ts'
import {ALL_FEATURES} from '../../src/policy/types.ts'

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/distro')
const ACCEPT = '{"type":"insecureAcceptAnything"}'
const KEY = '"keyType":"GPGKeys","keyPath":"/k.gpg"'

/** Wraps a requirement list into a policy with one docker scope. */
function scoped(requirements: string): string {
  return `{"default":[${ACCEPT}],"transports":{"docker":{"a.example.com":${requirements}}}}`
}

function transport(name: string, scope: string): string {
  return `{"default":[${ACCEPT}],"transports":{"${name}":{${JSON.stringify(scope)}:[${ACCEPT}]}}}`
}

/**
 * Each row: input, and either null (it loads) or the message containers/image
 * gives (reference §9.1–9.3), plus the line the error must point at.
 */
const CASES: Array<[name: string, input: string, error: string | null, line?: number]> = [
  ['minimal', `{"default":[${ACCEPT}]}`, null],
  ['unknown top-level key', `{"default":[${ACCEPT}],\n"extra":true}`, 'Unknown key "extra"', 2],
  ['unknown requirement key', `{"default":[{"type":"insecureAcceptAnything",\n"comment":"x"}]}`, 'Unknown key "comment"', 2],
  ['signedBy unknown key', scoped(`[{"type":"signedBy",${KEY},"keyID":"abc"}]`), 'Unknown key "keyID"'],
  ['duplicate default', `{"default":[${ACCEPT}],\n"default":[${ACCEPT}]}`, 'Duplicate key "default"', 2],
  ['duplicate scope', `{"default":[${ACCEPT}],"transports":{"docker":{"a.b":[${ACCEPT}],\n"a.b":[${ACCEPT}]}}}`, 'Duplicate key "a.b"', 2],
  ['duplicate via \\u escape', `{"default":[${ACCEPT}],"def\\u0061ult":[${ACCEPT}]}`, 'Duplicate key "default"'],
  ['missing default', '{}', 'Default policy is missing'],
  ['empty default', '{"default":[]}', 'List of verification policy requirements must not be empty'],
  ['null default', '{"default":null}', 'List of verification policy requirements must not be empty'],
  ['empty scope list', scoped('[]'), 'List of verification policy requirements must not be empty'],
  ['default not an array', '{"default":{}}', 'expected an array of requirements'],
  ['unknown type', '{"default":[{"type":"acceptAll"}]}', 'Unknown policy requirement type "acceptAll"'],
  ['wrong-case type', '{"default":[{"type":"InsecureAcceptAnything"}]}', 'Unknown policy requirement type "InsecureAcceptAnything"'],
  ['wrong-case key', `{"Default":[${ACCEPT}]}`, 'Unknown key "Default"'],
  ['trailing data', `{"default":[${ACCEPT}]} {}`, "invalid character '{' after top-level value"],
  ['comment', `{\n// no\n"default":[${ACCEPT}]}`, "invalid character '/' looking for beginning of object key string", 2],
  ['byte-order mark', `\uFEFF{"default":[${ACCEPT}]}`, 'byte-order mark'],
  ['truncated', `{"default":[${ACCEPT}]`, 'unexpected end of JSON input'],
  ['transports null', `{"default":[${ACCEPT}],"transports":null}`, 'JSON object expected, got null'],
  ['empty docker transport', `{"default":[${ACCEPT}],"transports":{"docker":{}}}`, null],
  ['unknown transport loads', transport('foobar', 'anything'), null],
  ['reject with reason', '{"default":[{"type":"reject","reason":"no"}]}', 'Unknown key "reason"'],
  // signedBy
  ['signedBy keyPath', scoped(`[{"type":"signedBy",${KEY}}]`), null],
  ['signedBy keyPaths', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPaths":["/a","/b"]}]'), null],
  ['signedBy empty keyPaths loads', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPaths":[]}]'), null],
  ['signedBy keyPath+keyData', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","keyData":"YQ=="}]'), 'more than one present'],
  ['signedBy no key', scoped('[{"type":"signedBy","keyType":"GPGKeys"}]'), 'none of them present'],
  ['signedBy empty keyPath', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPath":""}]'), 'exactly one of keyPath, keyPaths and keyData must be specified'],
  ['signedBy null keyPath', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPath":null}]'), 'keyPath is null, which containers/image reads as no key'],
  ['signedBy empty keyData beside keyPath', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","keyData":""}]'), 'more than one present'],
  ['signedBy null keyData beside keyPath', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","keyData":null}]'), 'more than one present'],
  ['signedBy empty keyPath beside keyData', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPath":"","keyData":"YQ=="}]'), 'more than one present'],
  ['signedBy null in keyPaths loads', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPaths":["/a",null]}]'), null],
  ['signedBy keyData as bytes loads', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyData":[104,105,null]}]'), null],
  ['signedBy keyData byte 256', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyData":[256]}]'), 'expected a byte value 0-255, got number 256'],
  ['signedBy keyData number', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyData":5}]'), 'cannot unmarshal number into Go value of type []uint8'],
  // From containers/image 5.24 a null or empty keyPath is no key source (5.23 counted it: see below).
  ['sigstore null keyPath', scoped('[{"type":"sigstoreSigned","keyPath":null}]'), 'exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified'],
  ['sigstore empty keyPath beside keyData', scoped('[{"type":"sigstoreSigned","keyPath":"","keyData":"YQ=="}]'), null],
  ['sigstore keyPaths with a null entry loads', scoped('[{"type":"sigstoreSigned","keyPaths":["/a",null]}]'), null],
  ['sigstore pki without CA roots', scoped('[{"type":"sigstoreSigned","pki":{"subjectEmail":"a@example.com"}}]'), 'At least one of caRootsPath and caRootsData must be specified'],
  ['sigstore pki without a subject', scoped('[{"type":"sigstoreSigned","pki":{"caRootsPath":"/a"}}]'), 'At least one of subjectEmail, subjectHostname must be specified'],
  ['sigstore pki roots twice', scoped('[{"type":"sigstoreSigned","pki":{"caRootsPath":"/a","caRootsData":"YQ==","subjectHostname":"h"}}]'), 'cannot be used simultaneously'],
  ['sigstore rekorPublicKeyDatas with a null entry loads', scoped('[{"type":"sigstoreSigned","keyPath":"/a","rekorPublicKeyDatas":["YQ==",null]}]'), null],
  ['atomic scope with a digest', transport('atomic', `a.example.com/img@sha256:${'a'.repeat(64)}`), 'Invalid scope name'],
  ['signedBy no keyType', scoped('[{"type":"signedBy","keyPath":"/a"}]'), 'invalid keyType ""'],
  ['signedBy bad keyType', scoped('[{"type":"signedBy","keyType":"PGP","keyPath":"/a"}]'), 'Unrecognized keyType value "PGP"'],
  ['signedBy X509 keyType loads', scoped('[{"type":"signedBy","keyType":"X509Certificates","keyPath":"/a"}]'), null],
  ['signedBy bad base64', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyData":"not base64!"}]'), 'illegal base64 data at input byte 3'],
  ['signedBy keyPath not a string', scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPath":5}]'), 'expected a string, got number'],
  // signedIdentity
  ['identity exactReference without tag', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"exactReference","dockerReference":"docker.io/library/busybox"}}]`), 'contains neither a tag nor digest'],
  ['identity exactReference', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"exactReference","dockerReference":"busybox:latest"}}]`), null],
  ['identity matchExact extra key', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"matchExact","dockerReference":"x:1"}}]`), 'Unknown key "dockerReference"'],
  ['identity remap missing key', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"remapIdentity","prefix":"a.example.com"}}]`), 'Key "signedPrefix" missing in a JSON object'],
  ['identity remap with tag', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"remapIdentity","prefix":"127.0.0.1:5001/x:latest","signedPrefix":"a.b/c"}}]`), 'prefix "127.0.0.1:5001/x:latest" is not valid'],
  ['identity exactReference with transport', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"exactReference","dockerReference":"docker://a.b/c:1"}}]`), 'Invalid format of dockerReference docker://a.b/c:1'],
  ['identity exactReference short digest', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"exactReference","dockerReference":"a.b/c@sha256:${'0'.repeat(32)}"}}]`), 'invalid checksum digest format'],
  ['identity exactRepository host-like path loads', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"exactRepository","dockerRepository":"a_b.example.com/c"}}]`), null],
  ['identity remap short prefix', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"remapIdentity","prefix":"a/b","signedPrefix":"c"}}]`), null],
  ['identity remap underscore host', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"remapIdentity","prefix":"a_b/c","signedPrefix":"c"}}]`), 'prefix "a_b/c" is not valid'],
  ['identity remap single label', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"remapIdentity","prefix":"a.example.com/m","signedPrefix":"busybox"}}]`), null],
  ['identity unknown type', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":{"type":"matchAnything"}}]`), 'Unknown policy reference match type "matchAnything"'],
  ['identity null', scoped(`[{"type":"signedBy",${KEY},"signedIdentity":null}]`), 'signedIdentity must be an object, not null'],
  // sigstoreSigned
  ['sigstore keyPath + matchRepository', scoped('[{"type":"sigstoreSigned","keyPath":"/c.pub","signedIdentity":{"type":"matchRepository"}}]'), null],
  ['sigstore two sources', scoped('[{"type":"sigstoreSigned","keyPath":"/c.pub","keyData":"YQ=="}]'), 'exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified'],
  ['sigstore empty keyPaths', scoped('[{"type":"sigstoreSigned","keyPaths":[]}]'), '"keyPaths" contains no entries'],
  ['sigstore fulcio without rekor', scoped('[{"type":"sigstoreSigned","fulcio":{"caPath":"/ca","oidcIssuer":"x","subjectEmail":"y"}}]'), 'fulcio requires a Rekor public key'],
  ['sigstore fulcio unknown key', scoped('[{"type":"sigstoreSigned","fulcio":{"caPath":"/ca","issuer":"x"}}]'), 'Unknown key "issuer"'],
  ['signedBaseLayer loads', scoped('[{"type":"signedBaseLayer","baseLayerIdentity":{"type":"matchRepository"}}]'), null],
  // scopes per transport
  ['docker scope free text loads', transport('docker', 'not a valid ref!!'), null],
  ['dir relative', transport('dir', 'relative/path'), 'Unknown key "relative/path": the scope must be an absolute path'],
  ['dir root', transport('dir', '/'), 'Unknown key "/"'],
  ['dir trailing slash', transport('dir', '/tmp/x/'), 'Unknown key "/tmp/x/"'],
  ['oci relative', transport('oci', 'rel'), 'Unknown key "rel"'],
  ['oci-archive absolute', transport('oci-archive', '/tmp/a.tar'), null],
  ['docker-archive non-empty', transport('docker-archive', '/tmp/a.tar'), 'only accepts the "" scope'],
  ['tarball non-empty', transport('tarball', '/tmp/a.tar'), 'only accepts the "" scope'],
  ['docker-daemon image ID', transport('docker-daemon', `sha256:${'0'.repeat(64)}`), 'an image ID cannot be a scope'],
  ['docker-daemon digest-like loads', transport('docker-daemon', `sha256:${'0'.repeat(32)}`), null],
  ['docker-daemon uppercase ID loads', transport('docker-daemon', `sha256:${'A'.repeat(64)}`), null],
  ['docker-daemon named', transport('docker-daemon', 'docker.io/library/busybox:latest'), null],
  ['containers-storage with store', transport('containers-storage', '[overlay@/var/lib/containers/storage]docker.io/library/busybox:latest'), null],
  ['containers-storage without store', transport('containers-storage', 'docker.io/library/busybox'), 'Unknown key "docker.io/library/busybox"'],
  ['containers-storage bad image ID', transport('containers-storage', '[overlay@/var/lib/x]@abc'), 'is not an image ID'],
  ['containers-storage named with ID', transport('containers-storage', `[overlay@/var/lib/x]a.b/c@sha256:${'a'.repeat(64)}`), null],
  ['containers-storage empty driver', transport('containers-storage', '[@/var/lib/x]'), 'driver before @ is empty'],
  ['containers-storage relative root', transport('containers-storage', '[overlay@var/lib]x'), 'must be an absolute path'],
]

describe('sigstoreSigned key sources on containers/image 5.23', () => {
  const features = capabilitiesFor([5, 23], 'skopeo 1.9.3').policy
  it('a null keyPath is the one key source, as 5.23 counts keys present', () => {
    assert.doesNotThrow(() => parsePolicy(scoped('[{"type":"sigstoreSigned","keyPath":null}]'), 'policy.json', {features}))
  })

  it('an atomic scope is not validated by Debian 12\'s build', () => {
    assert.doesNotThrow(() => parsePolicy(transport('atomic', `a.example.com/img@sha256:${'a'.repeat(64)}`), 'policy.json', {features}))
  })
})

describe('strict policy.json parser', () => {
  for (const [name, input, error, line] of CASES) {
    it(`${error === null ? 'loads' : 'refuses'}: ${name}`, () => {
      if (error === null) {
        assert.doesNotThrow(() => parsePolicy(input, 'policy.json'))
        return
      }

      assert.throws(
        () => parsePolicy(input, 'policy.json'),
        (thrown: unknown) => {
          assert.ok(thrown instanceof ParseError, `not a ParseError: ${thrown}`)
          assert.ok(thrown.message.includes(error), `message ${JSON.stringify(thrown.message)} lacks ${JSON.stringify(error)}`)
          assert.equal(thrown.location?.file, 'policy.json')
          assert.ok(thrown.location?.line, 'no line in the error')
          if (line !== undefined) assert.equal(thrown.location.line, line)
          return true
        },
      )
    })
  }

  it('names the JSON path of a bad requirement', () => {
    const input = `{\n  "default": [${ACCEPT}],\n  "transports": {\n    "docker": {\n      "a.example.com": [\n        {"type": "signedBy", "keyType": "GPGKeys"}\n      ]\n    }\n  }\n}\n`
    assert.throws(() => parsePolicy(input, '/etc/containers/policy.json'), {
      message: /^\/etc\/containers\/policy\.json:6:9 \(\$\.transports\.docker\["a\.example\.com"\]\[0\]\): Exactly one of keyPath/,
    })
  })

  it('finds a duplicate key in a large object as in a small one, with the JSON path of the object', () => {
    for (const n of [2, 7, 8, 9, 40]) {
      const scopes = Array.from({length: n}, (_, i) => `"r${i}.example.com":[${ACCEPT}]`)
      const input = `{"default":[${ACCEPT}],"transports":{"docker":{${scopes.join(',')},\n"r${n - 1}.example.com":[${ACCEPT}]}}}`
      assert.throws(() => parsePolicy(input, 'p'), (thrown: unknown) => {
        assert.ok(thrown instanceof ParseError)
        assert.equal(thrown.location?.line, 2, `${n} scopes`)
        assert.equal(thrown.location?.path, '$.transports.docker', `${n} scopes`)
        assert.match(thrown.message, new RegExp(`Duplicate key "r${n - 1}\\.example\\.com" \\(first at line 1\\)`))
        return true
      })
    }
  })

  it('names the JSON path of a syntax error deep in the file', () => {
    const input = `{"default":[${ACCEPT}],"transports":{"docker":{"a.example.com":[${ACCEPT},\n{"type": tru}]}}}`
    assert.throws(() => parseStrictJson(input, 'p'), (thrown: unknown) => {
      assert.ok(thrown instanceof ParseError)
      assert.equal(thrown.location?.path, '$.transports.docker["a.example.com"][1].type')
      assert.equal(thrown.location?.line, 2)
      return true
    })
  })

  it('parses a text it just parsed once: the same policy, frozen, and the warnings named for each file', () => {
    const input = `{"default":[${ACCEPT}],"transports":{"docker":{"busybox":[${ACCEPT}]}}}`
    const first = parsePolicy(input, '/planned')
    const second = parsePolicy(Buffer.from(input), '/etc/containers/policy.json')
    assert.equal(second.policy, first.policy, 'parsed again')
    assert.ok(Object.isFrozen(first.policy.transports![0].scopes[0].requirements[0]), 'a shared parse must not be editable')
    assert.match(first.warnings[0], /^\/planned:1: docker scope "busybox"/)
    assert.match(second.warnings[0], /^\/etc\/containers\/policy\.json:1: docker scope "busybox"/)
    const old = {...ALL_FEATURES, sigstoreSigned: false}
    assert.notEqual(parsePolicy(input, 'p', {features: old}).policy, first.policy, 'other features, another parse')
    assert.throws(() => parsePolicy(scoped('[{"type":"sigstoreSigned","keyPath":"/a"}]'), 'p', {features: old}), /Unknown policy requirement type "sigstoreSigned"/)
    assert.doesNotThrow(() => parsePolicy(scoped('[{"type":"sigstoreSigned","keyPath":"/a"}]'), 'p'), 'the cached refusal of one feature set leaks into another')
  })

  it('refuses deep nesting with a located error, not a RangeError', () => {
    const deep = `{"default":[${ACCEPT}],\n"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`
    assert.throws(() => parsePolicy(deep, 'policy.json'), (thrown: unknown) => {
      assert.ok(thrown instanceof ParseError, `not a ParseError: ${thrown}`)
      assert.match(thrown.message, /^policy\.json:2:68 \(\$\.x(\[0\])+\): JSON nested deeper than 64 levels/)
      return true
    })
    assert.doesNotThrow(() => parseStrictJson('['.repeat(64) + ']'.repeat(64), 'p'))
    assert.throws(() => parseStrictJson('['.repeat(65) + ']'.repeat(65), 'p'), /p:1:65 .*deeper than 64/)
  })

  it('reads lone surrogates as U+FFFD, as Go does', () => {
    assert.throws(() => parsePolicy(`{"default":[${ACCEPT}],"\\ud800":1,"\\udc00":2}`, 'p'), /Duplicate key/)
    assert.deepEqual(toValue(parseStrictJson('"\\ud83d\\ude00"', 'p')), '\u{1F600}')
  })

  it('reads strings as JSON does: plain runs around every escape, and the errors located', () => {
    for (const literal of ['""', '"plain"', '"a\\nb"', '"\\"lead"', '"trail\\\\"', '"x\\u00e9y\\/z\\b\\f\\r\\t"', '"é ✓ \\ud83d\\ude00 end"', `"${'r'.repeat(5000)}\\t${'s'.repeat(5000)}"`]) {
      assert.equal(toValue(parseStrictJson(literal, 'p')), JSON.parse(literal), literal)
    }

    assert.throws(() => parseStrictJson('"ab\ncd"', 'p'), /p:1:4: unterminated string/)
    assert.throws(() => parseStrictJson('"ab\tcd"', 'p'), /p:1:4: invalid control character/)
    assert.throws(() => parseStrictJson('"ab\\qcd"', 'p'), /p:1:4: invalid escape \\q/)
    assert.throws(() => parseStrictJson('"ab\\u12"', 'p'), /p:1:4: invalid \\u escape/)
    assert.throws(() => parseStrictJson('"abc', 'p'), /p:1:5: unterminated string/)
  })

  it('decodes invalid UTF-8 byte by byte, as Go does', () => {
    // Go reads "a\xe2\x82" as a + two U+FFFD and "a\xe2" as a + one: two keys, and the file loads.
    const bytes = Buffer.concat([
      Buffer.from(`{"default":[${ACCEPT}],"transports":{"docker":{"a`),
      Buffer.from([0xe2, 0x82]),
      Buffer.from(`":[${ACCEPT}],"a`),
      Buffer.from([0xe2]),
      Buffer.from(`":[${ACCEPT}]}}}`),
    ])
    const {policy} = parsePolicy(bytes, 'p')
    assert.deepEqual(policy.transports?.[0].scopes.map((s) => s.scope), ['a\ufffd\ufffd', 'a\ufffd'])
    assert.equal(decodeJsonBytes(Buffer.from([0xef, 0xbb, 0xbf, 0x7b])), '\ufeff{')
    assert.equal(decodeJsonBytes(Buffer.from([0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98, 0x80, 0xc0, 0xaf])), '\ufffd\ufffd\ufffd\u{1F600}\ufffd\ufffd')
  })

  it('warns, and keeps going, where containers/image loads a suspicious file', () => {
    const {policy, warnings} = parsePolicy(scoped('[{"type":"signedBy","keyType":"GPGKeys","keyData":[104,105]},{"type":"signedBy","keyType":"GPGKeys","keyPaths":[null]}]'), 'p')
    assert.deepEqual(policy.transports?.[0].scopes[0].requirements, [
      {type: 'signedBy', keyType: 'GPGKeys', keyData: 'aGk='},
      {type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['']},
    ])
    assert.equal(warnings.length, 2)
    assert.match(warnings[0], /^p:1:\d+ \(\$\.transports\.docker\["a\.example\.com"\]\[0\]\.keyData\): key data written as an array of byte values/)
    assert.match(warnings[1], /keyPaths\[0\]\): null is read as an empty path/)
  })

  it('gates fields on the containers/image version', () => {
    const old = {...ALL_FEATURES, signedByKeyPaths: false, sigstoreKeyLists: false}
    assert.throws(() => parsePolicy(scoped('[{"type":"signedBy","keyType":"GPGKeys","keyPaths":["/a"]}]'), 'p', {features: old}), /Unknown key "keyPaths"/)
    assert.throws(() => parsePolicy(scoped('[{"type":"sigstoreSigned","keyPaths":["/a"]}]'), 'p', {features: old}), /Unknown key "keyPaths"/)
    assert.throws(() => parsePolicy(scoped('[{"type":"sigstoreSigned","keyPath":"/a","keyData":"YQ=="}]'), 'p', {features: old}), /keyPath and keyData cannot be used simultaneously/)
  })

  it('warns about docker scopes that never match, and unknown transports', () => {
    const {warnings} = parsePolicy(`{"default":[${ACCEPT}],"transports":{"docker":{"busybox":[${ACCEPT}]},"Docker":{}}}`, 'p')
    assert.equal(warnings.length, 2)
    assert.match(warnings[0], /short name, which never matches/)
    assert.match(warnings[1], /transport "Docker" is unknown/)
    const normalised = parsePolicy(`{"default":[${ACCEPT}],"transports":{"docker":{"index.docker.io/library/alpine":[${ACCEPT}],"docker.io/busybox":[${ACCEPT}]}}}`, 'p').warnings
    assert.equal(normalised.length, 1, 'docker.io/busybox is a namespace; index.docker.io never matches')
    assert.match(normalised[0], /scope "index\.docker\.io\/library\/alpine" never matches: containers\/image compares normalised names \("docker\.io\/library\/alpine"\)/)
  })

  it('hand-built requirements go through the same constructor checks', () => {
    assert.throws(() => newSignedBy({keyType: 'GPGKeys'}), PolicyRuleError)
    assert.throws(() => newSignedBy({keyType: 'GPGKeys', keyPath: '/a', keyData: 'YQ=='}), /more than one present/)
    assert.deepEqual(newSignedBy({keyType: 'GPGKeys', keyPaths: ['/a', '/b']}), {type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['/a', '/b']})
  })

  for (const fixture of ['debian12-policy.json', 'debian12-podman-example-policy.json', 'rhel-like-policy.json']) {
    it(`loads the distribution file ${fixture} and round-trips it`, () => {
      const text = readFileSync(path.join(FIXTURES, fixture), 'utf8')
      const {policy} = parsePolicy(text, fixture)
      const again = parsePolicy(serializePolicy(policy), fixture).policy
      assert.deepEqual(again, policy)
    })
  }
})
