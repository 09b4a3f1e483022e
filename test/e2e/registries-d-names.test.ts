/**
 * A registries.d file whose name is not UTF-8 (`a\xff.yaml`) is a *.yaml
 * file to containers/image, which reads it like any other. So: not "broken",
 * its lookaside in explain, and its content part of check's fast path.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, rm, unlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {imagetrust} from '../support/lab.ts'

describe('a registries.d file name that is not UTF-8', () => {
  let dir: string
  let root: string
  let config: string
  let file: Buffer
  const env = {...process.env, HOME: '/home/names'}

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-names-'))
    root = path.join(dir, 'root')
    await mkdir(path.join(root, 'etc/containers/registries.d'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    file = Buffer.concat([Buffer.from(path.join(root, 'etc/containers/registries.d/a')), Buffer.from([0xff]), Buffer.from('.yaml')])
    await writeFile(file, 'docker:\n  other.example.com:\n    lookaside: https://other.example.com/sigs\n')
    config = path.join(dir, 'trust.yaml')
    await writeFile(config, 'version: 1\ndefault: reject\nscopes:\n  "registry.example.com/x":\n    policy: accept\n')
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('is read, not called broken: apply, then check in sync (fast path and full plan)', async () => {
    const applied = await imagetrust(['apply', '--root', root, '-c', config], env)
    assert.equal(applied.code, 0, applied.stdout + applied.stderr)
    const fast = await imagetrust(['check', '--root', root, '-c', config, '--json'], env)
    assert.equal(fast.code, 0, fast.stdout)
    await unlink(path.join(root, 'var/lib/imagetrust/fingerprint.json'))
    const full = await imagetrust(['check', '--root', root, '-c', config, '--json'], env)
    assert.equal(full.code, 0, full.stdout)
    assert.doesNotMatch(full.stdout, /broken|fails every pull/)
  })

  it('explain shows its lookaside, naming the file with the byte escaped', async () => {
    const result = await imagetrust(['explain', 'other.example.com/app:1', '--root', root, '--json'], env)
    assert.equal(result.code, 0, result.stderr)
    const lookaside = JSON.parse(result.stdout).registriesD.lookaside
    assert.equal(lookaside.value, 'https://other.example.com/sigs')
    assert.equal(lookaside.file, path.join(root, 'etc/containers/registries.d/a\\xff.yaml'))
  })

  it("a change to its content is seen by check's fast path", async () => {
    const applied = await imagetrust(['apply', '--root', root, '-c', config], env)
    assert.equal(applied.code, 0, applied.stderr)
    assert.equal(JSON.parse((await imagetrust(['check', '--root', root, '-c', config, '--json'], env)).stdout).basis, 'unchanged since apply')
    await writeFile(file, 'docker:\n  other.example.com:\n    lookaside: https://changed.example.com/sigs\n')
    assert.equal(JSON.parse((await imagetrust(['check', '--root', root, '-c', config, '--json'], env)).stdout).basis, 'full plan')
  })
})
