import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {ImagetrustError} from '../lib/errors.js'

/**
 * A small read-only client for the registry v2 API: manifests and blobs,
 * with the Bearer token and Basic auth a `podman login` leaves behind. Used by
 * the native checks (sigstore attachments, manifest digests for audit).
 */
export class RegistryUnreachable extends Error {}

export const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ')

async function registryAuth(domain: string): Promise<string | undefined> {
  const candidates = [
    process.env.REGISTRY_AUTH_FILE,
    process.env.XDG_RUNTIME_DIR && path.join(process.env.XDG_RUNTIME_DIR, 'containers/auth.json'),
    `/run/containers/${process.getuid?.() ?? 0}/auth.json`,
    path.join(os.homedir(), '.docker/config.json'),
  ].filter(Boolean) as string[]
  for (const file of candidates) {
    const text = await readFile(file, 'utf8').catch(() => undefined)
    if (!text) continue
    try {
      const auths = (JSON.parse(text) as {auths?: Record<string, {auth?: string}>}).auths ?? {}
      const entry = auths[domain] ?? auths[`https://${domain}`]
      if (entry?.auth) return entry.auth
    } catch {}
  }

  return undefined
}

export interface RegistryOptions {
  tlsVerify: boolean
  timeoutMs?: number
}

/** GET /v2/<repo>/<kind>/<reference>; 404 gives null. */
export async function registryGet(domain: string, repo: string, kind: 'manifests' | 'blobs', reference: string, options: RegistryOptions & {accept?: string}): Promise<{body: Uint8Array; contentType: string} | null> {
  const host = domain === 'docker.io' ? 'registry-1.docker.io' : domain
  const url = `${options.tlsVerify ? 'https' : 'http'}://${host}/v2/${repo}/${kind}/${reference}`
  const basic = await registryAuth(domain)
  const get = async (authorization?: string) => {
    try {
      return await fetch(url, {headers: {...(options.accept ? {accept: options.accept} : {}), ...(authorization ? {authorization} : {})}, signal: AbortSignal.timeout(options.timeoutMs ?? 30_000)})
    } catch (error) {
      throw new RegistryUnreachable(`the registry ${domain} is unreachable: ${(error as Error).cause ?? (error as Error).message}`)
    }
  }

  let response = await get()
  const challenge = response.headers.get('www-authenticate')
  if (response.status === 401 && challenge?.startsWith('Bearer ')) {
    const params = Object.fromEntries([...challenge.slice(7).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    try {
      const tokenUrl = new URL(params.realm)
      if (params.service) tokenUrl.searchParams.set('service', params.service)
      tokenUrl.searchParams.set('scope', params.scope ?? `repository:${repo}:pull`)
      const token = await fetch(tokenUrl, {headers: basic ? {authorization: `Basic ${basic}`} : {}, signal: AbortSignal.timeout(options.timeoutMs ?? 30_000)}).then((r) => r.json() as Promise<{token?: string; access_token?: string}>)
      response = await get(`Bearer ${token.token ?? token.access_token}`)
    } catch (error) {
      if (error instanceof RegistryUnreachable) throw error
      throw new RegistryUnreachable(`the registry ${domain}: token request failed: ${(error as Error).message}`)
    }
  } else if (response.status === 401 && basic) {
    response = await get(`Basic ${basic}`)
  }

  if (response.status === 401 || response.status === 403) throw new RegistryUnreachable(`the registry ${domain} needs authentication (log in with podman login)`)
  if (response.status === 404) return null
  if (!response.ok) throw new RegistryUnreachable(`the registry answered HTTP ${response.status} for ${url}`)
  return {body: new Uint8Array(await response.arrayBuffer()), contentType: response.headers.get('content-type') ?? ''}
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** The manifest digest a pull of repo:tag (or @digest) gets today. */
export async function manifestDigest(domain: string, repo: string, reference: string, options: RegistryOptions): Promise<string> {
  const found = await registryGet(domain, repo, 'manifests', reference, {...options, accept: MANIFEST_TYPES})
  if (!found) throw new ImagetrustError(`${domain}/${repo}:${reference}: the image does not exist in the registry`)
  return sha256Digest(found.body)
}
