/**
 * Sigstore signatures made the way cosign and containers/image make them,
 * without an engine that can sign (Debian's cannot): a simple-signing
 * payload signed with a PEM private key, laid out as the documented
 * attachment (an OCI manifest tagged sha256-<hex>.sig whose layers are the
 * payloads, each with its dev.cosignproject.cosign/signature annotation),
 * and pushed to the registry with skopeo.
 */
import {createHash, generateKeyPairSync, type KeyObject, sign} from 'node:crypto'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {runIsolated} from './lab.ts'

export interface SigstoreKeyPair {
  privateKey: KeyObject
  publicPem: string
}

export function makeSigstoreKey(type: 'ec' | 'ed25519' | 'rsa' = 'ec'): SigstoreKeyPair {
  const pair =
    type === 'ec' ? generateKeyPairSync('ec', {namedCurve: 'P-256'}) : type === 'rsa' ? generateKeyPairSync('rsa', {modulusLength: 2048}) : generateKeyPairSync('ed25519')
  return {privateKey: pair.privateKey, publicPem: String(pair.publicKey.export({type: 'spki', format: 'pem'}))}
}

export function sigstorePayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(JSON.stringify({critical: {identity: {'docker-reference': dockerReference}, image: {'docker-manifest-digest': digest}, type: 'cosign container image signature'}, optional: null}))
}

export function signPayload(key: SigstoreKeyPair, payload: Buffer): string {
  const algorithm = key.privateKey.asymmetricKeyType === 'ed25519' ? null : 'sha256'
  return sign(algorithm, payload, key.privateKey).toString('base64')
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

/**
 * Pushes an attachment whose layers are `signatures` for the image `repo@digest` on `registry`.
 * `annotations` go beside the signature's: a certificate (dev.sigstore.cosign/certificate) and its chain (dev.sigstore.cosign/chain).
 */
export async function pushSigstoreAttachment(workDir: string, registry: string, repo: string, digest: string, signatures: Array<{payload: Buffer; signature: string; annotations?: Record<string, string>}>): Promise<void> {
  const dir = await mkdtemp(path.join(workDir, 'sigstore-oci-'))
  try {
    await mkdir(path.join(dir, 'blobs/sha256'), {recursive: true})
    const blob = async (bytes: Buffer) => {
      await writeFile(path.join(dir, 'blobs/sha256', sha(bytes)), bytes)
      return {digest: `sha256:${sha(bytes)}`, size: bytes.length}
    }

    const layers = []
    for (const s of signatures) layers.push({mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', ...(await blob(s.payload)), annotations: {'dev.cosignproject.cosign/signature': s.signature, ...s.annotations}})
    const config = await blob(Buffer.from(JSON.stringify({architecture: '', os: '', config: {}, rootfs: {type: 'layers', diff_ids: layers.map((l) => l.digest)}})))
    const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config}, layers}))
    const written = await blob(manifest)
    await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
    await writeFile(path.join(dir, 'index.json'), JSON.stringify({schemaVersion: 2, manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', ...written, annotations: {'org.opencontainers.image.ref.name': 'sig'}}]}))
    const policy = path.join(dir, 'policy.json')
    await writeFile(policy, '{"default":[{"type":"insecureAcceptAnything"}]}')
    const tag = `${digest.replace(':', '-')}.sig`
    const result = await runIsolated('skopeo', ['--policy', policy, 'copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${dir}:sig`, `docker://${registry}/${repo}:${tag}`])
    if (result.code !== 0) throw new Error(`skopeo could not push the attachment: ${result.stderr}`)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

/** The manifest digest the registry serves for repo:tag. */
export async function registryDigest(registry: string, repoAndTag: string): Promise<string> {
  const [repo, tag] = repoAndTag.split(':')
  const response = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, {headers: {accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'}})
  if (!response.ok) throw new Error(`no manifest for ${repoAndTag}: HTTP ${response.status}`)
  return `sha256:${sha(Buffer.from(await response.arrayBuffer()))}`
}
