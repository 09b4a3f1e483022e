/** Drift names what changed inside a file: scopes, the default, registries.d entries. */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {describeChange} from '../../src/plan/changes.ts'
import {driftLine} from '../../src/plan/drift.ts'
import {makeKey} from '../support/hostroot.ts'

const policy = (scopes: Record<string, unknown>, def = 'reject'): string => JSON.stringify({default: [{type: def}], transports: {docker: scopes}})
const signed = [{type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/containers/acme.gpg'}]

describe('describeChange', () => {
  it('names an added, a removed and a changed scope, with both requirements', async () => {
    const found = policy({'r.example/a': [{type: 'insecureAcceptAnything'}], 'r.example/extra': [{type: 'reject'}]})
    const expected = policy({'r.example/a': signed, 'r.example/new': signed})
    const changes = await describeChange({hostPath: '/etc/containers/policy.json', kind: 'policy', before: found, after: expected})
    assert.deepEqual(
      changes.map((c) => [c.what, c.change, c.name, c.found, c.expected]),
      [
        ['scope', 'changed', 'docker:r.example/a', 'accept', 'signedBy GPGKeys /etc/pki/containers/acme.gpg'],
        ['scope', 'added', 'docker:r.example/extra', 'reject', undefined],
        ['scope', 'removed', 'docker:r.example/new', undefined, 'signedBy GPGKeys /etc/pki/containers/acme.gpg'],
      ],
    )
  })

  it('names a changed default', async () => {
    const changes = await describeChange({hostPath: '/p', kind: 'policy', before: policy({}, 'insecureAcceptAnything'), after: policy({})})
    assert.deepEqual(changes, [{what: 'default', change: 'changed', found: 'accept', expected: 'reject', summary: 'default changed: host has accept, trust file wants reject'}])
  })

  it('names a changed registries.d entry and puts it on one drift line', async () => {
    const changes = await describeChange({
      hostPath: '/etc/containers/registries.d/imagetrust.yaml',
      kind: 'registries.d',
      before: 'docker:\n  r.example/a:\n    lookaside: https://old.example\n',
      after: 'docker:\n  r.example/a:\n    lookaside: https://new.example\n',
    })
    assert.equal(changes.length, 1)
    assert.equal(changes[0].what, 'registries.d entry')
    assert.match(changes[0].found!, /old\.example/)
    const line = driftLine({path: '/x/imagetrust.yaml', kind: 'registries.d', action: 'update', reasons: ['content'], changes})
    assert.doesNotMatch(line, /\n/)
    assert.match(line, /^\/x\/imagetrust\.yaml: content: registries\.d entry r\.example\/a changed: host has .*old.*, trust file wants .*new/)
  })

  it('names a replaced key by both fingerprints, and a missing one', async () => {
    const [old, fresh] = await Promise.all([makeKey('old'), makeKey('new')])
    const [replaced] = await describeChange({hostPath: '/etc/pki/containers/acme.gpg', kind: 'key', before: old.publicKey, after: fresh.publicKey})
    assert.deepEqual([replaced.what, replaced.change, replaced.found, replaced.expected], ['key', 'replaced', `fingerprint ${old.fingerprint}`, `fingerprint ${fresh.fingerprint}`])
    const [missing] = await describeChange({hostPath: '/etc/pki/containers/acme.gpg', kind: 'key', before: null, after: fresh.publicKey})
    assert.deepEqual([missing.change, missing.found, missing.expected], ['removed', undefined, `fingerprint ${fresh.fingerprint}`])
  })
})
