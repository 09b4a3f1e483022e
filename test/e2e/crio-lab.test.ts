/**
 * CRI-O for real: the lab's CRI-O 1.36 (containers/image 5.38) runs in a
 * private mount namespace reading a sandbox host root's /etc/containers,
 * /etc/crio and /etc/pki; imagetrust configures that root with --root, and
 * crictl pulls through the running CRI-O. Images are GPG-signed by real
 * `podman push --sign-by` into a loopback registry and lookaside.
 */
import assert from 'node:assert/strict'
import {cp, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {CrioLab} from '../support/crio-lab.ts'
import {type GpgKey, Lab, POLICY_REJECTION, imagetrust} from '../support/lab.ts'
import {builtWithContainersImage, labBin} from '../support/lab-bin.ts'
import {assertMatchesSchema} from '../support/schema.ts'

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/crio')

describe('CRI-O for real (the lab CRI-O 1.36, crictl, a sandbox host root)', {timeout: 600_000}, () => {
  let lab: Lab
  let crio: CrioLab
  let key: GpgKey
  let root: string
  let trustFile: string
  const images = {signed: '', unsigned: '', other: '', prodSigned: '', prodUnsigned: '', pause: ''}

  before(async () => {
    lab = await Lab.started('itcr-')
    // RSA: CRI-O built with containers_image_openpgp reads keys with golang.org/x/crypto/openpgp, which has no EdDSA.
    key = await lab.makeGpgKey('crio', {keyType: 'rsa'})
    const other = await lab.makeGpgKey('other', {keyType: 'rsa'})
    // Distinct images (digests) per repository, so that CRI-O's storage keeps them apart.
    await lab.buildRunnableImage('localhost/run:1', 'crio-lab signed')
    await lab.buildRunnableImage('localhost/run:2', 'crio-lab unsigned')
    await lab.buildImage('localhost/hello:1', 'crio-lab other')
    await lab.buildImage('localhost/hello:2', 'crio-lab prod')
    await lab.buildImage('localhost/hello:3', 'crio-lab prod unsigned')
    await lab.buildImageFromFiles('localhost/pause:1', {[await labBin('pause')]: '/pause'})
    images.signed = await lab.push('localhost/run:1', 'global/app:1', key)
    images.unsigned = await lab.push('localhost/run:2', 'global/unsigned:1')
    images.other = await lab.push('localhost/hello:1', 'global/other:1', other)
    images.prodSigned = await lab.push('localhost/hello:2', 'prod/app:1', key)
    images.prodUnsigned = await lab.push('localhost/hello:3', 'prod/unsigned:1')
    images.pause = await lab.push('localhost/pause:1', 'lab/pause:1', key)
    root = path.join(lab.dir, 'host')
    await cp(path.join(FIXTURES, 'dropins'), root, {recursive: true})
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    // The policy crio.conf.d names does not exist yet: CRI-O would refuse every pull, so start it accepting.
    await writeFile(path.join(root, 'etc/crio/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await writeFile(path.join(lab.dir, 'crio.asc'), key.publicArmored)
    trustFile = await writeTrust()
    crio = await CrioLab.up(path.join(lab.dir, 'crio'), root, {registry: lab.registry, pauseImage: images.pause})
  })

  after(async () => {
    await crio?.down()
    await lab?.stop()
  })

  async function writeTrust(): Promise<string> {
    const file = path.join(lab.dir, 'trust.yaml')
    const signed = (scope: string, test: string[] = []) => [`  "${lab.registry}/${scope}":`, '    policy: signed', '    keys: [crio]', `    lookaside: ${lab.lookasideUrl}`, ...test]
    const lines = [
      'version: 1',
      'default: reject',
      'keys:',
      `  crio: {file: crio.asc, fingerprint: ${key.fingerprint}}`,
      'scopes:',
      ...signed('global', ['    test:', `      signed: ${images.signed}`, `      unsigned: ${images.unsigned}`]),
      ...signed('prod'),
      ...signed('lab'),
      'crio:',
      '  namespaces:',
      '    prod:',
      `      scopes: ["${lab.registry}/prod"]`,
      '',
    ]
    await writeFile(file, lines.join('\n'))
    return file
  }

  /** A refusal for this reason, by the policy (a missing key file or a broken lab would say something else). */
  function refusedFor(result: {code: number; stderr: string}, reason: RegExp): boolean {
    assert.notEqual(result.code, 0, 'the pull was accepted')
    assert.match(result.stderr, POLICY_REJECTION)
    assert.match(result.stderr, reason)
    return true
  }

  const NO_SIGNATURE = /A signature was required, but no signature exists/
  const OTHER_KEY = /Key not found for key ID [\da-f]+ in signature/
  const REJECTED_BY_DEFAULT = /Running image docker:\/\/\S+ is rejected by policy/

  it('detect finds this CRI-O, its version, its containers/image and the config it really uses', async () => {
    const result = await imagetrust(['detect', '--root', root, '--json'], crio.env)
    assert.equal(result.code, 0, result.stderr)
    const report = JSON.parse(result.stdout)
    assertMatchesSchema('detect', report)
    const engine = report.engines.find((e: {name: string}) => e.name === 'crio')
    assert.equal(engine.version, '1.36.3')
    assert.equal(engine.goOpenPgp, true)
    assert.equal(report.capabilities.noEdDsaKeys, 'crio 1.36.3')
    // The table's answer is the version the binary was really built with.
    assert.equal(`v${engine.containersImage}.0`, await builtWithContainersImage(await labBin('crio')))
    assert.equal(report.crio.signaturePolicy, '/etc/crio/policy.json')
    assert.equal(report.crio.signaturePolicyDir, '/etc/crio/namespaced')
    assert.equal(report.crio.effectivePolicy, '/etc/crio/policy.json')
  })

  it('audit --candidate reads crictl images and a running pod container, and flags the one the candidate policy refuses (exit 3)', async () => {
    // Before apply, the host accepts anything: both images run.
    await crio.runContainer('good', 'default', images.signed, ['/bin/sleep', '600'])
    await crio.runContainer('bad', 'default', images.unsigned, ['/bin/sleep', '600'])
    const result = await imagetrust(['audit', '--root', root, '-c', trustFile, '--candidate', '--json'], crio.env)
    assert.equal(result.code, 3, `${result.stderr}\n${result.stdout}`)
    const report = JSON.parse(result.stdout)
    assertMatchesSchema('audit', report)
    type Judged = {source: string; reference: string; outcome: string; running: boolean; containers: Array<{name: string}>}
    const judged = (reference: string) => (report.images as Judged[]).find((i) => i.source === 'crictl' && i.reference === reference)
    assert.deepEqual(
      [judged(images.unsigned), judged(images.signed)].map((i) => i && {outcome: i.outcome, running: i.running, containers: i.containers.map((c) => c.name)}),
      [
        {outcome: 'refused', running: true, containers: ['bad']},
        {outcome: 'accepted', running: true, containers: ['good']},
      ],
      JSON.stringify(report.images, null, 1),
    )
    assert.ok(report.summary.runningRefused >= 1)
  })

  it('after apply, crictl accepts the signed image and refuses the unsigned one and another key, with no restart', async () => {
    // CRI-O has been running since before apply, accepting anything.
    assert.equal((await crio.pull(images.other)).code, 0)
    await crio.mustCrictl(['rmi', images.other])
    const applied = await imagetrust(['apply', '--root', root, '-c', trustFile], crio.env)
    assert.equal(applied.code, 0, applied.stderr)
    const signed = await crio.pull(images.signed)
    assert.equal(signed.code, 0, signed.stderr)
    assert.ok(refusedFor(await crio.pull(images.unsigned), NO_SIGNATURE))
    assert.ok(refusedFor(await crio.pull(images.other), OTHER_KEY))
    assert.equal((await crio.policyPathsUsed()).at(-1), '/etc/crio/policy.json')
  })

  it("per namespace: prod follows prod's policy file, default follows the global one (CRI-O's log names the file)", async () => {
    const prodSigned = await crio.pull(images.prodSigned, 'prod')
    assert.equal(prodSigned.code, 0, prodSigned.stderr)
    assert.equal((await crio.policyPathsUsed()).at(-1), '/etc/crio/namespaced/prod.json')
    assert.ok(refusedFor(await crio.pull(images.prodUnsigned, 'prod'), NO_SIGNATURE))
    // Outside prod, the prod scope is not in the global policy: default reject.
    await crio.mustCrictl(['rmi', images.prodSigned])
    assert.ok(refusedFor(await crio.pull(images.prodSigned, 'default'), REJECTED_BY_DEFAULT))
    assert.equal((await crio.policyPathsUsed()).at(-1), '/etc/crio/policy.json')
    assert.equal((await crio.pull(images.signed, 'default')).code, 0)
  })

  it('verify --engine crictl confirms enforcement', async () => {
    const result = await imagetrust(['verify', '--root', root, '-c', trustFile, '--engine', 'crictl', '--json'], crio.env)
    assert.equal(result.code, 0, `${result.stderr}\n${result.stdout}`)
    const report = JSON.parse(result.stdout)
    assertMatchesSchema('verify', report)
    assert.deepEqual(report.results.map((r: {engine: string; outcome: string}) => [r.engine, r.outcome]), [['crictl', 'confirmed'], ['crictl', 'confirmed']])
  })

  it('check reports a namespace policy edited by hand as drift', async () => {
    assert.equal((await imagetrust(['check', '--root', root, '-c', trustFile], crio.env)).code, 0)
    const file = path.join(root, 'etc/crio/namespaced/prod.json')
    const policy = JSON.parse(await readFile(file, 'utf8'))
    policy.transports.docker[`${lab.registry}/prod`] = [{type: 'insecureAcceptAnything'}]
    await writeFile(file, JSON.stringify(policy, null, 2))
    // CRI-O itself now accepts the unsigned prod image: the edit is real.
    assert.equal((await crio.pull(images.prodUnsigned, 'prod')).code, 0)
    const result = await imagetrust(['check', '--root', root, '-c', trustFile, '--json'], crio.env)
    assert.equal(result.code, 2, result.stderr)
    assertMatchesSchema('check', JSON.parse(result.stdout))
    assert.ok(JSON.parse(result.stdout).drift.some((d: {path: string}) => d.path === file), result.stdout)
    assert.equal((await imagetrust(['apply', '--root', root, '-c', trustFile], crio.env)).code, 0)
  })

  it("an EdDSA key: CRI-O (built with containers_image_openpgp) refuses its signatures, and apply says so before writing", async () => {
    const edKey = await lab.makeGpgKey('eddsa')
    await lab.buildImage('localhost/hello:4', 'crio-lab eddsa')
    const image = await lab.push('localhost/hello:4', 'ed/app:1', edKey)
    await writeFile(path.join(lab.dir, 'ed.asc'), edKey.publicArmored)
    const config = path.join(lab.dir, 'trust-ed.yaml')
    await writeFile(config, (await readFile(trustFile, 'utf8')).replace('keys:\n', `keys:\n  ed: {file: ed.asc, fingerprint: ${edKey.fingerprint}}\n`).replace('scopes:\n', `scopes:\n  "${lab.registry}/ed":\n    policy: signed\n    keys: [ed]\n    lookaside: ${lab.lookasideUrl}\n`))
    const applied = await imagetrust(['apply', '--root', root, '-c', config], crio.env)
    assert.equal(applied.code, 0, applied.stderr)
    assert.match(applied.stderr, /key "ed" \([0-9A-F]+\) is an EdDSA key .*crio 1\.36\.3 was built with containers_image_openpgp/)
    // The engine agrees: x/crypto/openpgp cannot read the key, so the signature never verifies.
    assert.ok(refusedFor(await crio.pull(image), /tag byte does not have MSB set|unsupported public key algorithm/))
    // verify --native says what CRI-O does, not what a gpgme engine would.
    const native = await imagetrust(['verify', '--native', image, '--root', root, '-c', config, '--no-tls-verify', '--json'], crio.env)
    assert.equal(native.code, 3, `${native.stderr}\n${native.stdout}`)
    assert.match(native.stdout, /EdDSA key [0-9A-F]+, which crio 1\.36\.3 \(built with containers_image_openpgp\) cannot read/)
    // The same key does not warn where no engine says it was built that way.
    const plain = await imagetrust(['apply', '--root', root, '-c', config, '--dry-run'])
    assert.doesNotMatch(plain.stderr, /EdDSA/)
    assert.equal((await imagetrust(['apply', '--root', root, '-c', trustFile], crio.env)).code, 0)
  })

  it('verify --engine crictl reports NOT ENFORCED when the policy is loosened by hand', async () => {
    const file = path.join(root, 'etc/crio/policy.json')
    const policy = JSON.parse(await readFile(file, 'utf8'))
    policy.transports.docker[`${lab.registry}/global`] = [{type: 'insecureAcceptAnything'}]
    await writeFile(file, JSON.stringify(policy, null, 2))
    const result = await imagetrust(['verify', '--root', root, '-c', trustFile, '--engine', 'crictl', '--json'], crio.env)
    assert.equal(result.code, 3, `${result.stderr}\n${result.stdout}`)
    const outcomes = JSON.parse(result.stdout).results.map((r: {expect: string; outcome: string}) => [r.expect, r.outcome])
    assert.deepEqual(outcomes, [['accept', 'confirmed'], ['reject', 'NOT ENFORCED']])
  })
})
