import {createHash, generateKeyPairSync, sign} from 'node:crypto'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {runTool} from '../exec/run-tool.js'
import {detectEngines, type EngineInfo} from '../host/detect.js'
import type {HostRoot} from '../host/paths.js'
import type {TrustFile} from '../trustfile/types.js'

/**
 * Can this host's engines verify sigstore signatures? Debian's
 * containers/image parses sigstoreSigned but refuses every image under it
 * ("Debian-local change: sigstore disabled"), and no version number says so.
 * So we ask the engine itself: a throw-away `dir:` image carrying a valid
 * sigstore signature (made here with a throw-away key) is copied by skopeo,
 * and pulled by podman into a throw-away store, under a throw-away policy
 * that demands that signature. Accepted means it verifies. The answer is
 * cached per engine path and version in the state directory.
 */
export interface SigstoreProbe {
  engine: 'skopeo' | 'podman'
  path: string
  version: string
  /** null: the probe itself failed for another reason (see detail). */
  canVerify: boolean | null
  detail: string
  probedAt: string
}

const CACHE_FILE = 'sigstore-probe.json'
const IDENTITY = 'probe.imagetrust.invalid/probe:1'

function cachePath(root: HostRoot): string {
  return root.resolve(path.posix.join(root.layout.stateDir, CACHE_FILE))
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

/** A dir: image (one empty layer) with one sigstore signature in containers/image's on-disk format, and a policy demanding it. */
async function buildProbe(dir: string): Promise<{image: string; policy: string}> {
  const image = path.join(dir, 'image')
  await mkdir(image)
  const blob = async (bytes: Buffer) => {
    await writeFile(path.join(image, sha(bytes)), bytes)
    return {digest: `sha256:${sha(bytes)}`, size: bytes.length}
  }

  const layer = await blob(Buffer.alloc(1024))
  const config = await blob(Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', config: {}, rootfs: {type: 'layers', diff_ids: [layer.digest]}})))
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config},
      layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer}],
    }),
  )
  await writeFile(path.join(image, 'manifest.json'), manifest)
  await writeFile(path.join(image, 'version'), 'Directory Transport Version: 1.1\n')
  const {privateKey, publicKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
  const payload = Buffer.from(JSON.stringify({critical: {identity: {'docker-reference': IDENTITY}, image: {'docker-manifest-digest': `sha256:${sha(manifest)}`}, type: 'cosign container image signature'}, optional: null}))
  const signature = sign('sha256', payload, privateKey).toString('base64')
  const stored = JSON.stringify({mimeType: 'application/vnd.dev.cosign.simplesigning.v1+json', payload: payload.toString('base64'), annotations: {'dev.cosignproject.cosign/signature': signature}})
  // internal/signature: a 0x00 byte, the format name and a newline, then the JSON.
  await writeFile(path.join(image, 'signature-1'), Buffer.concat([Buffer.from([0]), Buffer.from('sigstore-json\n'), Buffer.from(stored)]))
  const key = path.join(dir, 'probe.pub')
  await writeFile(key, String(publicKey.export({type: 'spki', format: 'pem'})))
  const policy = path.join(dir, 'policy.json')
  await writeFile(
    policy,
    JSON.stringify({default: [{type: 'reject'}], transports: {dir: {'': [{type: 'sigstoreSigned', keyPath: key, signedIdentity: {type: 'exactReference', dockerReference: IDENTITY}}]}}}),
  )
  return {image, policy}
}

