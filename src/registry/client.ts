import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {ImagetrustError} from '../lib/errors.js'
import {discardBody, httpGet, readBody, RegistryUnreachable} from './http.js'
import {AUTH_TOKEN_LIMIT, type BodyLimit, type Budget, MANIFEST_LIMIT, SIGNATURE_LIMIT} from './limits.js'

/**
 * A small read-only client for the registry v2 API: manifests and blobs,
 * with the Bearer token and Basic auth a `podman login` leaves behind. Used by
 * the native checks (sigstore attachments, manifest digests for audit).
 */
export {BodyTooLarge, RegistryUnreachable} from './http.js'

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
  /** The deadline shared by every fetch of the command (or of one audited image). */
  budget: Budget
}

/** What a Bearer challenge asks for, fetched within the budget and the token size limit. */
async function bearerToken(domain: string, repo: string, challenge: string, basic: string | undefined, budget: Budget): Promise<string> {
  const params = Object.fromEntries([...challenge.slice(7).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
  let tokenUrl: URL
  try {
    tokenUrl = new URL(params.realm)
  } catch {
    throw new RegistryUnreachable(`the registry ${domain}: its Bearer challenge names no valid realm URL`)
  }

  if (params.service) tokenUrl.searchParams.set('service', params.service)
  tokenUrl.searchParams.set('scope', params.scope ?? `repository:${repo}:pull`)
  const source = `the token server for ${domain}`
  const response = await httpGet(tokenUrl, basic ? {authorization: `Basic ${basic}`} : {}, budget, source)
  const body = await readBody(response, AUTH_TOKEN_LIMIT, `the token response for ${domain}`, budget, source)
  try {
    const token = JSON.parse(Buffer.from(body).toString('utf8')) as {token?: unknown; access_token?: unknown}
    const value = token.token ?? token.access_token
    if (typeof value === 'string') return value
  } catch {}

  throw new RegistryUnreachable(`the registry ${domain}: the token response from ${tokenUrl.origin} holds no token`)
}

/** GET /v2/<repo>/<kind>/<reference>; 404 gives null. Bodies stop at the limit for their kind. */
export async function registryGet(domain: string, repo: string, kind: 'manifests' | 'blobs', reference: string, options: RegistryOptions & {accept?: string; limit?: BodyLimit}): Promise<{body: Uint8Array; contentType: string} | null> {
  const host = domain === 'docker.io' ? 'registry-1.docker.io' : domain
  const url = `${options.tlsVerify ? 'https' : 'http'}://${host}/v2/${repo}/${kind}/${reference}`
  const basic = await registryAuth(domain)
  const what = kind === 'manifests' ? 'the manifest' : 'the blob'
  const get = (authorization?: string) => httpGet(url, {...(options.accept ? {accept: options.accept} : {}), ...(authorization ? {authorization} : {})}, options.budget, `the registry ${domain}`)
  let response = await get()
  const challenge = response.headers.get('www-authenticate')
  if (response.status === 401 && (challenge?.startsWith('Bearer ') || basic)) {
    await discardBody(response)
    response = await get(challenge?.startsWith('Bearer ') ? `Bearer ${await bearerToken(domain, repo, challenge, basic, options.budget)}` : `Basic ${basic}`)
  }

  if (!response.ok) await discardBody(response)
  if (response.status === 401 || response.status === 403) throw new RegistryUnreachable(`the registry ${domain} needs authentication (log in with podman login)`)
  if (response.status === 404) return null
  if (!response.ok) throw new RegistryUnreachable(`the registry answered HTTP ${response.status} for ${url}`)
  const limit = options.limit ?? (kind === 'manifests' ? MANIFEST_LIMIT : SIGNATURE_LIMIT)
  return {body: await readBody(response, limit, `${what} ${repo}/${kind}/${reference}`, options.budget, `the registry ${domain}`), contentType: response.headers.get('content-type') ?? ''}
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
