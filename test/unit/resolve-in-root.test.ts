import assert from 'node:assert/strict'
import {mkdir, mkdtemp, rm, symlink} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {resolveInRoot} from '../../src/fs/resolve-in-root.ts'
import {HostRoot} from '../../src/host/paths.ts'

describe('paths resolve in the root, like openat2(RESOLVE_IN_ROOT)', () => {
  let root: string
  const keep = (p: string) => resolveInRoot(root, p, {final: 'keep'})
  const follow = (p: string) => resolveInRoot(root, p, {final: 'follow'})
  const under = (p: string) => path.join(root, p)

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-resolve-'))
    await mkdir(under('etc/containers'), {recursive: true})
    await mkdir(under('usr/share/containers'), {recursive: true})
    await mkdir(under('srv/keys'), {recursive: true})
    await mkdir(under('etc/pki'), {recursive: true})
    await symlink('/usr/share/containers/policy.json', under('etc/containers/policy.json'))
    await symlink('/srv/keys', under('etc/pki/containers')) // absolute: re-rooted
    await symlink('../../srv/keys', under('etc/pki/relative')) // relative: from etc/pki
    await symlink('../../../../../../tmp', under('etc/pki/climb'))
    await symlink('loop-b', under('etc/loop-a'))
    await symlink('loop-a', under('etc/loop-b'))
  })

  after(async () => {
    await rm(root, {recursive: true, force: true})
  })

  it('joins a plain path, existing or not', () => {
    assert.equal(keep('/etc/containers/registries.d/x.yaml'), under('etc/containers/registries.d/x.yaml'))
  })

  it('`..` never climbs above the root', () => {
    assert.equal(keep('/../../../../tmp/x'), under('tmp/x'))
    assert.equal(keep('/etc/../../../tmp/p.json'), under('tmp/p.json'))
    assert.equal(keep('/..'), root)
  })

  it('an absolute symlink in a directory is re-rooted; a relative one resolves where it is, and cannot climb out either', () => {
    assert.equal(keep('/etc/pki/containers/acme.gpg'), under('srv/keys/acme.gpg'))
    assert.equal(keep('/etc/pki/relative/acme.gpg'), under('srv/keys/acme.gpg'))
    assert.equal(keep('/etc/pki/climb/x'), under('tmp/x'))
  })

  it('the final symlink is kept for writers and followed (in the root) for readers', () => {
    assert.equal(keep('/etc/containers/policy.json'), under('etc/containers/policy.json'))
    assert.equal(follow('/etc/containers/policy.json'), under('usr/share/containers/policy.json'))
  })

  it('a symlink loop is ELOOP, not a hang', () => {
    assert.throws(() => follow('/etc/loop-a'), /more than 40 symlinks \(ELOOP\)/)
    assert.throws(() => keep('/etc/loop-a/x'), /ELOOP/)
  })

  it('HostRoot: unchanged for /, in-root under --root', () => {
    assert.equal(new HostRoot('/').resolve('/etc/../x/../../y'), '/etc/../x/../../y')
    assert.equal(new HostRoot(root).resolve('/etc/pki/containers/k.gpg'), under('srv/keys/k.gpg'))
    assert.equal(new HostRoot(root).resolveFull('/etc/containers/policy.json'), under('usr/share/containers/policy.json'))
  })
})
