import type {Policy, PolicyRequirement, SignedIdentity} from './types.js'

/**
 * Writes policy.json with a fixed key order per requirement, so the same
 * policy always serializes to the same bytes.
 */

type Plain = {[key: string]: unknown}

function identityValue(identity: SignedIdentity): Plain {
  return {...identity}
}

const REQUIREMENT_KEY_ORDER = [
  'type',
  'keyType',
  'keyPath',
  'keyPaths',
  'keyData',
  'keyDatas',
  'fulcio',
  'pki',
  'rekorPublicKeyPath',
  'rekorPublicKeyPaths',
  'rekorPublicKeyData',
  'rekorPublicKeyDatas',
  'baseLayerIdentity',
  'signedIdentity',
]

export function requirementValue(requirement: PolicyRequirement): Plain {
  const source = requirement as unknown as Plain
  const out: Plain = {}
  for (const key of REQUIREMENT_KEY_ORDER) {
    if (source[key] === undefined) continue
    out[key] = key === 'signedIdentity' || key === 'baseLayerIdentity' ? identityValue(source[key] as SignedIdentity) : source[key]
  }

  return out
}

export function policyValue(policy: Policy): Plain {
  const out: Plain = {default: policy.default.map((r) => requirementValue(r))}
  if (policy.transports) {
    const transports: Plain = {}
    for (const transport of policy.transports) {
      const scopes: Plain = {}
      for (const scope of transport.scopes) scopes[scope.scope] = scope.requirements.map((r) => requirementValue(r))
      transports[transport.name] = scopes
    }

    out.transports = transports
  }

  return out
}

export function serializePolicy(policy: Policy, indent = 4): string {
  return JSON.stringify(policyValue(policy), null, indent) + '\n'
}

/** The indentation an existing file uses, so a rewrite keeps its look. */
export function detectIndent(text: string): number {
  const match = /\n( +)"/.exec(text)
  return match ? Math.min(match[1].length, 8) : 4
}

/** Semantic equality: same scopes in the same order, same requirements. */
export function samePolicy(a: Policy, b: Policy): boolean {
  return JSON.stringify(policyValue(a)) === JSON.stringify(policyValue(b))
}
