/**
 * audit --since for CRI-O: the lab's real CRI-O 1.36 pulls (through crictl)
 * images signed by the trusted key, by another key, and unsigned, from a
 * loopback registry; its own log ("Pulling image" / "Pulled image" lines) is
 * what audit --since --crio-log reads, judged against the candidate policy.
 */
import assert from 'node:assert/strict'
import {cp, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {CrioLab} from '../support/crio-lab.ts'
import {type GpgKey, Lab, imagetrust} from '../support/lab.ts'
import {labBin} from '../support/lab-bin.ts'
import {assertMatchesSchema} from '../support/schema.ts'

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/crio')

describe('audit --since reads what the lab CRI-O pulled', {timeout: 600_000}, () => {
  let lab: Lab
  let crio: CrioLab
  let key: GpgKey
  let root: string
  let trustFile: string
  const images = {signed: '', unsigned: '', other: '', pause: ''}

  before(async () => {
    lab = await Lab.started('itch-')
    key = await lab.makeGpgKey('crioh', {keyType: 'rsa'})
    const other = await lab.makeGpgKey('otherh', {keyType: 'rsa'})
    await lab.buildImage('localhost/h:1', 'crio history signed')
    await lab.buildImage('localhost/h:2', 'crio history unsigned')
    await lab.buildImage('localhost/h:3', 'crio history other')
    await lab.buildImageFromFiles('localhost/pause:1', {[await labBin('pause')]: '/pause'})
    images.signed = await lab.push('localhost/h:1', 'global/app:1', key)
    images.unsigned = await lab.push('localhost/h:2', 'global/unsigned:1')
    images.other = await lab.push('localhost/h:3', 'global/other:1', other)
    images.pause = await lab.push('localhost/pause:1', 'lab/pause:1', key)
    root = path.join(lab.dir, 'host')
    await cp(path.join(FIXTURES, 'dropins'), root, {recursive: true})
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await writeFile(path.join(root, 'etc/crio/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await writeFile(path.join(lab.dir, 'crioh.asc'), key.publicArmored)
    trustFile = path.join(lab.dir, 'trust.yaml')
    await writeFile(
      trustFile,
      ['version: 1', 'default: reject', 'keys:', `  crioh: {file: crioh.asc, fingerprint: ${key.fingerprint}}`, 'scopes:', ...['global', 'lab'].flatMap((s) => [`  "${lab.registry}/${s}":`, '    policy: signed', '    keys: [crioh]', `    lookaside: ${lab.lookasideUrl}`]), ''].join('\n'),
    )
    crio = await CrioLab.up(path.join(lab.dir, 'crio'), root, {registry: lab.registry, pauseImage: images.pause})
    for (const image of [images.signed, images.unsigned, images.other, images.signed]) {
      const pulled = await crio.pull(image)
      assert.equal(pulled.code, 0, pulled.stderr)
    }
  })

  after(async () => {
    await crio?.down()
    await lab?.stop()
  })

  it('--since 1h --candidate --crio-log: each CRI-O pull judged once, with its count', async () => {
    const log = path.join(crio.stateDir, 'crio.log')
    assert.match(await readFile(log, 'utf8'), /Pulled image: /)
    const result = await imagetrust(['audit', '--root', root, '-c', trustFile, '--candidate', '--no-tls-verify', '--since', '1h', '--crio-log', log, '--json'], crio.env)
    assert.equal(result.code, 0, `${result.stderr}\n${result.stdout}`)
    const report = JSON.parse(result.stdout)
    assertMatchesSchema('audit', report)
    type Pulled = {source: string; reference: string; outcome: string; pulls: number; reason: string}
    const crioPulls = (report.pulled.images as Pulled[]).filter((i) => i.source === 'crio')
    const by = (ref: string) => crioPulls.find((i) => i.reference === ref) ?? assert.fail(`${ref} not in ${JSON.stringify(report.pulled, null, 1)}`)
    assert.deepEqual({outcome: by(images.signed).outcome, pulls: by(images.signed).pulls}, {outcome: 'accepted', pulls: 2})
    assert.equal(by(images.unsigned).outcome, 'refused')
    assert.equal(by(images.other).outcome, 'refused')
    assert.match(by(images.other).reason, /which the policy does not name/)
    assert.equal(crioPulls.length, 3, JSON.stringify(crioPulls))
  })
})
