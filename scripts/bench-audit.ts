/**
 * The audit part of `npm run bench`: 100 distinct images in a loopback
 * registry (pushed through the registry API, one shared layer), each with a
 * GPG simple-signing signature in the lookaside, pulled into a throw-away
 * podman store with one `podman pull --all-tags`; then `imagetrust audit`
 * of that store against a default: reject policy that trusts the key.
 */
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {Lab, runIsolated} from '../test/support/lab.ts'

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

async function putBlob(registry: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${sha(bytes)}`
  const start = await fetch(`http://${registry}/v2/${repo}/blobs/uploads/`, {method: 'POST'})
  const location = new URL(start.headers.get('location')!, `http://${registry}`)
  location.searchParams.set('digest', digest)
  const done = await fetch(location, {method: 'PUT', body: new Uint8Array(bytes), headers: {'content-type': 'application/octet-stream'}})
  if (done.status !== 201) throw new Error(`blob upload failed: HTTP ${done.status}`)
  return digest
}

/** A ustar archive holding one regular file. */
function tarWithOneFile(name: string, content: string): Buffer {
  const header = Buffer.alloc(512)
  const body = Buffer.from(content)
  header.write(name, 0)
  header.write('0000644\0', 100)
  header.write('0000000\0', 108)
  header.write('0000000\0', 116)
  header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124)
  header.write('00000000000\0', 136)
  header.write('        ', 148)
  header.write('0', 156)
  header.write('ustar\0' + '00', 257)
  let sum = 0
  for (const byte of header) sum += byte
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148)
  const padded = Buffer.alloc(Math.ceil(body.length / 512) * 512)
  body.copy(padded)
  return Buffer.concat([header, padded, Buffer.alloc(1024)])
}

export interface AuditBench {
  images: number
  /** Run `imagetrust audit` with these arguments (exit 0 expected). */
  args: string[]
  /** The same audit as a command line for spawnSync, in a private mount namespace whose /etc and /var/lib are overlays. */
  command(cli: string): [string, string[]]
  /** `podman images` of the same store, for comparison: most of audit's time is podman's own. */
  podmanImages: [string, string[]]
  cleanup(): Promise<void>
}

export async function setupAuditBench(n = 100): Promise<AuditBench> {
  const lab = await Lab.started('itb-')
  const store = await mkdtemp('/tmp/itb-')
  const podman = ['--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), '--tmpdir', path.join(store, 'tmp'), '--storage-driver', 'vfs', '--events-backend', 'file', '--cgroup-manager', 'cgroupfs']
  try {
    const key = await lab.makeGpgKey('bench')
    const openpgp = await import('openpgp')
    const signingKey = await openpgp.readPrivateKey({armoredKey: (key as unknown as {secretArmored: string}).secretArmored})
    const repo = 'bench/app'
    for (let i = 0; i < n; i++) {
      // A layer of its own per image, as real images have (identical layers make podman images crawl).
      const layer = tarWithOneFile('hello.txt', `bench ${i}\n`)
      const layerDigest = await putBlob(lab.registry, repo, layer)
      const config = Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', config: {Labels: {bench: String(i)}}, rootfs: {type: 'layers', diff_ids: [layerDigest]}}))
      const configDigest = await putBlob(lab.registry, repo, config)
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length},
          layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length}],
        }),
      )
      const put = await fetch(`http://${lab.registry}/v2/${repo}/manifests/t${i}`, {method: 'PUT', body: new Uint8Array(manifest), headers: {'content-type': 'application/vnd.oci.image.manifest.v1+json'}})
      if (put.status !== 201) throw new Error(`manifest upload failed: HTTP ${put.status}`)
      const digest = `sha256:${sha(manifest)}`
      const payload = JSON.stringify({critical: {identity: {'docker-reference': `${lab.registry}/${repo}:t${i}`}, image: {'docker-manifest-digest': digest}, type: 'atomic container signature'}, optional: {creator: 'imagetrust bench'}})
      const signed = await openpgp.sign({message: await openpgp.createMessage({binary: new TextEncoder().encode(payload)}), signingKeys: signingKey, format: 'binary'})
      const dir = path.join(lab.stagingDir, `${repo}@${digest.replace(':', '=')}`)
      await mkdir(dir, {recursive: true})
      await writeFile(path.join(dir, 'signature-1'), signed as Uint8Array)
    }

    const acceptAll = path.join(lab.dir, 'accept-all.json')
    await writeFile(acceptAll, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    // podman 4.3 lists the tags over HTTPS whatever --tls-verify says: mark the registry insecure.
    const registries = path.join(lab.dir, 'registries.conf')
    await writeFile(registries, `[[registry]]\nlocation = "${lab.registry}"\ninsecure = true\n`)
    const pulled = await runIsolated('podman', [...podman, 'pull', '--quiet', '--all-tags', '--tls-verify=false', '--signature-policy', acceptAll, `${lab.registry}/${repo}`], {
      env: {...process.env, CONTAINERS_REGISTRIES_CONF: registries},
    })
    if (pulled.code !== 0) throw new Error(`podman pull --all-tags failed: ${pulled.stderr}`)
    const root = path.join(lab.dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await writeFile(path.join(lab.dir, 'bench.asc'), key.publicArmored)
    const config = path.join(lab.dir, 'trust.yaml')
    await writeFile(config, ['version: 1', 'default: reject', 'keys:', `  bench: {file: bench.asc, fingerprint: ${key.fingerprint}}`, 'scopes:', `  "${lab.registry}/bench":`, '    policy: signed', '    keys: [bench]', `    lookaside: ${lab.lookasideUrl}`, ''].join('\n'))
    const layer = await mkdtemp('/tmp/itb-layer-')
    const isolated = (cmd: string[]): [string, string[]] => {
      const overlays = ['/etc', '/var/lib'].map((dir, i) => `mkdir -p ${layer}/u${i} ${layer}/w${i} && mount -t overlay overlay -o lowerdir=${dir},upperdir=${layer}/u${i},workdir=${layer}/w${i} ${dir}`)
      return ['unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${overlays.join(' && ')} && exec "$@"`, 'bench', ...cmd]]
    }

    const args = ['audit', '--candidate', '--no-tls-verify', '--root', root, '-c', config, '--storage-root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), '--storage-driver', 'vfs', '--json']
    return {
      images: n,
      args,
      command: (cli) => isolated([process.execPath, cli, ...args]),
      podmanImages: isolated(['podman', ...podman, 'images', '--format', 'json']),
      async cleanup() {
        await runIsolated('podman', [...podman, 'system', 'reset', '--force']).catch(() => undefined)
        await rm(store, {recursive: true, force: true})
        await rm(layer, {recursive: true, force: true})
        await lab.stop()
      },
    }
  } catch (error) {
    await rm(store, {recursive: true, force: true})
    await lab.stop()
    throw error
  }
}
