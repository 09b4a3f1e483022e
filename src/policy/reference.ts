/**
 * Docker reference grammar (distribution/reference), enough to validate scopes
 * and identities and to compute the scope precedence chain.
 */

export const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
export const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`
export const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*'
const TAG = '[\\w][\\w.-]{0,127}'
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'

const DOMAIN_RE = new RegExp(`^${DOMAIN}$`)
const PATH_COMPONENT_RE = new RegExp(`^${PATH_COMPONENT}$`)
const TAG_RE = new RegExp(`^${TAG}$`)
const DIGEST_RE = new RegExp(`^${DIGEST}$`)

export interface DockerReference {
  /** host[:port] */
  domain: string
  /** repository path below the domain, e.g. library/busybox */
  path: string
  tag?: string
  digest?: string
}

export function referenceName(ref: DockerReference): string {
  return `${ref.domain}/${ref.path}`
}

export function referenceString(ref: DockerReference): string {
  return referenceName(ref) + (ref.tag ? `:${ref.tag}` : '') + (ref.digest ? `@${ref.digest}` : '')
}

function looksLikeDomain(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component.toLowerCase() !== component
}

/** Splits `name[:tag][@digest]`; returns an error string instead of throwing. */
function splitTagDigest(input: string): {name: string; tag?: string; digest?: string} | string {
  let name = input
  let digest: string | undefined
  const at = name.indexOf('@')
  if (at !== -1) {
    digest = name.slice(at + 1)
    name = name.slice(0, at)
    if (!DIGEST_RE.test(digest)) return `invalid digest "${digest}"`
  }

  let tag: string | undefined
  const lastSlash = name.lastIndexOf('/')
  const colon = name.lastIndexOf(':')
  if (colon > lastSlash) {
    tag = name.slice(colon + 1)
    name = name.slice(0, colon)
    if (!TAG_RE.test(tag)) return `invalid tag "${tag}"`
  }

  return {name, tag, digest}
}

function checkPath(path: string): string | undefined {
  if (path === '') return 'empty repository path'
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT_RE.test(component)) return `invalid repository path component "${component}" (lowercase letters, digits and . _ - only)`
  }

  return undefined
}

/**
 * Parses a reference the way `podman pull` would, expanding short names to
 * docker.io (and docker.io/library/ for single names).
 */
export function parseImageReference(input: string): DockerReference | string {
  const ref = input.startsWith('docker://') ? input.slice('docker://'.length) : input
  if (ref === '') return 'empty image reference'
  const parts = splitTagDigest(ref)
  if (typeof parts === 'string') return parts
  const slash = parts.name.indexOf('/')
  const first = slash === -1 ? '' : parts.name.slice(0, slash)
  let domain: string
  let path: string
  if (slash !== -1 && looksLikeDomain(first)) {
    domain = first
    path = parts.name.slice(slash + 1)
    if (!DOMAIN_RE.test(domain)) return `invalid registry host "${domain}"`
  } else {
    domain = 'docker.io'
    path = parts.name
  }

  // distribution/reference: index.docker.io is docker.io, and its single-name repositories live under library/.
  if (domain === 'index.docker.io') domain = 'docker.io'
  if (domain === 'docker.io' && !path.includes('/')) path = `library/${path}`
  const pathError = checkPath(path)
  if (pathError) return pathError
  if (domain.length + 1 + path.length > 255) return 'repository name longer than 255 characters'
  return {domain, path, tag: parts.tag, digest: parts.digest}
}

/** A docker scope as the trust file accepts it: fully qualified, or `*.domain`. */
export type ScopeSyntax =
  | {kind: 'wildcard'; suffix: string}
  | {kind: 'registry'; domain: string}
  | {kind: 'namespace'; domain: string; path: string}
  | {kind: 'reference'; ref: DockerReference}

export function parseDockerScope(scope: string): ScopeSyntax | string {
  if (scope.startsWith('*.')) {
    const suffix = scope.slice(2)
    if (!new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*$`).test(suffix)) {
      return `invalid wildcard scope "${scope}": expected *.domain (no port, path or further *)`
    }

    return {kind: 'wildcard', suffix}
  }

  if (scope.includes('*')) return `invalid scope "${scope}": a * may only start a scope, as in *.example.com`
  if (scope.includes('://')) return `invalid scope "${scope}": write host[:port]/path without a URL scheme`
  const slash = scope.indexOf('/')
  const domain = slash === -1 ? scope : scope.slice(0, slash)
  if (!DOMAIN_RE.test(domain)) return `invalid registry host "${domain}" in scope "${scope}"`
  if (!looksLikeDomain(domain)) {
    return `scope "${scope}" is a short name, which never matches: containers/image compares fully qualified names (write docker.io/library/${scope} or a host with a dot or port)`
  }

  if (slash === -1) return {kind: 'registry', domain}
  const parts = splitTagDigest(scope)
  if (typeof parts === 'string') return `invalid scope "${scope}": ${parts}`
  const path = parts.name.slice(slash + 1)
  const pathError = checkPath(path)
  if (pathError) return `invalid scope "${scope}": ${pathError}`
  // containers/image refuses references with both: no image is ever named that way, so the scope never matches.
  if (parts.tag && parts.digest) return `invalid scope "${scope}": a tag and a digest together never match (containers/image does not support such references)`
  if (parts.tag || parts.digest) return {kind: 'reference', ref: {domain, path, tag: parts.tag, digest: parts.digest}}
  return {kind: 'namespace', domain, path}
}

/** Validates a repository or reference used inside a signedIdentity. */
export function parseNamedReference(input: string): DockerReference | string {
  return parseImageReference(input)
}

/**
 * How containers/image sees a docker scope written with docker.io shorthand.
 * Scopes are compared as plain strings against normalised names
 * (index.docker.io → docker.io, single names under library/), so:
 * - `index.docker.io/...` and `docker.io/busybox:1` never match (`mismatch`);
 * - `docker.io/busybox` matches only repositories below docker.io/busybox/,
 *   never the official image docker.io/library/busybox (`namespace-only`).
 */
export type ScopeNormalization = {kind: 'mismatch'; normalized: string} | {kind: 'namespace-only'; official: string}

export function dockerScopeNormalization(scope: string): ScopeNormalization | undefined {
  const syntax = parseDockerScope(scope)
  if (typeof syntax === 'string' || syntax.kind === 'wildcard') return undefined
  if (syntax.kind === 'registry') return syntax.domain === 'index.docker.io' ? {kind: 'mismatch', normalized: 'docker.io'} : undefined
  const ref = syntax.kind === 'reference' ? syntax.ref : {domain: syntax.domain, path: syntax.path}
  const normalized = parseImageReference(referenceString(ref))
  if (typeof normalized === 'string') return undefined
  const text = referenceString(normalized)
  if (text === scope) return undefined
  if (syntax.kind === 'namespace' && ref.domain === 'docker.io') return ref.path === 'library' ? undefined : {kind: 'namespace-only', official: text}
  return {kind: 'mismatch', normalized: syntax.kind === 'namespace' && !ref.path.includes('/') ? `docker.io/${ref.path}` : text}
}
