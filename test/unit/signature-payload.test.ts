import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseSimplePayload, SIGSTORE_SIGNING_TYPE} from '../../src/lib/signature-payload.ts'

/** Payload cases as containers/image's signature/simple.go judges them (test/e2e/gpg-parity.test.ts runs real skopeo on the same kinds). */
const DIGEST = `sha256:${'ab'.repeat(32)}`
const IMAGE = `{"docker-manifest-digest":"${DIGEST}"}`
const IDENTITY = '{"docker-reference":"reg.example.com/app:1"}'
const critical = (image = IMAGE, identity = IDENTITY, extra = '') => `{"type":"atomic container signature","image":${image},"identity":${identity}${extra}}`
const doc = (body: string) => `{${body}}`

describe('the simple-signing payload is parsed as containers/image parses it', () => {
  const REFUSED: Array<[string, string, RegExp]> = [
    ['"optional" missing', doc(`"critical":${critical()}`), /Key "optional" missing/],
    ['"optional" null', doc(`"critical":${critical()},"optional":null`), /optional: JSON object expected, got null/],
    ['an unknown top-level key', doc(`"critical":${critical()},"optional":{},"x":1`), /the payload: Unknown key "x"/],
    ['an unknown key in critical', doc(`"critical":${critical(IMAGE, IDENTITY, ',"x":1')},"optional":{}`), /critical: Unknown key "x"/],
    ['an unknown key in identity', doc(`"critical":${critical(IMAGE, '{"docker-reference":"a","x":1}')},"optional":{}`), /critical.identity: Unknown key "x"/],
    ['an unknown key in image', doc(`"critical":${critical(`{"docker-manifest-digest":"${DIGEST}","x":1}`)},"optional":{}`), /critical.image: Unknown key "x"/],
    ['"critical" twice', doc(`"critical":${critical()},"critical":${critical()},"optional":{}`), /Duplicate key "critical"/],
    ['a key twice in optional', doc(`"critical":${critical()},"optional":{"creator":"a","creator":"b"}`), /optional: Duplicate key "creator"/],
    ['a key twice in identity', doc(`"critical":${critical(IMAGE, '{"docker-reference":"a","docker-reference":"b"}')},"optional":{}`), /Duplicate key "docker-reference"/],
    ['a fractional timestamp', doc(`"critical":${critical()},"optional":{"timestamp":1.5}`), /not an integer/],
    ['a string timestamp', doc(`"critical":${critical()},"optional":{"timestamp":"1"}`), /timestamp/],
    ['a numeric type', doc(`"critical":{"type":1,"image":${IMAGE},"identity":${IDENTITY}},"optional":{}`), /critical.type: cannot unmarshal number/],
    ['another type', doc(`"critical":{"type":"x","image":${IMAGE},"identity":${IDENTITY}},"optional":{}`), /Unrecognized signature type x/],
    ['data after the object', `${doc(`"critical":${critical()},"optional":{}`)}{}`, /unexpected data after the JSON value/],
    ['not JSON', '{"critical":', /unexpected end of JSON/],
    ['a top-level array', '[]', /JSON object expected, got a array/],
  ]
  for (const [name, text, reason] of REFUSED) {
    it(`refuses ${name}`, () => assert.throws(() => parseSimplePayload(text), reason))
  }

  it('accepts unknown keys, nested values and integer timestamps in optional, and null strings as empty', () => {
    const parsed = parseSimplePayload(doc(`"optional":{"creator":null,"timestamp":1700000000,"any":{"a":[1,{"a":2,"a":3}]}},"critical":${critical()}`))
    assert.deepEqual(parsed, {type: 'atomic container signature', dockerManifestDigest: DIGEST, dockerReference: 'reg.example.com/app:1'})
    assert.equal(parseSimplePayload(doc(`"critical":${critical(IMAGE, '{"docker-reference":null}')},"optional":{}`)).dockerReference, '')
  })

  it('sigstore payloads may have "optional": null, as cosign writes them', () => {
    const text = doc(`"critical":{"type":"${SIGSTORE_SIGNING_TYPE}","image":${IMAGE},"identity":${IDENTITY}},"optional":null`)
    assert.equal(parseSimplePayload(text, SIGSTORE_SIGNING_TYPE).dockerManifestDigest, DIGEST)
  })
})
