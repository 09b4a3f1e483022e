import {access, constants, readdir} from 'node:fs/promises'
import path from 'node:path'

import {runTool} from '../exec/run-tool.js'
import {MiB, readRegularFile} from '../fs/read-bounded.js'
import {ImagetrustError} from '../lib/errors.js'
import {type Capabilities, commonCapabilities, containersImageFor, parseVersion} from './capabilities.js'
import {HOST_PATHS, type HostRoot} from './paths.js'

export const ENGINES = ['podman', 'crio', 'skopeo', 'buildah', 'crictl'] as const
export type Engine = (typeof ENGINES)[number]

export interface EngineInfo {
  name: Engine
  path: string
  version: string
  /** containers/image version it vendors, when known. */
  containersImage?: string
  /**
   * Built with containers_image_openpgp (CRI-O prints its build tags): GPG
   * keys are read by golang.org/x/crypto/openpgp, which has no EdDSA.
   */
  goOpenPgp?: boolean
}

export async function findOnPath(name: string, searchPath = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of searchPath.split(':').filter(Boolean)) {
    const candidate = path.join(dir, name)
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {}
  }

  return undefined
}

async function probe(name: Engine): Promise<EngineInfo | undefined> {
  const found = await findOnPath(name)
  if (!found) return undefined
  const result = await runTool(found, ['--version'], {allowFailure: true, timeoutMs: 15_000}).catch(() => undefined)
  const text = `${result?.stdout ?? ''}\n${result?.stderr ?? ''}`
  const version = /version:?\s+v?(\d+\.\d+(?:\.\d+)?)/i.exec(text)?.[1] ?? parseVersion(text)?.join('.') ?? 'unknown'
  const parsed = parseVersion(version)
  const cimage = parsed && containersImageFor(name, parsed)
  const info: EngineInfo = {name, path: found, version, containersImage: cimage ? `${cimage[0]}.${cimage[1]}` : undefined}
  if (/\bcontainers_image_openpgp\b/.test(text)) info.goOpenPgp = true
  return info
}

export async function detectEngines(): Promise<EngineInfo[]> {
  const found = await Promise.all(ENGINES.map((name) => probe(name)))
  return found.filter((e): e is EngineInfo => e !== undefined)
}

export function capabilitiesOf(engines: EngineInfo[]): Capabilities {
  const judging = engines.filter((e) => e.name !== 'crictl')
  return commonCapabilities(judging.map((e) => ({tool: e.name, version: e.version, goOpenPgp: e.goOpenPgp})))
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  )
}

export interface CrioConfig {
  files: string[]
  signaturePolicy?: string
  signaturePolicyDir?: string
  /** The policy CRI-O uses for pulls without a namespace policy. */
  effectivePolicy: string
  /** Per-namespace policy files present in signature_policy_dir (CRI-O 1.28+). */
  namespaces: Array<{namespace: string; file: string}>
}

/** The policy file CRI-O uses for a pull in a Kubernetes namespace: <dir>/<ns>.json when it exists, else the global one. */
export function crioPolicyFor(config: CrioConfig, namespace?: string): string {
  return config.namespaces.find((n) => n.namespace === namespace)?.file ?? config.effectivePolicy
}

/** systemctl's word on crio.service, or "unknown" without systemd. */
export async function crioUnitState(): Promise<string> {
  const result = await runTool('systemctl', ['is-active', 'crio'], {allowFailure: true, timeoutMs: 10_000}).catch(() => undefined)
  const word = result?.stdout.trim()
  return word && /^[a-z-]+$/.test(word) ? word : 'unknown'
}

const CRIO_CONF_LIMIT = 4 * MiB

/** CRI-O's [crio.image] signature_policy(_dir), from crio.conf then crio.conf.d/*.conf in name order, last wins. */
export async function readCrioConfig(root: HostRoot): Promise<CrioConfig | undefined> {
  const files: string[] = []
  // Read in the root: a symlinked crio.conf or drop-in is followed inside it, never out.
  const main = root.resolveFull(HOST_PATHS.crioConf)
  if (await exists(main)) files.push(main)
  const dropIns = (await readdir(root.resolveFull(HOST_PATHS.crioConfD)).catch(() => [] as string[])).filter((n) => n.endsWith('.conf')).sort()
  files.push(...dropIns.map((n) => root.resolveFull(path.posix.join(HOST_PATHS.crioConfD, n))))
  if (files.length === 0) return undefined
  const {parse} = await import('smol-toml')
  const config: CrioConfig = {files, effectivePolicy: HOST_PATHS.policy, namespaces: []}
  for (const file of files) {
    let doc: Record<string, unknown>
    try {
      doc = parse((await readRegularFile(file, CRIO_CONF_LIMIT)).content.toString('utf8')) as Record<string, unknown>
    } catch (error) {
      if (error instanceof ImagetrustError) throw error
      if ((error as NodeJS.ErrnoException).code) throw new ImagetrustError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`)
      const e = error as {line?: number; column?: number; message: string}
      throw new ImagetrustError(e.message.split('\n')[0], {location: {file, line: e.line, column: e.column}})
    }

    const image = (doc.crio as Record<string, unknown> | undefined)?.image as Record<string, unknown> | undefined
    if (typeof image?.signature_policy === 'string') config.signaturePolicy = image.signature_policy
    if (typeof image?.signature_policy_dir === 'string') config.signaturePolicyDir = image.signature_policy_dir
  }

  if (config.signaturePolicy) config.effectivePolicy = config.signaturePolicy
  const dir = config.signaturePolicyDir ?? HOST_PATHS.crioPolicyDir
  // The paths stay host paths (CRI-O reads them from its root); under --root they resolve in it, `..` included.
  const present = (await readdir(root.resolveFull(dir)).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort()
  config.namespaces = present.map((n) => ({namespace: n.slice(0, -5), file: path.posix.join(dir, n)}))
  return config
}
