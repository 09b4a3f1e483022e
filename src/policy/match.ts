import {type DockerReference, parseImageReference, referenceName} from './reference.js'
import type {Policy, PolicyRequirement} from './types.js'

/**
 * Scope precedence for docker references, in containers/image's fixed order:
 * the exact reference, the repository, each parent namespace, the registry
 * host[:port], then `*.` wildcards from the host without its port. The first
 * key present wins; nothing is inherited from broader scopes.
 */
export function dockerScopeChain(ref: DockerReference): string[] {
  const name = referenceName(ref)
  const identity = ref.digest ? `${name}@${ref.digest}` : `${name}:${ref.tag ?? 'latest'}`
  const chain = [identity]
  let current = name
  for (;;) {
    chain.push(current)
    const slash = current.lastIndexOf('/')
    if (slash === -1) break
    current = current.slice(0, slash)
  }

  const host = ref.domain.replace(/:\d+$/, '')
  const labels = host.split('.')
  for (let i = 1; i < labels.length; i++) chain.push(`*.${labels.slice(i).join('.')}`)
  return chain
}

export interface ScopeResolution {
  /** The scope key used, "" for the transport default, or null for the global default. */
  scope: string | null
  requirements: PolicyRequirement[]
  /** Every key tried, in order, and whether the policy had it. */
  tried: Array<{scope: string; present: boolean}>
}

export function resolveDockerScope(policy: Policy, image: string): ScopeResolution {
  const ref = parseImageReference(image)
  if (typeof ref === 'string') throw new Error(`invalid image reference "${image}": ${ref}`)
  const transport = policy.transports?.find((t) => t.name === 'docker')
  const tried: ScopeResolution['tried'] = []
  if (transport) {
    const byScope = new Map(transport.scopes.map((s) => [s.scope, s.requirements]))
    for (const scope of [...dockerScopeChain(ref), '']) {
      const requirements = byScope.get(scope)
      tried.push({scope, present: requirements !== undefined})
      if (requirements) return {scope, requirements, tried}
    }
  }

  return {scope: null, requirements: policy.default, tried}
}
