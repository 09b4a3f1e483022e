/**
 * verify --native against a registry and lookaside that attack it: one node
 * http server on 127.0.0.1, started here and closed at the end, whose routes
 * each test sets. Bodies that never end, a token response that never ends, a
 * body that trickles, slow signatures one after another, malformed sigstore
 * attachment manifests and a compression bomb must each end fast, with a
 * plain reason and the documented exit code, never a raw exception.
 */
import assert from 'node:assert/strict'
import {createHash, generateKeyPairSync} from 'node:crypto'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {after, before, beforeEach, describe, it} from 'node:test'
import {createDeflateRaw} from 'node:zlib'

import {imagetrust, REPO_ROOT, runIsolated} from '../support/lab.ts'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

const MANIFEST = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}')
const DIGEST = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`
const ZEROS = Buffer.alloc(64 * 1024)

/** Writes zeros until the client goes away. */
const endless: Handler = (req, res) => {
  res.writeHead(200, {'content-type': 'application/octet-stream'})
  const pump = () => {
    while (!res.destroyed && res.write(ZEROS));
  }

  res.on('drain', pump)
  pump()
}

/** One byte a second, forever. */
const trickle: Handler = (req, res) => {
  res.writeHead(200)
  const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write('x')), 1000)
  res.on('close', () => clearInterval(timer))
}

const send = (body: string | Buffer, status = 200, headers: Record<string, string> = {}): Handler => (req, res) => {
  res.writeHead(status, headers)
  res.end(body)
}

/**
 * An OpenPGP compressed-data packet (ZIP) whose content is one literal data
 * packet of `size` zero bytes: a few hundred KB on the wire.
 */
async function compressionBomb(size: number): Promise<Buffer> {
  const literalHeader = Buffer.from([0xcb, 0xff, 0, 0, 0, 0, 0x62, 0, 0, 0, 0, 0])
  literalHeader.writeUInt32BE(size + 6, 2)
  const deflate = createDeflateRaw({level: 9})
  const chunks: Buffer[] = []
  deflate.on('data', (c: Buffer) => chunks.push(c))
  const done = new Promise((resolve) => deflate.on('end', resolve))
  deflate.write(literalHeader)
  const zeros = Buffer.alloc(16 * 1024 * 1024)
  for (let left = size; left > 0; left -= zeros.length) {
    if (!deflate.write(zeros.subarray(0, Math.min(zeros.length, left)))) await new Promise((resolve) => deflate.once('drain', resolve))
  }

  deflate.end()
  await done
  const body = Buffer.concat([Buffer.from([1]), ...chunks])
  const header = Buffer.from([0xc8, 0xff, 0, 0, 0, 0])
  header.writeUInt32BE(body.length, 2)
  return Buffer.concat([header, body])
}

describe('verify --native against a hostile registry and lookaside', () => {
  let dir: string
  let root: string
  let server: Server
  let host: string
  let routes: Map<string, Handler>
  const sigDir = () => `/sigs/gpg/app@${DIGEST.replace(':', '=')}`

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ithost-'))
    server = createServer((req, res) => (routes.get(req.url ?? '') ?? send('not found', 404))(req, res))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    host = `127.0.0.1:${(server.address() as {port: number}).port}`
    root = path.join(dir, 'root')
    await mkdir(path.join(root, 'etc/containers/registries.d'), {recursive: true})
    await mkdir(path.join(root, 'etc/pki/containers'), {recursive: true})
    const pem = generateKeyPairSync('ec', {namedCurve: 'P-256'}).publicKey.export({type: 'spki', format: 'pem'})
    await writeFile(path.join(root, 'etc/pki/containers/c.pub'), pem)
    const openpgp = await import('openpgp')
    const {publicKey} = await openpgp.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name: 'hostile test'}], format: 'armored'})
    await writeFile(path.join(root, 'etc/pki/containers/k.gpg'), publicKey)
    const docker = {
      [`${host}/gpg`]: [{type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/containers/k.gpg'}],
      [`${host}/cosign`]: [{type: 'sigstoreSigned', keyPath: '/etc/pki/containers/c.pub', signedIdentity: {type: 'matchRepository'}}],
    }
    await writeFile(path.join(root, 'etc/containers/policy.json'), JSON.stringify({default: [{type: 'reject'}], transports: {docker}}))
    await writeFile(path.join(root, 'etc/containers/registries.d/hostile.yaml'), `docker:\n  ${host}:\n    lookaside: http://${host}/sigs\n    use-sigstore-attachments: true\n`)
  })

  after(async () => {
    server?.closeAllConnections()
    await new Promise((resolve) => server?.close(resolve))
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  beforeEach(() => {
    routes = new Map([
      ['/v2/gpg/app/manifests/1', send(MANIFEST)],
      ['/v2/cosign/app/manifests/1', send(MANIFEST)],
    ])
  })

  async function native(repo: 'gpg' | 'cosign', timeout = 20): Promise<{code: number; summary: string; seconds: number; stderr: string}> {
    const started = Date.now()
    const result = await imagetrust(['verify', '--native', `${host}/${repo}/app:1`, '--root', root, '--no-tls-verify', '--json', '--timeout', String(timeout)], undefined, {timeoutMs: 60_000})
    const seconds = (Date.now() - started) / 1000
    const parsed = JSON.parse(result.stdout || '{}') as {summary?: string; error?: {message: string}}
    return {code: result.code, summary: parsed.summary ?? parsed.error?.message ?? '', seconds, stderr: result.stderr}
  }

  const ATTACHMENTS: Array<[string, string]> = [
    ['{"layers": 5}', /"layers" is number, not an array/.source],
    ['[null]', /the attachment manifest is an array, not a JSON object/.source],
    ['{"layers": [', /the attachment manifest is not JSON/.source],
    ['{"layers": [5]}', /layers\[0\] is number, not an object/.source],
    ['{"layers": [{"mediaType": 7}]}', /layers\[0\]\.mediaType is number, not a string/.source],
    ['{"layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": "sha256:00", "annotations": 3}]}', /annotations is number, not an object/.source],
  ]
  for (const [body, reason] of ATTACHMENTS) {
    it(`a sigstore attachment manifest ${body} is refused with a plain reason (exit 3), never a TypeError`, async () => {
      routes.set(`/v2/cosign/app/manifests/${DIGEST.replace(':', '-')}.sig`, send(body, 200, {'content-type': 'application/vnd.oci.image.manifest.v1+json'}))
      const {code, summary, stderr} = await native('cosign')
      assert.doesNotMatch(`${summary}${stderr}`, /TypeError|SyntaxError|Cannot read properties/)
      assert.match(summary, new RegExp(reason))
      assert.equal(code, 3, summary)
    })
  }

  it('a manifest that never ends stops at 4 MiB, naming the limit (exit 4)', async () => {
    routes.set('/v2/gpg/app/manifests/1', endless)
    const {code, summary, seconds} = await native('gpg')
    assert.match(summary, /the manifest .* is larger than 4 MiB .*MaxManifestBodySize/)
    assert.equal(code, 4, summary)
    assert.ok(seconds < 15, `took ${seconds} s`)
  })

  it('a manifest whose Content-Length is over the limit is refused before it is read (exit 4)', async () => {
    routes.set('/v2/gpg/app/manifests/1', (req, res) => {
      res.writeHead(200, {'content-length': String(100 * 1024 * 1024)})
      res.write(ZEROS)
    })
    const {code, summary} = await native('gpg')
    assert.match(summary, /larger than 4 MiB \(Content-Length 104857600\).*MaxManifestBodySize/)
    assert.equal(code, 4, summary)
  })

  it('a token response that never ends stops at 1 MiB, naming the limit (exit 4)', async () => {
    routes.set('/v2/gpg/app/manifests/1', send('{}', 401, {'www-authenticate': `Bearer realm="http://${host}/token",service="hostile"`}))
    routes.set('/token?service=hostile&scope=repository%3Agpg%2Fapp%3Apull', endless)
    const {code, summary} = await native('gpg')
    assert.match(summary, /the token response for .* is larger than 1 MiB .*MaxAuthTokenBodySize/)
    assert.equal(code, 4, summary)
  })

  it('a signature that never ends stops at 4 MiB, naming the limit (exit 4)', async () => {
    routes.set(`${sigDir()}/signature-1`, endless)
    const {code, summary} = await native('gpg')
    assert.match(summary, /the signature from .*signature-1 is larger than 4 MiB .*MaxSignatureBodySize/)
    assert.equal(code, 4, summary)
  })

  it('a sigstore attachment manifest and payload blob that never end stop at 4 MiB (exit 4)', async () => {
    const tag = `/v2/cosign/app/manifests/${DIGEST.replace(':', '-')}.sig`
    routes.set(tag, endless)
    const manifest = await native('cosign')
    assert.match(manifest.summary, /the manifest .* is larger than 4 MiB .*MaxManifestBodySize/)
    assert.equal(manifest.code, 4, manifest.summary)
    const blob = `sha256:${'0'.repeat(64)}`
    routes.set(tag, send(JSON.stringify({schemaVersion: 2, layers: [{mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: blob, size: 1, annotations: {'dev.cosignproject.cosign/signature': 'AA=='}}]})))
    routes.set(`/v2/cosign/app/blobs/${blob}`, endless)
    const payload = await native('cosign')
    assert.match(payload.summary, /the blob .* is larger than 4 MiB .*MaxSignatureBodySize/)
    assert.equal(payload.code, 4, payload.summary)
  })

  it('a signature that trickles one byte a second is inconclusive at the deadline (exit 4, not 1)', async () => {
    routes.set(`${sigDir()}/signature-1`, trickle)
    const {code, summary, seconds} = await native('gpg', 3)
    assert.match(summary, /inconclusive: the lookaside did not finish sending .*signature-1 within the 3 s deadline \(--timeout\)/)
    assert.equal(code, 4, summary)
    assert.ok(seconds < 10, `took ${seconds} s`)
  })

  it('one deadline covers every signature fetch: 128 slow signatures end at --timeout, not 128 × the delay', async () => {
    for (let i = 1; i <= 128; i++) routes.set(`${sigDir()}/signature-${i}`, (req, res) => setTimeout(() => send('not a signature')(req, res), 250))
    const {code, summary, seconds} = await native('gpg', 3)
    assert.match(summary, /within the 3 s deadline/)
    assert.equal(code, 4, summary)
    assert.ok(seconds < 10, `took ${seconds} s`)
  })

  it('128 signatures or more: containers/image calls that a server error and fails the pull, so it is never judged valid (exit 4)', async () => {
    for (let i = 1; i <= 129; i++) routes.set(`${sigDir()}/signature-${i}`, send('not a signature'))
    const {code, summary} = await native('gpg')
    assert.match(summary, /inconclusive: the lookaside serves 128 signatures or more .*fails the pull/)
    assert.equal(code, 4, summary)
  })

  it('audit: an image whose signature trickles is unknown at its own deadline, and the next image gets a fresh one', async () => {
    const {policyView} = await import('../../src/audit/policy-view.ts')
    const {judgeContext, judgeImage} = await import('../../src/audit/judge.ts')
    const {HostRoot} = await import('../../src/host/paths.ts')
    const {deadline} = await import('../../src/registry/limits.ts')
    const {pulledReference} = await import('../../src/verify/identity.ts')
    routes.set(`${sigDir()}/signature-1`, trickle)
    const view = await policyView(new HostRoot(root), {})
    const shared = judgeContext(new HostRoot(root), view, {tlsVerify: false, budget: deadline(2)})
    const ref = pulledReference(`${host}/gpg/app:1`) as Exclude<ReturnType<typeof pulledReference>, string>
    const started = Date.now()
    const first = await judgeImage({...shared, gpgSignatures: new Map()}, view.podman.policy, {ref, digest: DIGEST})
    assert.equal(first.outcome, 'unknown')
    assert.match(first.reason, /within the 2 s deadline \(--timeout\)/)
    // As runAudit does per image: a new budget; the first image's spent one does not carry over.
    routes.set(`${sigDir()}/signature-1`, send('not a signature'))
    const second = await judgeImage({...shared, gpgSignatures: new Map(), registry: {tlsVerify: false, budget: deadline(2)}}, view.podman.policy, {ref, digest: DIGEST})
    assert.equal(second.outcome, 'refused', second.reason)
    assert.ok((Date.now() - started) / 1000 < 8)
  })

  it('a compression bomb (1 GiB of zeros in a small signature) is refused fast with bounded memory', async () => {
    const bomb = await compressionBomb(1024 * 1024 * 1024)
    assert.ok(bomb.length < 2 * 1024 * 1024, `the bomb is ${bomb.length} bytes`)
    routes.set(`${sigDir()}/signature-1`, send(bomb))
    const started = Date.now()
    const args = [path.join(REPO_ROOT, 'bin/run.js'), 'verify', '--native', `${host}/gpg/app:1`, '--root', root, '--no-tls-verify', '--json']
    const result = await runIsolated('/usr/bin/time', ['-f', 'MAXRSS_KB %M', process.execPath, ...args], {timeoutMs: 60_000})
    const seconds = (Date.now() - started) / 1000
    const summary = (JSON.parse(result.stdout) as {summary: string}).summary
    assert.match(summary, /decompresses to more than 4 MiB \(the signature size limit\)/)
    assert.equal(result.code, 3, summary)
    const maxRss = Number(/MAXRSS_KB (\d+)/.exec(result.stderr)?.[1]) / 1024
    assert.ok(maxRss < 400, `used ${maxRss} MiB`)
    assert.ok(seconds < 15, `took ${seconds} s`)
  })
})
