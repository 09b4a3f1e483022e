/**
 * The signing side, closed loop, with a real registry, real gpg, real podman
 * and skopeo: key create → apply on the signing host → podman push --sign-by
 * into the staging directory apply configured → publish → lookaside serve →
 * verify --signed → a pulling host set up by apply from the same trust file
 * accepts the signed image and rejects an unsigned one. The signing host is
 * the one whose hostname is in signer.hosts: its apply runs in a UTS namespace
 * named so; the pulling host's apply runs with this machine's own hostname.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {chmod, mkdir, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {parseDocument} from 'yaml'

import {freePort, type GpgKey, Lab, REPO_ROOT, imagetrust, mustRun, run} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

const SIGNER_HOST = 'it-signer'
const STAGING = '/var/lib/containers/sigstore-staging'
const BIN = path.join(REPO_ROOT, 'bin/run.js')


/** imagetrust on the signing host: a UTS namespace whose hostname is the signer's (apply --root writes only below the root). */
function asSigner(args: string[]) {
  return run('unshare', ['-u', 'sh', '-c', `hostname ${SIGNER_HOST} && exec "$@"`, 'signer', process.execPath, BIN, ...args])
}

describe('the signing side, from key create to an enforcing pull', () => {
  let lab: Lab
  let gnupgHome: string
  let fingerprint = ''
  let webRoot: string
  let signingRoot: string
  let trustPath: string
  let server: ChildProcess | undefined
  let port = 0
  let signedImage = ''
  let unsignedImage = ''
  const homes: string[] = []

  before(async () => {
    lab = await Lab.create('imagetrust-sign-')
    await lab.startRegistry()
    port = await freePort()
    gnupgHome = path.join(lab.dir, 'signer-gnupg')
    homes.push(gnupgHome)
    webRoot = path.join(lab.dir, 'web')
    signingRoot = path.join(lab.dir, 'signing-root')
    await mkdir(webRoot)
    await mkdir(signingRoot)
    trustPath = path.join(lab.dir, 'trust', 'trust.yaml')
    await mkdir(path.dirname(trustPath))
    await lab.buildImage('localhost/tiny:1', 'signing chain')
    unsignedImage = await lab.push('localhost/tiny:1', 'apps/unsigned:1')
  })

  after(async () => {
    if (server?.pid && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve))
      process.kill(server.pid, 'SIGTERM')
      await exited
    }

    for (const home of homes) await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'])
    await lab?.stop()
  })

  it('1. key create makes a signing key whose primary key signs, and pins its public half in the trust file', async () => {
    const created = await imagetrust(['key', 'create', 'release', '--gnupg-home', gnupgHome, '-c', trustPath, '--scope', `${lab.registry}/apps`, '--json'])
    assert.equal(created.code, 0, created.stderr)
    const result = JSON.parse(created.stdout)
    fingerprint = result.fingerprint
    assert.match(fingerprint, /^[0-9A-F]{40}$/)
    assert.equal(result.algorithm, 'ed25519')
    // gpg's own view: the primary key has the signing capability, and there is no subkey.
    const listing = (await mustRun('gpg', ['--homedir', gnupgHome, '--batch', '--with-colons', '--list-secret-keys', fingerprint])).stdout
    assert.match(listing.split('\n').find((l) => l.startsWith('sec:'))!.split(':')[11], /s/)
    assert.doesNotMatch(listing, /^ssb:/m)
    const trust = parseDocument(await readFile(trustPath, 'utf8')).toJS()
    assert.deepEqual(trust.keys.release, {type: 'gpg', file: 'keys/release.asc', fingerprint})
    assert.deepEqual(trust.scopes[`${lab.registry}/apps`], {policy: 'signed', keys: ['release']})
    assert.doesNotMatch(await readFile(path.join(path.dirname(trustPath), 'keys/release.asc'), 'utf8'), /PRIVATE/)

    // The signing host's part, and what pulling hosts need: the default, the lookaside, the staging.
    const doc = parseDocument(await readFile(trustPath, 'utf8'))
    doc.set('default', 'reject')
    doc.set('signer', doc.createNode({fingerprint, gnupgHome, hosts: [SIGNER_HOST]}))
    doc.setIn(['scopes', `${lab.registry}/apps`, 'lookaside'], `http://127.0.0.1:${port}`)
    doc.setIn(['scopes', `${lab.registry}/apps`, 'lookasideStaging'], `file://${STAGING}`)
    await writeFile(trustPath, doc.toString())
  })

  it('1b. apply on the signing host checks the key, writes lookaside-staging and creates the staging directory', async () => {
    const applied = await asSigner(['apply', '--root', signingRoot, '-c', trustPath, '--json'])
    assert.equal(applied.code, 0, applied.stderr)
    const result = JSON.parse(applied.stdout)
    assert.equal(result.signer.fingerprint, fingerprint)
    assert.equal(result.signer.testSigned, true)
    assert.deepEqual(result.signer.staging, [{scope: `${lab.registry}/apps`, path: path.join(signingRoot, STAGING), created: true}])
    const regd = await readFile(path.join(signingRoot, 'etc/containers/registries.d/imagetrust.yaml'), 'utf8')
    assert.match(regd, new RegExp(`lookaside-staging: file://${STAGING}`))
    assert.match(regd, new RegExp(`lookaside: http://127.0.0.1:${port}`))
    assert.equal((await stat(path.join(signingRoot, STAGING))).mode & 0o777, 0o755)
    // Idempotent, the staging directory included.
    const again = JSON.parse((await asSigner(['apply', '--root', signingRoot, '-c', trustPath, '--json'])).stdout)
    assert.equal(again.changed, false)
  })

  it('2. podman push --sign-by writes its signature to the staging directory apply configured', async () => {
    const store = path.join(lab.dir, 'podman')
    const staging = path.join(signingRoot, STAGING)
    signedImage = `${lab.registry}/apps/signed:1`
    // The signing host as podman sees it: /etc/containers from the signing root, the staging path mounted where registries.d says.
    const script = [
      'set -e',
      `mkdir -p ${STAGING}`,
      `mount --bind ${staging} ${STAGING}`,
      `export GNUPGHOME=${gnupgHome}`,
      `exec podman --root ${store}/root --runroot ${store}/run --tmpdir ${store}/tmp --storage-driver vfs --events-backend file --cgroup-manager cgroupfs push --quiet --tls-verify=false --sign-by ${fingerprint} localhost/tiny:1 docker://${signedImage}`,
    ].join('\n')
    const pushed = await lab.inSandbox(signingRoot, ['sh', '-c', script])
    assert.equal(pushed.code, 0, pushed.stderr)
    const repoDir = path.join(staging, 'apps/signed')
    const digests = (await readdir(path.dirname(repoDir))).filter((d) => d.startsWith('signed@sha256='))
    assert.equal(digests.length, 1)
    assert.deepEqual(await readdir(path.join(staging, 'apps', digests[0])), ['signature-1'])
  })

  it('3-5. verify --signed names a staged but unpublished signature; publish copies it; lookaside serve serves it; verify --signed confirms', async () => {
    server = spawn(process.execPath, [BIN, 'lookaside', 'serve', '--dir', webRoot, '--listen', `127.0.0.1:${port}`], {stdio: ['ignore', 'pipe', 'inherit']})
    await new Promise<void>((resolve, reject) => {
      server!.stdout!.once('data', (chunk: Buffer) => (/listening on/.test(chunk.toString()) ? resolve() : reject(new Error(String(chunk)))))
      server!.once('exit', (code) => reject(new Error(`lookaside serve exited with ${code}`)))
    })

    const before = await imagetrust(['verify', '--signed', signedImage, '--root', signingRoot, '-c', trustPath, '--no-tls-verify', '--json'])
    assert.equal(before.code, 3, before.stderr)
    const unpublished = JSON.parse(before.stdout)
    assert.equal(unpublished.staged, 1)
    assert.match(unpublished.summary, /1 signature file\(s\) are staged .* but not served; run imagetrust publish/)

    const published = await imagetrust(['publish', '--root', signingRoot, '-c', trustPath, '--to', webRoot, '--json'])
    assert.equal(published.code, 0, published.stderr)
    const copied = JSON.parse(published.stdout).copied
    assert.equal(copied.length, 1)
    assert.match(copied[0], /^apps\/signed@sha256=[0-9a-f]{64}\/signature-1$/)

    const served = await fetch(`http://127.0.0.1:${port}/${copied[0]}`)
    assert.equal(served.status, 200)
    assert.deepEqual(Buffer.from(await served.arrayBuffer()), await readFile(path.join(webRoot, copied[0])))

    const verified = await imagetrust(['verify', '--signed', signedImage, '--root', signingRoot, '-c', trustPath, '--no-tls-verify', '--json'])
    assert.equal(verified.code, 0, verified.stdout + verified.stderr)
    const report = JSON.parse(verified.stdout)
    assert.equal(report.accepted, true)
    assert.equal(report.lookaside, `http://127.0.0.1:${port}`)
    assert.deepEqual(report.signer, {fingerprint, signed: true})
    assert.equal(report.signatures[0].identity.verdict, 'match')
    // The unsigned image is not confirmed.
    assert.equal((await imagetrust(['verify', '--signed', unsignedImage, '--root', signingRoot, '-c', trustPath, '--no-tls-verify'])).code, 3)
  })

  it('6. a pulling host set up from the same trust file accepts the signed image and rejects the unsigned one (skopeo and podman)', async () => {
    const pullRoot = path.join(lab.dir, 'pull-root')
    await mkdir(pullRoot)
    // This machine's hostname is not in signer.hosts: a pulling host, no key check, no staging.
    assert.notEqual(os.hostname(), SIGNER_HOST)
    const applied = await imagetrust(['apply', '--root', pullRoot, '-c', trustPath, '--json'])
    assert.equal(applied.code, 0, applied.stderr)
    assert.equal(JSON.parse(applied.stdout).signer, undefined)
    const regd = await readFile(path.join(pullRoot, 'etc/containers/registries.d/imagetrust.yaml'), 'utf8')
    assert.doesNotMatch(regd, /staging/)
    await assert.rejects(stat(path.join(pullRoot, STAGING)))
    for (const engine of ['skopeo', 'podman'] as const) {
      const good = await lab.pull(pullRoot, signedImage, engine)
      assert.equal(good.code, 0, `${engine} refused the signed image: ${good.stderr}`)
      const bad = await lab.pull(pullRoot, unsignedImage, engine)
      assert.notEqual(bad.code, 0, `${engine} accepted the unsigned image`)
      assert.match(bad.stderr, /A signature was required, but no signature exists/)
    }
  })

  it('a passphrase-protected signing key: apply applies, says it did not test-sign, and never asks for the passphrase', async () => {
    const home = path.join(lab.dir, 'protected-gnupg')
    homes.push(home)
    const config = path.join(lab.dir, 'protected', 'trust.yaml')
    await mkdir(path.dirname(config))
    await writeFile(path.join(lab.dir, 'passphrase'), 'correct horse')
    const created = await imagetrust(['key', 'create', 'guarded', '--gnupg-home', home, '-c', config, '--scope', `${lab.registry}/apps`, '--passphrase-file', path.join(lab.dir, 'passphrase'), '--json'])
    assert.equal(created.code, 0, created.stderr)
    const {fingerprint: guarded} = JSON.parse(created.stdout)
    // A fresh agent: no passphrase cached from key creation.
    await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'])
    const doc = parseDocument(await readFile(config, 'utf8'))
    doc.set('signer', doc.createNode({fingerprint: guarded, gnupgHome: home}))
    doc.setIn(['scopes', `${lab.registry}/apps`, 'lookaside'], `http://127.0.0.1:${port}`)
    doc.setIn(['scopes', `${lab.registry}/apps`, 'lookasideStaging'], `file://${STAGING}`)
    await writeFile(config, doc.toString())
    const root = path.join(lab.dir, 'protected-root')
    const applied = await asSigner(['apply', '--root', root, '-c', config, '--json'])
    assert.equal(applied.code, 0, applied.stderr)
    assert.equal(JSON.parse(applied.stdout).signer.testSigned, false)
    assert.match(applied.stderr, new RegExp(`the private key ${guarded} is protected by a passphrase, so apply did not test-sign with it`))
  })

  describe('apply refuses a signer whose private key is missing or is not the trusted key, and writes nothing', () => {
    let other: GpgKey

    before(async () => {
      other = await lab.makeGpgKey('other')
      homes.push(other.home)
    })

    async function refused(name: string, edit: (doc: ReturnType<typeof parseDocument>) => void, message: RegExp, prepare?: (root: string) => Promise<void>): Promise<void> {
      const doc = parseDocument(await readFile(trustPath, 'utf8'))
      edit(doc)
      const file = path.join(path.dirname(trustPath), `${name}.yaml`)
      await writeFile(file, doc.toString())
      const root = path.join(lab.dir, `root-${name}`)
      await mkdir(root)
      await prepare?.(root)
      const before = await hashTree(root)
      const applied = await asSigner(['apply', '--root', root, '-c', file])
      assert.equal(applied.code, 1, applied.stdout)
      assert.match(applied.stderr, message)
      assert.match(applied.stderr, new RegExp(`${file}:\\d+`), 'the error names the trust file and line')
      const json = JSON.parse((await asSigner(['apply', '--root', root, '-c', file, '--json'])).stdout)
      assert.match(json.error.message, message)
      assert.deepEqual(await hashTree(root), before, 'something was written')
    }

    it('no private key in the keyring (which holds another key)', async () => {
      await refused('missing', (doc) => doc.setIn(['signer', 'gnupgHome'], other.home), new RegExp(`no private key for the signer's key ${fingerprint} in ${other.home}; the trusted key is ${fingerprint}\\. The keyring holds private keys ${other.fingerprint}`))
    })

    it('the private key is not the key the pulling scopes trust (unpinned, so only apply can tell)', async () => {
      await refused(
        'mismatch',
        (doc) => {
          doc.deleteIn(['keys', 'release', 'fingerprint'])
          doc.setIn(['signer', 'fingerprint'], other.fingerprint)
          doc.setIn(['signer', 'gnupgHome'], other.home)
        },
        new RegExp(`the signer's key ${other.fingerprint} is not the key that scope "${lab.registry}/apps" trusts \\(${fingerprint}\\)`),
      )
    })

    it('a key that signs only with a subkey, on engines before containers/image 5.37', async (t) => {
      const version = (await run('podman', ['--version'])).stdout
      const [major, minor] = (/(\d+)\.(\d+)/.exec(version) ?? ['', '99', '0']).slice(1).map(Number)
      if (major > 5 || (major === 5 && minor >= 7)) return t.skip(`podman ${major}.${minor} accepts subkey signatures`)
      const sub = await lab.makeGpgKey('sub', {keyType: 'subkey-signing'})
      homes.push(sub.home)
      await refused(
        'subkey',
        (doc) => {
          doc.setIn(['keys', 'sub'], doc.createNode({type: 'gpg', data: sub.publicArmored}))
          doc.setIn(['scopes', `${lab.registry}/apps`, 'keys'], doc.createNode(['sub']))
          doc.setIn(['signer', 'fingerprint'], sub.fingerprint)
          doc.setIn(['signer', 'gnupgHome'], sub.home)
        },
        new RegExp(`the signer's key ${sub.fingerprint} signs only with subkey [0-9A-F]{40}; containers/image 5\\.\\d+ .* rejects subkey signatures`),
      )
    })

    it('a staging directory that others can write to', async () => {
      await refused('open-staging', () => undefined, /staging directory .* is writable by everyone \(mode 777\)/, async (root) => {
        await mkdir(path.join(root, STAGING), {recursive: true})
        await chmod(path.join(root, STAGING), 0o777)
      })
    })

    it('a pinned mismatch is refused as the trust file is read', async () => {
      await refused('pinned', (doc) => doc.setIn(['signer', 'fingerprint'], other.fingerprint), new RegExp(`signer key ${other.fingerprint} is not a key that scope "${lab.registry}/apps" trusts \\(${fingerprint}\\)`))
    })
  })
})
