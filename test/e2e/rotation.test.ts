/**
 * The key rotation walkthrough of docs/key-rotation.md, end to end, with
 * real podman pushes, a real registry and lookaside, and real skopeo and
 * podman pulls:
 *   1. add key B beside key A on a scope: images signed by A or by B pull;
 *   2. remove A: images signed only by A are rejected, images signed by B still pull.
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, imagetrust} from '../support/lab.ts'

describe('key rotation with real pulls', () => {
  let lab: Lab
  let keyA: GpgKey
  let keyB: GpgKey
  let root: string
  let config: string
  const images = {byA: '', byB: '', unsigned: ''}

  before(async () => {
    lab = await Lab.started('imagetrust-rotation-')
    ;[keyA, keyB] = await Promise.all([lab.makeGpgKey('rota'), lab.makeGpgKey('rotb', {keyType: 'rsa'})])
    await lab.buildImage('localhost/rot:1', 'rotation')
    images.byA = await lab.push('localhost/rot:1', 'team/by-a:1', keyA)
    images.byB = await lab.push('localhost/rot:1', 'team/by-b:1', keyB)
    images.unsigned = await lab.push('localhost/rot:1', 'team/unsigned:1')
    await writeFile(path.join(lab.dir, 'a.asc'), keyA.publicArmored)
    await writeFile(path.join(lab.dir, 'b.asc'), keyB.publicArmored)
    root = path.join(lab.dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await copyFile(path.resolve(import.meta.dirname, '../fixtures/distro/debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
    config = path.join(lab.dir, 'trust.yaml')
    await mkdir(path.join(lab.dir, 'keys'))
    await copyFile(path.join(lab.dir, 'a.asc'), path.join(lab.dir, 'keys/key-a.asc'))
    await writeFile(
      config,
      [
        'version: 1',
        'default: reject',
        'keys:',
        `  key-a: {file: keys/key-a.asc, fingerprint: ${keyA.fingerprint}}`,
        'scopes:',
        `  "${lab.registry}/team":`,
        '    policy: signed',
        '    keys: [key-a]',
        `    lookaside: ${lab.lookasideUrl}`,
        '',
      ].join('\n'),
    )
  })

  after(async () => {
    await lab?.stop()
  })

  async function pulls(engine: 'skopeo' | 'podman'): Promise<Record<string, boolean>> {
    const out: Record<string, boolean> = {}
    for (const [name, image] of Object.entries(images)) out[name] = (await lab.pull(root, image, engine)).code === 0
    return out
  }

  const key = (...args: string[]) => imagetrust(['key', ...args, '--root', root, '-c', config])

  it('0. with key A only, images signed by A pull and the others are refused', async () => {
    const applied = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(applied.code, 0, applied.stderr)
    assert.deepEqual(await pulls('skopeo'), {byA: true, byB: false, unsigned: false})
  })

  it('1. add key B beside A: images signed by A or by B pull', async () => {
    const added = await key('add', 'key-b', path.join(lab.dir, 'b.asc'), '--fingerprint', keyB.fingerprint, '--scope', `${lab.registry}/team`, '--apply')
    assert.equal(added.code, 0, added.stderr)
    for (const engine of ['skopeo', 'podman'] as const) assert.deepEqual(await pulls(engine), {byA: true, byB: true, unsigned: false}, engine)
  })

  it('2. remove A: images signed only by A are rejected, images signed by B still pull', async () => {
    const refused = await key('remove', 'key-a')
    assert.equal(refused.code, 1, 'remove must refuse while the scope uses the key')
    const removed = await key('remove', 'key-a', '--force', '--apply')
    assert.equal(removed.code, 0, removed.stderr)
    for (const engine of ['skopeo', 'podman'] as const) assert.deepEqual(await pulls(engine), {byA: false, byB: true, unsigned: false}, engine)
    const check = await imagetrust(['check', '--root', root, '-c', config])
    assert.equal(check.code, 0, check.stdout + check.stderr)
  })
})
