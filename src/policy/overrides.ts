import {broaderScopes, dockerScopeIndex} from './effective.js'
import {requirementValue} from './serialize.js'
import type {Policy, PolicyRequirement} from './types.js'

/**
 * Foreign rules that change what an image under an owned rule gets. Only the
 * most specific scope applies, so a foreign `reg/app` beats an owned `reg`
 * for every image below reg/app, and a foreign transport-wide `""` (or any
 * foreign scope) beats the global default.
 */
export interface Override {
  /** The foreign docker scope that decides instead; "" is the transport default. */
  scope: string
  requirements: PolicyRequirement[]
  /** The owned scope it hides, or null for the trust file's default. */
  hides: string | null
  ownRequirements: PolicyRequirement[]
  /**
   * weaker: it accepts images the owned rule refuses (unsigned, or signed by other keys);
   * stronger: it refuses images the owned rule accepts (a reject): worth a warning, not drift.
   */
  effect: 'weaker' | 'stronger'
}

export interface OwnedRules {
  /** docker scopes the trust file (or a take-over) owns in this policy. */
  scopes: Set<string>
  /** The trust file sets the global default. */
  ownsDefault: boolean
}

type Strength = 1 | 2 | 3

/** Requirements are ANDed: one reject refuses everything; any signature requirement refuses unsigned images. */
function strength(requirements: PolicyRequirement[]): Strength {
  if (requirements.some(refusesEverything)) return 3
  if (requirements.some((r) => r.type !== 'insecureAcceptAnything')) return 2
  return 1
}

/** reject, and what containers/image cannot evaluate (signedBaseLayer, keyTypes other than GPGKeys): every image is refused. */
function refusesEverything(r: PolicyRequirement): boolean {
  return r.type === 'reject' || r.type === 'signedBaseLayer' || (r.type === 'signedBy' && r.keyType !== 'GPGKeys')
}

export function sameRequirements(a: PolicyRequirement[], b: PolicyRequirement[]): boolean {
  return JSON.stringify(a.map((r) => requirementValue(r))) === JSON.stringify(b.map((r) => requirementValue(r)))
}

function compare(foreign: PolicyRequirement[], own: PolicyRequirement[]): Override['effect'] | undefined {
  if (sameRequirements(foreign, own)) return undefined
  const [f, o] = [strength(foreign), strength(own)]
  if (f > o) return 'stronger'
  if (f < o) return 'weaker'
  // Both signed, by other keys or identities: other images pass. Two rejects, or two accepts, mean the same.
  return f === 2 ? 'weaker' : undefined
}

/**
 * The rule the trust file meant for the images under `scope`: the first
 * owned rule beneath it, walking past foreign ones (a foreign rule between
 * them is judged on its own), then an owned `""`, then the default when the
 * trust file sets it. Undefined when nothing beneath is the trust file's.
 */
export function ownedRuleBeneath(policy: Policy, scope: string, owned: OwnedRules): {scope: string | null; requirements: PolicyRequirement[]} | undefined {
  const present = dockerScopeIndex(policy)
  const broader = scope === '' ? [] : broaderScopes(scope)
  if (!broader) return undefined // never matches anything
  for (const candidate of scope === '' ? [] : [...broader, '']) {
    const entry = present?.get(candidate)
    if (entry && owned.scopes.has(candidate)) return {scope: candidate, requirements: entry.requirements}
  }

  return owned.ownsDefault ? {scope: null, requirements: policy.default} : undefined
}

/**
 * Every foreign docker scope that decides for images the trust file meant to
 * decide for. Against the default only unsigned acceptance counts: a host's
 * own signed rule for an unrelated registry (RHEL's, say) is its trust
 * decision, while an accept-anything rule is exactly what `default: reject`
 * is meant to end.
 */
export function findOverrides(policy: Policy, owned: OwnedRules): Override[] {
  const docker = policy.transports?.find((t) => t.name === 'docker')
  if (!docker) return []
  const out: Override[] = []
  for (const {scope, requirements} of docker.scopes) {
    if (owned.scopes.has(scope)) continue
    const intended = ownedRuleBeneath(policy, scope, owned)
    if (!intended) continue
    if (intended.scope !== null) {
      const effect = compare(requirements, intended.requirements)
      if (effect) out.push({scope, requirements, hides: intended.scope, ownRequirements: intended.requirements, effect})
    } else if (strength(requirements) === 1 && strength(policy.default) > 1) {
      out.push({scope, requirements, hides: null, ownRequirements: policy.default, effect: 'weaker'})
    }
  }

  return out
}

/** In plain words, for warnings and drift details. */
export function describeRequirements(requirements: PolicyRequirement[]): string {
  return requirements
    .map((r) => {
      if (r.type === 'signedBy' || r.type === 'sigstoreSigned') {
        const keys = [...(r.keyPath ? [r.keyPath] : []), ...(r.keyPaths ?? []), ...(r.keyData === undefined ? [] : ['inline keyData'])]
        return `${r.type} ${keys.join(', ')}`
      }

      return r.type
    })
    .join(' + ')
}

export function describeOverride(o: Override): string {
  const who = o.scope === '' ? 'the docker transport default ""' : `scope "${o.scope}"`
  const what = o.hides === null ? 'the default' : `scope "${o.hides}"`
  const verb = o.effect === 'weaker' ? 'so images there are accepted that the trust file refuses' : 'so images there are refused that the trust file accepts'
  return `${who} (${describeRequirements(o.requirements)}) overrides ${what} (${describeRequirements(o.ownRequirements)}) for the images it covers, ${verb}`
}
