/**
 * Sigstore for real: the lab's skopeo 1.23 (containers/image 5.40) makes a
 * key pair and signs on push (attachments in the loopback registry);
 * imagetrust applies a trust file with that key and a second one (built with
 * node:crypto, its signatures laid out by test/support/sigstore.ts), and
 * every engine in the lab that verifies sigstore judges the same images:
 * skopeo 1.23, the 5.38 and 5.40 oracles, and CRI-O 1.36. verify --native
 * and audit must say what they say. The host's engines are the lab's (a PATH
 * without Debian's podman and skopeo), so the scope's two keys become one
 * keyPaths requirement; with Debian's engines the same trust file is refused.
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, readdir, readFile, symlink, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {CrioLab} from '../support/crio-lab.ts'
import {Lab, imagetrust, mustRun, runIsolated} from '../support/lab.ts'
import {ORACLE_VERSIONS, type OracleVersion, labBin, oracleBin} from '../support/lab-bin.ts'
import {makeSigstoreKey, pushSigstoreAttachment, registryDigest, signPayload, type SigstoreKeyPair, sigstorePayload} from '../support/sigstore.ts'
import {Store} from '../support/store.ts'

type Case = 'skopeoSigned' | 'nodeSigned' | 'otherKey' | 'modified' | 'wrongIdentity' | 'unsigned'
const EXPECTED: Record<Case, boolean> = {skopeoSigned: true, nodeSigned: true, otherKey: false, modified: false, wrongIdentity: false, unsigned: false}
const CASES = Object.keys(EXPECTED) as Case[]

describe('sigstore for real (skopeo 1.23 signs; skopeo 1.23, the 5.38/5.40 oracles and CRI-O verify)', {timeout: 600_000}, () => {
  let lab: Lab
  let store: Store
  let crio: CrioLab | undefined
  let skopeo: string
  let root: string
  let config: string
  let hostPath: string
  const images = {} as Record<Case, string>

  before(async () => {
    lab = await Lab.started('itsl-')
    store = await Store.create()
    skopeo = await labBin('skopeo')
    const trusted = await skopeoKey('trusted')
    const other = await skopeoKey('other')
    const nodeKey = makeSigstoreKey('ec')
    for (const name of CASES) {
      await lab.buildImage(`localhost/${name.toLowerCase()}:1`, `sigstore-lab ${name}`)
      images[name] = await lab.push(`localhost/${name.toLowerCase()}:1`, `sig/${name.toLowerCase()}-base:1`)
    }

    images.skopeoSigned = await signedCopy(images.skopeoSigned, 'sig/skopeo-signed:1', trusted)
    images.otherKey = await signedCopy(images.otherKey, 'sig/other-key:1', other)
    await attach(images.nodeSigned, nodeKey)
    await attach(images.modified, nodeKey, {tamper: true})
    await attach(images.wrongIdentity, nodeKey, {identity: `${lab.registry}/sig/somewhere-else`})
    root = path.join(lab.dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await copyFile(path.resolve(import.meta.dirname, '../fixtures/distro/debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
    await writeFile(path.join(lab.dir, 'node.pub'), nodeKey.publicPem)
    config = path.join(lab.dir, 'trust.yaml')
    const scope = ['    policy: signed', '    keys: [skopeo, node]', '    identity: matchRepository', '    sigstoreAttachments: true']
    await writeFile(config, ['version: 1', 'default: reject', 'keys:', `  skopeo: {type: sigstore, file: ${trusted}}`, '  node: {type: sigstore, file: node.pub}', 'scopes:', `  "${lab.registry}/sig":`, ...scope, ''].join('\n'))
    hostPath = await hostWithLabEngines()
  })

  after(async () => {
    await crio?.down()
    await store?.cleanup()
    await lab?.stop()
  })

  /** A sigstore key pair made by skopeo itself; returns the public key's path. */
  async function skopeoKey(name: string): Promise<string> {
    const prefix = path.join(lab.dir, `sigstore-${name}`)
    await writeFile(`${prefix}.pass`, 'lab passphrase\n')
    await mustRun(skopeo, ['generate-sigstore-key', '--output-prefix', prefix, '--passphrase-file', `${prefix}.pass`])
    return `${prefix}.pub`
  }

  /** skopeo 1.23 copies an image in the registry, signing it with a sigstore private key (an attachment). */
  async function signedCopy(source: string, repoAndTag: string, publicKey: string): Promise<string> {
    const prefix = publicKey.replace(/\.pub$/, '')
    const regd = path.join(lab.dir, 'signing-registries.d')
    await mkdir(regd, {recursive: true})
    await writeFile(path.join(regd, 'lab.yaml'), `docker:\n  "${lab.registry}":\n    use-sigstore-attachments: true\n`)
    await writeFile(path.join(lab.dir, 'accept.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    const dest = `${lab.registry}/${repoAndTag}`
    const result = await runIsolated(skopeo, [
      '--policy', path.join(lab.dir, 'accept.json'), '--registries.d', regd, 'copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false',
      '--sign-by-sigstore-private-key', `${prefix}.private`, '--sign-passphrase-file', `${prefix}.pass`, `docker://${source}`, `docker://${dest}`,
    ])
    assert.equal(result.code, 0, `skopeo could not sign ${dest}: ${result.stderr}`)
    return dest
  }

  async function attach(image: string, key: SigstoreKeyPair, options: {tamper?: boolean; identity?: string} = {}): Promise<void> {
    const repoAndTag = image.slice(lab.registry.length + 1)
    const digest = await registryDigest(lab.registry, repoAndTag)
    const payload = sigstorePayload(options.identity ?? image.split(':').slice(0, -1).join(':'), digest)
    const signature = signPayload(key, payload)
    const pushed = options.tamper ? Buffer.from(payload.toString().replace('"optional":null', '"optional":{"creator":"mallory"}')) : payload
    await pushSigstoreAttachment(lab.dir, lab.registry, repoAndTag.split(':')[0], digest, [{payload: pushed, signature}])
  }

  /** A PATH on which the host's engines are the lab's CRI-O and skopeo: Debian's podman and skopeo are left out. */
  async function hostWithLabEngines(): Promise<string> {
    const bin = path.join(lab.dir, 'host-bin')
    await mkdir(bin)
    const hidden = new Set(['podman', 'skopeo', 'buildah', 'crio', 'crictl'])
    for (const dir of ['/usr/local/bin', '/usr/bin', '/usr/sbin']) {
      for (const name of await readdir(dir)) {
        if (!hidden.has(name)) await symlink(path.join(dir, name), path.join(bin, name)).catch(() => undefined)
      }
    }

    for (const tool of ['skopeo', 'crio', 'crictl']) await symlink(await labBin(tool), path.join(bin, tool))
    return bin
  }

  const onLabHost = () => ({...process.env, PATH: hostPath})

  /** Each engine's verdicts on every case. */
  async function skopeoVerdicts(): Promise<Record<Case, boolean>> {
    const out = {} as Record<Case, boolean>
    for (const name of CASES) {
      const result = await lab.inSandbox(root, [skopeo, 'copy', '--quiet', '--src-tls-verify=false', `docker://${images[name]}`, `dir:${path.join(lab.dir, `pulled-${name}-${Date.now()}`)}`])
      if (result.code !== 0) assert.match(result.stderr, /Source image rejected|rejected by policy/, `${name}: ${result.stderr}`)
      out[name] = result.code === 0
    }

    return out
  }

  async function oracleVerdicts(version: OracleVersion): Promise<Record<Case, boolean>> {
    const out = {} as Record<Case, boolean>
    for (const name of CASES) {
      const result = await lab.inSandbox(root, [await oracleBin(version), `docker://${images[name]}`])
      const answer = JSON.parse(result.stdout) as {allowed?: boolean; reason?: string; policyError?: string}
      assert.equal(answer.policyError, undefined)
      assert.notEqual(answer.allowed, undefined, `${version} ${name}: ${result.stdout}`)
      out[name] = answer.allowed === true
    }

    return out
  }

  it('with Debian\'s engines (containers/image 5.23) two sigstore keys on one scope are refused, naming the version needed', async () => {
    const result = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(result.code, 1)
    assert.match(result.stderr, /accepts only one sigstore key per scope \(keyPaths needs 5\.33\)/)
  })

  it('detect says that this host\'s engine CAN verify sigstore signatures, and apply writes one keyPaths requirement without a warning', async () => {
    const detect = await imagetrust(['detect', '--root', root, '--json'], onLabHost())
    assert.equal(detect.code, 0, detect.stderr)
    const probes = (JSON.parse(detect.stdout) as {sigstore: Array<{engine: string; path: string; canVerify: boolean | null}>}).sigstore
    assert.deepEqual(probes.map((p) => [p.engine, p.canVerify]), [['skopeo', true]], detect.stdout)
    const applied = await imagetrust(['apply', '--root', root, '-c', config], onLabHost())
    assert.equal(applied.code, 0, applied.stderr)
    assert.doesNotMatch(applied.stderr, /cannot verify sigstore/)
    const policy = JSON.parse(await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8'))
    const requirements = policy.transports.docker[`${lab.registry}/sig`]
    assert.equal(requirements.length, 1)
    assert.deepEqual(requirements[0].keyPaths.map((p: string) => path.basename(p)).sort(), ['node.pub', 'skopeo.pub'])
  })

  it('skopeo 1.23 accepts the images signed by either trusted key and refuses another key, a changed payload, a wrong identity and no signature', async () => {
    assert.deepEqual(await skopeoVerdicts(), EXPECTED)
  })

  for (const version of ORACLE_VERSIONS.filter((v) => v === '5.38' || v === '5.40')) {
    it(`the ${version} oracle judges every case the same way`, async () => {
      assert.deepEqual(await oracleVerdicts(version), EXPECTED)
    })
  }

  it('CRI-O 1.36 judges every case the same way', async () => {
    crio = await CrioLab.up(path.join(lab.dir, 'crio'), root, {registry: lab.registry, pauseImage: `${lab.registry}/none:0`})
    const verdicts = {} as Record<Case, boolean>
    for (const name of CASES) {
      const result = await crio.pull(images[name])
      if (result.code !== 0) assert.match(result.stderr, /Source image rejected|rejected by policy/, `${name}: ${result.stderr}`)
      verdicts[name] = result.code === 0
    }

    assert.deepEqual(verdicts, EXPECTED)
  })

  it('verify --native agrees with the engines on every case', async () => {
    const verdicts = {} as Record<Case, boolean>
    for (const name of CASES) {
      const result = await imagetrust(['verify', '--native', images[name], '--root', root, '-c', config, '--no-tls-verify', '--json'], onLabHost())
      assert.ok(result.code === 0 || result.code === 3, `${name}: exit ${result.code} ${result.stderr}`)
      verdicts[name] = result.code === 0
    }

    assert.deepEqual(verdicts, EXPECTED)
  })

  it('audit agrees with the engines on every case', async () => {
    const acceptAll = path.join(lab.dir, 'accept.json')
    for (const name of CASES) await store.podman(['pull', '--quiet', '--tls-verify=false', '--signature-policy', acceptAll, images[name]])
    const result = await imagetrust(['audit', '--root', root, '-c', config, '--no-tls-verify', '--json', ...store.flags])
    const report = JSON.parse(result.stdout) as {images: Array<{reference: string; outcome: string; reason: string}>}
    const verdicts = {} as Record<Case, boolean>
    for (const name of CASES) {
      const entry = report.images.find((i) => i.reference === images[name])
      assert.ok(entry && entry.outcome !== 'unknown', `${name}: ${JSON.stringify(entry)}`)
      verdicts[name] = entry.outcome === 'accepted'
    }

    assert.deepEqual(verdicts, EXPECTED)
  })
})
