/**
 * What status reuses from apply's record (keys, untils, engines) holds while
 * its own inputs are unchanged, even when others changed (check's
 * fingerprint then no longer holds); a record without them falls back to
 * every input.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {HostRoot} from '../../src/host/paths.ts'
import {digestInputs, type Fingerprint, fingerprintHolds, fingerprintPath, recordedEngines, reusableFingerprint, reusedCovers, writeFingerprint} from '../../src/plan/fingerprint.ts'

const CONTEXT = '{"test": true}'

describe("status's part of apply's record", () => {
  let dir: string
  let root: HostRoot
  let files: {trust: string; key: string; policy: string}

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'itfr-'))
    root = new HostRoot(path.join(dir, 'root'))
    await mkdir(path.join(dir, 'root/var/lib/imagetrust'), {recursive: true})
    files = {trust: path.join(dir, 'trust.yaml'), key: path.join(dir, 'key.gpg'), policy: path.join(dir, 'policy.json')}
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  async function record(extra: Partial<Fingerprint> = {}, options: {reused?: boolean} = {}): Promise<void> {
    await writeFile(files.trust, 'version: 1\n')
    await writeFile(files.key, 'key')
    await writeFile(files.policy, '{}')
    const inputs = {files: [files.trust, files.key, files.policy], dirs: []}
    const reused = {files: [files.trust, files.key], dirs: []}
    const base: Fingerprint = {version: 3, trustFile: files.trust, digest: await digestInputs(inputs, CONTEXT, root), inputs, warnings: [], drift: [], keys: [], expiries: []}
    await writeFingerprint(root, {...base, ...(options.reused === false ? {} : {reused: {inputs: reused, digest: await digestInputs(reused, CONTEXT, root)}}), ...extra})
  }

  const verdicts = async () => [Boolean(await fingerprintHolds(root, files.trust, CONTEXT)), Boolean(await reusableFingerprint(root, files.trust, CONTEXT))]

  it('holds for status after a change to an input it does not reuse, not after one to its own', async () => {
    await record()
    assert.deepEqual(await verdicts(), [true, true])
    await writeFile(files.policy, '{"edited": true}')
    assert.deepEqual(await verdicts(), [false, true])
    await writeFile(files.key, 'another key')
    assert.deepEqual(await verdicts(), [false, false])
    assert.equal(await reusableFingerprint(root, files.trust, '{"other": "context"}'), undefined)
  })

  it('falls back to every input for a record without its own, or with a damaged one', async () => {
    await record({}, {reused: false})
    assert.deepEqual(await verdicts(), [true, true])
    await writeFile(files.policy, '{"edited": true}')
    assert.deepEqual(await verdicts(), [false, false])
    await record({reused: {digest: 5} as never})
    await writeFile(files.policy, '{"edited": true}')
    assert.deepEqual(await verdicts(), [false, false])
  })

  it('no longer holds once an until has passed, or for another trust file', async () => {
    await record({validUntil: '2000-01-01T00:00:00.000Z'})
    assert.deepEqual(await verdicts(), [false, false])
    await record()
    assert.equal(await reusableFingerprint(root, path.join(dir, 'other.yaml'), CONTEXT), undefined)
  })

  it('says which inputs the digest that vouches for it covers', async () => {
    await record()
    const fingerprint = (await reusableFingerprint(root, files.trust, CONTEXT))!
    assert.equal(reusedCovers(fingerprint, {files: [files.key], dirs: []}), true)
    assert.equal(reusedCovers(fingerprint, {files: [files.policy], dirs: []}), false)
    assert.equal(reusedCovers({...fingerprint, reused: undefined}, {files: [files.policy], dirs: []}), true)
    assert.equal(reusedCovers(fingerprint, {files: [], dirs: [{dir, suffixes: ['.conf']}]}), false)
  })

  it('gives the engines it recorded only when they are well formed', async () => {
    await record({engines: [{name: 'podman', path: '/usr/bin/podman', version: '4.3.1', containersImage: '5.23'}]})
    const fingerprint = (await reusableFingerprint(root, files.trust, CONTEXT))!
    assert.deepEqual(recordedEngines(fingerprint), [{name: 'podman', path: '/usr/bin/podman', version: '4.3.1', containersImage: '5.23'}])
    assert.equal(recordedEngines({...fingerprint, engines: undefined}), undefined)
    assert.equal(recordedEngines({...fingerprint, engines: [{name: 'podman'}] as never}), undefined)
    await rm(fingerprintPath(root))
  })

  it('follows a symlink under --root in the root, never to the file of that name on this machine', async () => {
    // root/etc/containers/policy.json -> <dir>/outside.json: inside the root that is root<dir>/outside.json.
    const outside = path.join(dir, 'outside.json')
    const inRoot = path.join(root.root, outside)
    await mkdir(path.join(root.root, 'etc/containers'), {recursive: true})
    await mkdir(path.dirname(inRoot), {recursive: true})
    await writeFile(outside, 'this machine')
    await writeFile(inRoot, 'the root')
    const link = root.resolve('/etc/containers/policy.json')
    await symlink(outside, link)
    const inputs = {files: [link], dirs: [{dir: path.dirname(link), suffixes: ['.json']}]}
    const digest = await digestInputs(inputs, CONTEXT, root)
    await writeFile(outside, 'this machine, edited')
    assert.equal(await digestInputs(inputs, CONTEXT, root), digest, 'read the file outside the root')
    await writeFile(inRoot, 'the root, edited')
    assert.notEqual(await digestInputs(inputs, CONTEXT, root), digest, 'missed a change to the target in the root')
    const edited = await digestInputs(inputs, CONTEXT, root)
    await rm(link)
    await symlink(inRoot, link) // the same content, reached by another target
    assert.notEqual(await digestInputs(inputs, CONTEXT, root), edited, 'missed a retargeted link')
    const host = new HostRoot('/')
    const plain = await digestInputs({files: [link], dirs: []}, CONTEXT, host)
    await writeFile(inRoot, 'the root, edited twice')
    assert.notEqual(await digestInputs({files: [link], dirs: []}, CONTEXT, host), plain, 'without --root a link is followed as usual')
  })
})
