import {type DockerReference, referenceName} from './reference.js'

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
