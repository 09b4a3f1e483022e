import {dockerScopeChain} from './match.js'
import {type DockerReference, parseDockerScope, parseImageReference} from './reference.js'
import type {Policy, PolicyRequirement, PolicyScope} from './types.js'

/**
 * The one place that decides which policy.json rule containers/image applies
 * to an image: explain, check, apply's warnings, verify and verify --native
 * all ask here. Only the most specific scope present counts; nothing is
 * inherited from broader scopes.
 */
export interface ScopeResolution {
  /** The scope key used, "" for the transport default, or null for the global default. */
  scope: string | null
  requirements: PolicyRequirement[]
  /** Every key tried, in order, and whether the policy had it. */
  tried: Array<{scope: string; present: boolean}>
}

const indexes = new WeakMap<PolicyScope[], {length: number; byScope: Map<string, PolicyScope>}>()

/**
 * The docker transport's scopes by name, built once per scopes array (and
 * again if it grew or shrank): callers ask once per scope, so rebuilding it
 * per question made check and status quadratic in the number of scopes.
 * Entries, not their requirements, are kept, so an entry edited in place is seen.
 */
export function dockerScopeIndex(policy: Policy): Map<string, PolicyScope> | undefined {
  const transport = policy.transports?.find((t) => t.name === 'docker')
  if (!transport) return undefined
  const cached = indexes.get(transport.scopes)
  if (cached && cached.length === transport.scopes.length) return cached.byScope
  const byScope = new Map(transport.scopes.map((s) => [s.scope, s]))
  indexes.set(transport.scopes, {length: transport.scopes.length, byScope})
  return byScope
}

/** The rule a pull of `image` (docker transport, normalised as podman does) gets. */
export function effectiveRule(policy: Policy, image: string | DockerReference): ScopeResolution {
  const ref = typeof image === 'string' ? parseImageReference(image) : image
  if (typeof ref === 'string') throw new Error(`invalid image reference "${String(image)}": ${ref}`)
  return firstPresent(policy, dockerScopeChain(ref))
}

function firstPresent(policy: Policy, chain: string[]): ScopeResolution {
  const byScope = dockerScopeIndex(policy)
  const tried: ScopeResolution['tried'] = []
  if (byScope) {
    for (const scope of [...chain, '']) {
      const requirements = byScope.get(scope)?.requirements
      tried.push({scope, present: requirements !== undefined})
      if (requirements) return {scope, requirements, tried}
    }
  }

  return {scope: null, requirements: policy.default, tried}
}

/**
 * The broader scopes an image under `scope` would fall back to if `scope`
 * were absent, most specific first (the transport default "" and the global
 * default are not listed). Undefined for a scope that can never match.
 */
export function broaderScopes(scope: string): string[] | undefined {
  const syntax = parseDockerScope(scope)
  if (typeof syntax === 'string') return undefined
  if (syntax.kind === 'wildcard') {
    const labels = syntax.suffix.split('.')
    return labels.slice(1).map((_, i) => `*.${labels.slice(i + 1).join('.')}`)
  }

  const ref: DockerReference =
    syntax.kind === 'reference' ? syntax.ref : syntax.kind === 'namespace' ? {domain: syntax.domain, path: syntax.path} : {domain: syntax.domain, path: ''}
  if (syntax.kind === 'registry') {
    const labels = syntax.domain.replace(/:\d+$/, '').split('.')
    return labels.slice(1).map((_, i) => `*.${labels.slice(i + 1).join('.')}`)
  }

  // A namespace or repository scope: its chain, without the identity entry an untagged name gets.
  const chain = dockerScopeChain(ref)
  const start = chain.indexOf(scope)
  return start === -1 ? chain.slice(1) : chain.slice(start + 1)
}

/** The rule that images under `scope` would get without it: the first broader scope present, else "" or the default. */
export function ruleBeneath(policy: Policy, scope: string): ScopeResolution | undefined {
  const broader = broaderScopes(scope)
  return broader && firstPresent(policy, broader)
}
