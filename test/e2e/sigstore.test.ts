/**
 * Native sigstore verification: attachments built from the documented
 * format (Debian's engines can neither sign nor verify sigstore), pushed to
 * a real registry with skopeo, checked by verify --native and audit.
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Lab, imagetrust} from '../support/lab.ts'
import {makeSigstoreKey, pushSigstoreAttachment, registryDigest, signPayload, type SigstoreKeyPair, sigstorePayload} from '../support/sigstore.ts'
import {Store} from '../support/store.ts'

describe('sigstore signatures verified natively', () => {
  let lab: Lab
  let store: Store
  let trusted: SigstoreKeyPair
  let other: SigstoreKeyPair
  let root: string
  let config: string
  const images = {good: '', otherKey: '', modified: '', wrongIdentity: '', unsigned: ''}

  before(async () => {
    lab = await Lab.started('itss-')
    store = await Store.create()
    trusted = makeSigstoreKey('ec')
    other = makeSigstoreKey('ec')
    const acceptAll = path.join(lab.dir, 'accept-all.json')
    await writeFile(acceptAll, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    for (const [name, repo] of Object.entries({good: 'sig/good:1', otherKey: 'sig/other-key:1', modified: 'sig/modified:1', wrongIdentity: 'sig/identity:1', unsigned: 'sig/unsigned:1'})) {
      await lab.buildImage(`localhost/${name.toLowerCase()}:1`, `sigstore ${name}`)
      images[name as keyof typeof images] = await lab.push(`localhost/${name.toLowerCase()}:1`, repo)
    }

    const attach = async (image: string, claims: string, key: SigstoreKeyPair, tamper = false) => {
      const repoAndTag = image.slice(lab.registry.length + 1)
      const digest = await registryDigest(lab.registry, repoAndTag)
      const payload = sigstorePayload(claims, digest)
      const signature = signPayload(key, payload)
      const pushed = tamper ? Buffer.from(payload.toString().replace('"optional":null', '"optional":{"creator":"mallory"}')) : payload
      await pushSigstoreAttachment(lab.dir, lab.registry, repoAndTag.split(':')[0], digest, [{payload: pushed, signature}])
    }

    const repoOf = (image: string) => image.split(':').slice(0, -1).join(':')
    await attach(images.good, repoOf(images.good), trusted)
    await attach(images.otherKey, repoOf(images.otherKey), other)
    await attach(images.modified, repoOf(images.modified), trusted, true)
    await attach(images.wrongIdentity, `${lab.registry}/sig/somewhere-else`, trusted)
    for (const image of Object.values(images)) await store.podman(['pull', '--quiet', '--tls-verify=false', '--signature-policy', acceptAll, image])

    root = path.join(lab.dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await copyFile(path.resolve(import.meta.dirname, '../fixtures/distro/debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
    await writeFile(path.join(lab.dir, 'cosign.pub'), trusted.publicPem)
    config = path.join(lab.dir, 'trust.yaml')
    await writeFile(
      config,
      ['version: 1', 'default: reject', 'keys:', '  cosign: {type: sigstore, file: cosign.pub}', 'scopes:', `  "${lab.registry}/sig":`, '    policy: signed', '    keys: [cosign]', '    identity: matchRepository', '    sigstoreAttachments: true', ''].join('\n'),
    )
  })

  after(async () => {
    await store?.cleanup()
    await lab?.stop()
  })

  async function native(image: string): Promise<{code: number; report: {accepted: boolean; summary: string; signatures: Array<{valid: boolean; reasons: string[]; signer: string}>}}> {
    const result = await imagetrust(['verify', '--native', image, '--root', root, '-c', config, '--no-tls-verify', '--json'])
    return {code: result.code, report: JSON.parse(result.stdout || '{}')}
  }

  it('apply writes the sigstoreSigned scope, warning that this host\'s engines cannot verify it', async () => {
    const result = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /warning: .*sigstoreSigned.*cannot verify sigstore signatures/)
  })

  it('detect reports that this host\'s engines cannot verify sigstore, probed with the engines themselves', async () => {
    const result = await imagetrust(['detect', '--root', root, '--json'])
    assert.equal(result.code, 0, result.stderr)
    const probes = (JSON.parse(result.stdout) as {sigstore: Array<{engine: string; canVerify: boolean | null; detail: string}>}).sigstore
    assert.deepEqual(probes.map((p) => `${p.engine} ${p.canVerify}`).sort(), ['podman false', 'skopeo false'])
    for (const p of probes) assert.match(p.detail, /Debian-local change: sigstore disabled/)
  })

  it('skopeo finds the attachments (they reach sigstore evaluation, which Debian disables); without one it finds none', async () => {
    assert.match((await lab.pull(root, images.good, 'skopeo')).stderr, /Debian-local change: sigstore disabled/)
    assert.match((await lab.pull(root, images.unsigned, 'skopeo')).stderr, /A signature was required, but no signature exists/)
  })

  it('verify --native accepts the valid signature and names the key', async () => {
    const {code, report} = await native(images.good)
    assert.equal(code, 0, JSON.stringify(report))
    assert.equal(report.accepted, true)
    assert.match(report.summary, /^valid sigstore signature by [0-9A-F]{64}$/)
  })

  it('verify --native refuses a signature by another key, a modified payload, a wrong identity and no signature', async () => {
    const otherKey = await native(images.otherKey)
    assert.equal(otherKey.code, 3)
    assert.match(otherKey.report.summary, /no trusted key verifies the signature/)
    const modified = await native(images.modified)
    assert.equal(modified.code, 3)
    assert.match(modified.report.summary, /no trusted key verifies the signature .*payload was changed/)
    const identity = await native(images.wrongIdentity)
    assert.equal(identity.code, 3)
    assert.match(identity.report.summary, /identity mismatch: signed for repository .*sig\/somewhere-else, not .*sig\/identity/)
    const unsigned = await native(images.unsigned)
    assert.equal(unsigned.code, 3)
    assert.match(unsigned.report.summary, /^no sigstore signature at /)
  })

  it('audit judges the same images the same way', async () => {
    const result = await imagetrust(['audit', '--root', root, '-c', config, '--no-tls-verify', '--json', ...store.flags])
    const report = JSON.parse(result.stdout) as {images: Array<{reference: string; outcome: string; reason: string}>; warnings: string[]}
    assert.ok(report.warnings.some((w) => /skopeo 1\.9\.3 cannot verify sigstore signatures/.test(w)), JSON.stringify(report.warnings))
    const outcome = (image: string) => {
      const entry = report.images.find((i) => i.reference === image)
      assert.ok(entry, `${image} missing`)
      return `${entry.outcome}: ${entry.reason}`
    }

    assert.match(outcome(images.good), /^accepted: valid sigstore signature by [0-9A-F]{64}$/)
    assert.match(outcome(images.otherKey), /^refused: .*no trusted key verifies the signature/)
    assert.match(outcome(images.modified), /^refused: .*no trusted key verifies the signature/)
    assert.match(outcome(images.wrongIdentity), /^refused: .*identity mismatch/)
    assert.match(outcome(images.unsigned), /^refused: no sigstore signature at /)
  })
})
