import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {isGeneratedPolicyPath, isKeyFilePath, isManagedFile, type ManagedPaths} from '../../src/host/managed-paths.ts'
import {parseManifest} from '../../src/plan/backup-manifest.ts'
import {emptyState, parseState, serializeState} from '../../src/host/state.ts'

const managed: ManagedPaths = {
  keyDir: '/etc/pki/containers',
  registriesD: '/etc/containers/registries.d',
  statePath: '/var/lib/imagetrust/state.json',
  policies: ['/etc/containers/policy.json', '/etc/crio/policy.json'],
  generatedPolicyDirs: ['/etc/crio/policies', '/srv/crio-policies'],
}

describe('paths read from imagetrust’s own files must be ones it manages', () => {
  it('key files: direct, plain children of the key directory', () => {
    assert.ok(isKeyFilePath(managed, '/etc/pki/containers/acme.gpg'))
    for (const p of ['/etc/pki/containers/../../shadow', '/etc/pki/containers/sub/x.gpg', '/etc/pki/containers/', '/etc/pki/containers', 'etc/pki/containers/a.gpg', '/etc/pki/containers//a.gpg', '/etc/pki/containers/.a.gpg', '/tmp/x']) {
      assert.ok(!isKeyFilePath(managed, p), p)
    }
  })

  it('generated policies: *.json in the default or configured CRI-O policy directory', () => {
    assert.ok(isGeneratedPolicyPath(managed, '/etc/crio/policies/prod.json'))
    assert.ok(isGeneratedPolicyPath(managed, '/srv/crio-policies/prod.json'))
    for (const p of ['/etc/crio/policies/prod.yaml', '/etc/crio/policies/.json', '/etc/crio/policies/../policy.json', '/tmp/p.json']) assert.ok(!isGeneratedPolicyPath(managed, p), p)
  })

  it('backed-up files: policy targets, registries.d/*.yaml, key files, the state', () => {
    for (const p of ['/etc/containers/policy.json', '/etc/crio/policy.json', '/etc/containers/registries.d/imagetrust.yaml', '/etc/pki/containers/a.pub', '/var/lib/imagetrust/state.json', '/etc/crio/policies/ns.json']) {
      assert.ok(isManagedFile(managed, p), p)
    }

    for (const p of ['/etc/shadow', '/etc/containers/registries.d/x.yml', '/etc/containers/../containers/policy.json', '/var/lib/imagetrust/backups/x']) assert.ok(!isManagedFile(managed, p), p)
  })

  it('parseState: what serializeState writes reads back; a foreign path is located by line and JSON path', () => {
    const state = {...emptyState(), keyFiles: ['/etc/pki/containers/a.gpg'], generatedPolicies: ['/etc/crio/policies/ns.json']}
    assert.deepEqual(parseState(serializeState(state), 'state.json', managed), state)
    const text = serializeState({...state, keyFiles: ['/etc/pki/containers/a.gpg', '/etc/pki/containers/../../shadow']})
    assert.throws(() => parseState(text, 'state.json', managed), /^ImagetrustError: state\.json:\d+:5 \(\$\.keyFiles\[1\]\): "\/etc\/pki\/containers\/\.\.\/\.\.\/shadow" is not in the key directory \/etc\/pki\/containers$/m)
  })

  it('parseManifest: types, managed host paths, blobs inside the backup, the id of its directory', () => {
    const good = {id: 'b1', createdAt: 'now', rolledBack: false, files: [{hostPath: '/etc/containers/policy.json', existed: true, mode: 420, uid: 0, gid: 0, blob: 'file-0', afterSha256: 'a'.repeat(64)}]}
    assert.deepEqual(parseManifest(JSON.stringify(good), 'm.json', 'b1', managed), good)
    // A manifest bent out of shape on purpose: any field may get any value.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const bad = (edit: (m: any) => void) => {
      const m = structuredClone(good)
      edit(m)
      return () => parseManifest(JSON.stringify(m, null, 2), 'm.json', 'b1', managed)
    }

    assert.throws(bad((m) => (m.files = null)), /m\.json:5:\d+ \(\$\.files\): expected an array, got null/)
    assert.throws(bad((m) => (m.files[0].blob = '../x')), /\(\$\.files\[0\]\.blob\): a blob is a file name inside the backup directory/)
    assert.throws(bad((m) => (m.files[0].hostPath = '/etc/shadow')), /\(\$\.files\[0\]\.hostPath\): "\/etc\/shadow" is not a file imagetrust manages/)
    assert.throws(bad((m) => (m.files[0].mode = -1)), /\(\$\.files\[0\]\.mode\): expected a non-negative integer, got -1/)
    assert.throws(bad((m) => (m.files[0].mode = 0o10000)), /a file mode is at most 07777/)
    assert.throws(bad((m) => delete m.files[0].blob), /\(\$\.files\[0\]\): "blob" is missing for a file that existed/)
    assert.throws(bad((m) => (m.files[0].afterSha256 = 'zz')), /expected a SHA-256 in hex, or null/)
    assert.throws(bad((m) => (m.id = 'b2')), /\(\$\.id\): the id "b2" is not its directory's name "b1"/)
  })
})
