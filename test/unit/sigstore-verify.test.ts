import assert from 'node:assert/strict'
import {createHash, generateKeyPairSync, sign} from 'node:crypto'
import {describe, it} from 'node:test'

import {checkSigstoreAttachment, loadSigstoreKeys, type SigstoreAttachment} from '../../src/sigstore/verify.ts'
import {matchSignedIdentity, pulledReference} from '../../src/verify/identity.ts'

const DIGEST = `sha256:${'ab'.repeat(32)}`
type Kind = 'ec' | 'ed25519' | 'rsa'

function keyPair(kind: Kind) {
  const pair = kind === 'ec' ? generateKeyPairSync('ec', {namedCurve: 'P-256'}) : kind === 'rsa' ? generateKeyPairSync('rsa', {modulusLength: 2048}) : generateKeyPairSync('ed25519')
  const pem = String(pair.publicKey.export({type: 'spki', format: 'pem'}))
  return {privateKey: pair.privateKey, keys: loadSigstoreKeys([{source: `/k/${kind}.pub`, bytes: new Uint8Array(Buffer.from(pem))}]).keys}
}

const payloadFor = (critical: unknown, optional: unknown = null) => Buffer.from(JSON.stringify({critical, optional}))
const good = (digest = DIGEST, reference = 'reg.example.com/app') => ({identity: {'docker-reference': reference}, image: {'docker-manifest-digest': digest}, type: 'cosign container image signature'})

function attachment(payload: Buffer, signature: Buffer): SigstoreAttachment {
  return {index: 1, layerDigest: `sha256:${createHash('sha256').update(payload).digest('hex')}`, payload: new Uint8Array(payload), signature: signature.toString('base64'), problems: []}
}

const signWith = (kind: Kind, privateKey: ReturnType<typeof keyPair>['privateKey'], payload: Buffer) => sign(kind === 'ed25519' ? null : 'sha256', payload, privateKey)

describe('sigstore signatures checked natively', () => {
  for (const kind of ['ec', 'ed25519', 'rsa'] as const) {
    it(`${kind}: a valid signature verifies with the trusted key and names it`, () => {
      const {privateKey, keys} = keyPair(kind)
      const payload = payloadFor(good())
      const check = checkSigstoreAttachment(attachment(payload, signWith(kind, privateKey, payload)), keys, DIGEST)
      assert.deepEqual({valid: check.valid, signer: check.signer, reasons: check.reasons, ref: check.dockerReference}, {valid: true, signer: keys[0].fingerprint, reasons: [], ref: 'reg.example.com/app'})
    })
  }

  const ROWS: Array<[name: string, make: () => {payload: Buffer; signed: Buffer; keys: ReturnType<typeof keyPair>['keys']}, reason: RegExp]> = [
    ['another key made it', () => {
      const signer = keyPair('ec')
      const payload = payloadFor(good())
      return {payload, signed: signWith('ec', signer.privateKey, payload), keys: keyPair('ec').keys}
    }, /no trusted key verifies the signature/],
    ['the payload was changed after signing', () => {
      const {privateKey, keys} = keyPair('ec')
      const payload = payloadFor(good())
      return {payload: payloadFor(good(DIGEST, 'reg.example.com/evil')), signed: signWith('ec', privateKey, payload), keys}
    }, /no trusted key verifies the signature/],
    ['it signs another manifest', () => {
      const {privateKey, keys} = keyPair('ec')
      const payload = payloadFor(good(`sha256:${'cd'.repeat(32)}`))
      return {payload, signed: signWith('ec', privateKey, payload), keys}
    }, /signed manifest digest sha256:cdcd.* is not the image's sha256:abab/],
    ['the type is simple signing, not cosign', () => {
      const {privateKey, keys} = keyPair('ec')
      const payload = payloadFor({...good(), type: 'atomic container signature'})
      return {payload, signed: signWith('ec', privateKey, payload), keys}
    }, /Unrecognized signature type atomic container signature/],
    ['critical carries an unknown key', () => {
      const {privateKey, keys} = keyPair('ec')
      const payload = payloadFor({...good(), extra: 1})
      return {payload, signed: signWith('ec', privateKey, payload), keys}
    }, /critical: Unknown key "extra"/],
    // containers/image's sigstore_payload.go: "optional" is required (null allowed), keys are never repeated.
    ['"optional" is missing', () => {
      const {privateKey, keys} = keyPair('ec')
      const payload = Buffer.from(JSON.stringify({critical: good()}))
      return {payload, signed: signWith('ec', privateKey, payload), keys}
    }, /Key "optional" missing in a JSON object/],
    ['"critical" appears twice', () => {
      const {privateKey, keys} = keyPair('ec')
      const critical = JSON.stringify(good())
      const payload = Buffer.from(`{"critical":${JSON.stringify({...good(), image: {'docker-manifest-digest': `sha256:${'cd'.repeat(32)}`}})},"critical":${critical},"optional":null}`)
      return {payload, signed: signWith('ec', privateKey, payload), keys}
    }, /Duplicate key "critical"/],
  ]
  for (const [name, make, reason] of ROWS) {
    it(`refused when ${name}`, () => {
      const {payload, signed, keys} = make()
      const check = checkSigstoreAttachment(attachment(payload, signed), keys, DIGEST)
      assert.equal(check.valid, false)
      assert.match(check.reasons.join('; '), reason)
    })
  }

  it('cosign puts a repository in docker-reference: matchRepository accepts it, the default identity does not', () => {
    const ref = pulledReference('reg.example.com/app:1') as Exclude<ReturnType<typeof pulledReference>, string>
    assert.deepEqual(matchSignedIdentity({type: 'matchRepository'}, ref, 'reg.example.com/app'), {verdict: 'match'})
    assert.equal(matchSignedIdentity(undefined, ref, 'reg.example.com/app').verdict, 'mismatch')
  })
})