async function probeEngine(engine: EngineInfo & {name: 'skopeo' | 'podman'}): Promise<SigstoreProbe> {
  // podman refuses a runroot longer than 50 characters: keep the path short.
  const dir = await mkdtemp('/tmp/itsp-')
  const base = {engine: engine.name, path: engine.path, version: engine.version, probedAt: new Date().toISOString()}
  try {
    const {image, policy} = await buildProbe(dir)
    const args =
      engine.name === 'skopeo'
        ? ['--policy', policy, 'copy', '--quiet', `dir:${image}`, `dir:${path.join(dir, 'out')}`]
        : ['--root', path.join(dir, 'r'), '--runroot', path.join(dir, 'rr'), '--tmpdir', path.join(dir, 't'), '--storage-driver', 'vfs', '--events-backend', 'file', 'pull', '--quiet', '--signature-policy', policy, `dir:${image}`]
    const result = await runTool(engine.path, args, {allowFailure: true, timeoutMs: 60_000})
    if (result.exitCode === 0) return {...base, canVerify: true, detail: 'a valid sigstore signature was accepted'}
    const said = (result.stderr.trim() || result.stdout.trim()).split('\n').at(-1) ?? ''
    // Only a refusal about sigstore itself counts; anything else means the probe did not get that far.
    if (/sigstore[^"]*(disabled|not supported|not implemented)/i.test(said)) return {...base, canVerify: false, detail: `a valid sigstore signature was refused: ${said}`}
    return {...base, canVerify: null, detail: `the probe failed for another reason: ${said}`}
  } catch (error) {
    return {...base, canVerify: null, detail: `the probe failed: ${(error as Error).message}`}
  } finally {
    // Its own --tmpdir, and no `podman system reset`: the host's /run/libpod is never touched.
    await rm(dir, {recursive: true, force: true})
  }
}

async function readCache(root: HostRoot): Promise<SigstoreProbe[]> {
  try {
    const value = JSON.parse(await readFile(cachePath(root), 'utf8')) as {version?: number; probes?: SigstoreProbe[]}
    return value.version === 1 && Array.isArray(value.probes) ? value.probes : []
  } catch {
    return []
  }
}

/** The probe for each installed skopeo and podman: cached when path and version match, else run (and cached). */
export async function sigstoreSupport(root: HostRoot, options: {engines?: EngineInfo[]; refresh?: boolean} = {}): Promise<SigstoreProbe[]> {
  const engines = (options.engines ?? (await detectEngines())).filter((e): e is EngineInfo & {name: 'skopeo' | 'podman'} => e.name === 'skopeo' || e.name === 'podman')
  const cached = options.refresh ? [] : await readCache(root)
  let changed = false
  const out = await Promise.all(
    engines.map(async (engine) => {
      const hit = cached.find((c) => c.engine === engine.name && c.path === engine.path && c.version === engine.version && c.canVerify !== null)
      if (hit) return hit
      changed = true
      return probeEngine(engine)
    }),
  )
  if (changed) {
    try {
      await mkdir(path.dirname(cachePath(root)), {recursive: true})
      await writeFile(cachePath(root), JSON.stringify({version: 1, probes: out}, null, 2) + '\n')
    } catch {}
  }

  return out
}

/** The trust file's scopes that become sigstoreSigned: those using a sigstore key. */
export function sigstoreScopes(trust: TrustFile): string[] {
  const sigstoreKeys = new Set(trust.keys.filter((k) => k.type === 'sigstore').map((k) => k.name))
  return trust.scopes.filter((s) => s.keys.some((k) => sigstoreKeys.has(k))).map((s) => s.scope)
}

/** apply's warning, before writing: sigstoreSigned scopes that an engine here cannot verify. */
export async function unverifiableSigstoreWarnings(root: HostRoot, trust: TrustFile, engines?: Promise<EngineInfo[]>): Promise<string[]> {
  const scopes = sigstoreScopes(trust)
  if (scopes.length === 0) return []
  const refusing = (await sigstoreSupport(root, {engines: await engines})).filter((p) => p.canVerify === false)
  if (refusing.length === 0) return []
  return [
    `the sigstoreSigned scope(s) ${scopes.map((s) => `"${s}"`).join(', ')} will refuse every image here: ${refusing.map((p) => `${p.engine} ${p.version}`).join(' and ')} cannot verify sigstore signatures (${refusing[0].detail}). imagetrust verify --native and audit check them natively.`,
  ]
}
