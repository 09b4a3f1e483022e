import {findOnPath} from '../host/detect.js'
import {runTool} from '../exec/run-tool.js'

/**
 * What is in local image storage and what is running, read (never changed)
 * through podman and, where present, crictl. A throw-away or non-default
 * podman store is named with --storage-root/--runroot/--storage-driver,
 * passed through to podman as --root/--runroot/--storage-driver; podman also
 * honours CONTAINERS_STORAGE_CONF as usual.
 */
export interface StorageOptions {
  storageRoot?: string
  runroot?: string
  storageDriver?: string
  /** Read crictl too when it is installed (default true). */
  crictl?: boolean
}

export interface LocalImage {
  source: 'podman' | 'crictl'
  id: string
  /** repo:tag names. */
  names: string[]
  /** repo@digest, one per repository it was pulled from or pushed to. */
  repoDigests: string[]
}

export interface RunningContainer {
  source: 'podman' | 'crictl'
  id: string
  name: string
  /** The image name the container was started from (or an image ID). */
  image: string
  imageId: string
  /** Kubernetes namespace (CRI-O). */
  namespace?: string
}

export interface StorageListing {
  images: LocalImage[]
  containers: RunningContainer[]
  warnings: string[]
}

function podmanGlobal(options: StorageOptions): string[] {
  return [
    ...(options.storageRoot ? ['--root', options.storageRoot] : []),
    ...(options.runroot ? ['--runroot', options.runroot] : []),
    ...(options.storageDriver ? ['--storage-driver', options.storageDriver] : []),
  ]
}

const normalizeId = (id: string) => id.replace(/^sha256:/, '')

async function readPodman(options: StorageOptions): Promise<StorageListing> {
  const global = podmanGlobal(options)
  const [images, ps] = await Promise.all([
    runTool('podman', [...global, 'images', '--format', 'json']),
    runTool('podman', [...global, 'ps', '--format', 'json']),
  ])
  const imageList = (JSON.parse(images.stdout || '[]') as Array<{Id: string; Names?: string[] | null; RepoDigests?: string[] | null}>).map((i) => ({
    source: 'podman' as const,
    id: normalizeId(i.Id),
    names: i.Names ?? [],
    repoDigests: i.RepoDigests ?? [],
  }))
  const containers = (JSON.parse(ps.stdout || '[]') as Array<{Id: string; Names?: string[]; Image: string; ImageID: string; State?: string}>)
    .filter((c) => (c.State ?? 'running') === 'running')
    .map((c) => ({source: 'podman' as const, id: c.Id, name: c.Names?.[0] ?? c.Id.slice(0, 12), image: c.Image, imageId: normalizeId(c.ImageID)}))
  return {images: imageList, containers, warnings: []}
}

type CriImage = {id: string; repoTags?: string[]; repoDigests?: string[]}
type CriContainer = {id: string; podSandboxId?: string; metadata?: {name?: string}; image?: {image?: string}; imageRef?: string; imageId?: string; state?: string; labels?: Record<string, string>}
type CriPod = {id: string; metadata?: {namespace?: string}}

/**
 * The image a CRI container runs. CRI-O 1.36 reports its ID in imageId and a
 * repo digest (repo@sha256:…, not an ID) in imageRef; older ones only imageRef,
 * which may be either.
 */
function criImageId(container: CriContainer, images: CriImage[]): string {
  if (container.imageId) return normalizeId(container.imageId)
  const ref = container.imageRef ?? container.image?.image ?? ''
  const byDigest = images.find((i) => i.repoDigests?.includes(ref) || i.repoTags?.includes(ref))
  return normalizeId(byDigest?.id ?? ref)
}

async function readCrictl(): Promise<StorageListing> {
  const json = async <T>(args: string[]) => JSON.parse((await runTool('crictl', [...args, '-o', 'json'], {timeoutMs: 30_000})).stdout || '{}') as T
  const [images, ps, pods] = await Promise.all([json<{images?: CriImage[]}>(['images']), json<{containers?: CriContainer[]}>(['ps']), json<{items?: CriPod[]}>(['pods'])])
  const imageList = (images.images ?? []).map((i) => ({source: 'crictl' as const, id: normalizeId(i.id), names: i.repoTags ?? [], repoDigests: i.repoDigests ?? []}))
  // A container's Kubernetes namespace: its label when kubelet set one, else its pod's.
  const podNamespace = new Map((pods.items ?? []).map((p) => [p.id, p.metadata?.namespace]))
  const containers = (ps.containers ?? [])
    .filter((c) => (c.state ?? 'CONTAINER_RUNNING') === 'CONTAINER_RUNNING')
    .map((c) => ({
      source: 'crictl' as const,
      id: c.id,
      name: c.metadata?.name ?? c.id.slice(0, 12),
      image: c.image?.image ?? c.imageRef ?? '',
      imageId: criImageId(c, images.images ?? []),
      namespace: c.labels?.['io.kubernetes.pod.namespace'] ?? (c.podSandboxId ? podNamespace.get(c.podSandboxId) : undefined),
    }))
  return {images: imageList, containers, warnings: []}
}

export async function listStorage(options: StorageOptions): Promise<StorageListing> {
  const out: StorageListing = {images: [], containers: [], warnings: []}
  const readers: Array<[string, () => Promise<StorageListing>]> = []
  if (await findOnPath('podman')) readers.push(['podman', () => readPodman(options)])
  if (options.crictl !== false && (await findOnPath('crictl'))) readers.push(['crictl', readCrictl])
  if (readers.length === 0) out.warnings.push('neither podman nor crictl is installed: no local images to audit')
  for (const [name, read] of readers) {
    try {
      const listing = await read()
      out.images.push(...listing.images)
      out.containers.push(...listing.containers)
    } catch (error) {
      // crictl without a running CRI-O is common; podman failing is worth saying too.
      out.warnings.push(`${name}: cannot list images and containers: ${(error as Error).message.split('\n')[0]}`)
    }
  }

  return out
}
