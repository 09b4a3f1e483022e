import path from 'node:path'

import {ImagetrustError, type Location, formatLocation} from '../lib/errors.js'
import {dockerScopeNormalization, parseDockerScope, parseImageReference} from '../policy/reference.js'
import {newSignedIdentity, PolicyRuleError} from '../policy/requirements.js'
import type {SignedIdentity} from '../policy/types.js'
import type {KeySpec, ScopeSpec, TrustFile} from './types.js'
import {validateSigner} from './validate-signer.js'
import {parseUntil} from './expiry.js'
import {checkPkiScope, validatePki} from './validate-pki.js'
import {Collector, FINGERPRINT, isObject, KEY_NAME} from './collector.js'
import type {YamlSource} from './yaml-source.js'

export {FINGERPRINT, KEY_NAME} from './collector.js'

/**
 * Validates a trust file against the rules that schema/trust.schema.json
 * publishes, plus what a schema cannot say (scope syntax, key references).
 * All errors are collected, each with its YAML line.
 */

export class TrustFileError extends ImagetrustError {
  readonly problems: Location[]

  constructor(problems: Array<{location: Location; message: string}>) {
    const lines = problems.map((p) => `${formatLocation(p.location)}: ${p.message}`)
    super(problems.length === 1 ? lines[0] : `${problems.length} problems in the trust file:\n  ${lines.join('\n  ')}`, {
      location: undefined,
    })
    this.name = 'TrustFileError'
    this.problems = problems.map((p) => ({...p.location, path: p.message}))
  }
}

const IDENTITY_NAMES = ['matchExact', 'matchRepoDigestOrExact', 'matchRepository'] as const
const TOP_KEYS = ['version', 'default', 'localTransports', 'keys', 'scopes', 'crio', 'signer']
/** A Kubernetes namespace name (DNS label). */
const NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/
const KEY_KEYS = ['type', 'file', 'url', 'data', 'pki', 'fingerprint', 'until', 'reason']
const SCOPE_KEYS = ['policy', 'keys', 'identity', 'lookaside', 'lookasideStaging', 'sigstoreAttachments', 'test', 'until', 'reason']

function checkUrl(c: Collector, url: string | undefined, at: Array<string | number>, key: string, schemes: string[]): string | undefined {
  if (url === undefined) return undefined
  // The URL parser drops newlines and tabs: a value with one would reach registries.d as something else.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(url)) {
    c.add([...at, key], `${key} ${JSON.stringify(url)} has a control character`)
    return undefined
  }

  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    c.add([...at, key], `${key} "${url}" is not a valid URL`)
    return undefined
  }

  if (!schemes.includes(parsed.protocol)) {
    c.add([...at, key], `${key} "${url}" must use ${schemes.map((s) => s.replace(':', '://')).join(' or ')}`)
    return undefined
  }

  return url.replace(/\/+$/, '')
}

/** `until:` and `reason:` of a key or a scope (absent when not given). */
function validateExpiry(c: Collector, raw: Record<string, unknown>, at: Array<string | number>): {until?: string; reason?: string} {
  const out: {until?: string; reason?: string} = {}
  if (raw.until !== undefined) {
    const until = parseUntil(raw.until)
    if (typeof until === 'string') c.add([...at, 'until'], until)
    else out.until = until.toISOString()
  }

  const reason = c.string(raw, 'reason', at)
  if (reason !== undefined) {
    // It is shown on one line in check, status and the journal.
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(reason)) c.add([...at, 'reason'], 'reason must be one line of text, without control characters')
    else out.reason = reason
  }

  return out
}

function validateKey(c: Collector, name: string, raw: unknown): KeySpec | undefined {
  const at = ['keys', name]
  if (!KEY_NAME.test(name)) c.add(at, `key name "${name}" must match ${KEY_NAME.source} (it becomes a file name)`)
  if (!isObject(raw)) {
    c.add(at, 'a key must be a mapping with type and one of file, url, data, pki')
    return undefined
  }

  c.unknownKeys(raw, KEY_KEYS, at)
  const type = raw.type ?? (raw.pki === undefined || raw.pki === null ? 'gpg' : 'sigstore')
  if (type !== 'gpg' && type !== 'sigstore') c.add([...at, 'type'], `type must be gpg or sigstore, not ${JSON.stringify(type)}`)
  const file = c.string(raw, 'file', at)
  const url = checkUrl(c, c.string(raw, 'url', at), at, 'url', ['https:'])
  const data = c.string(raw, 'data', at)
  const pki = validatePki(c, raw.pki, at, type)
  const sources = [file, raw.url, data].filter((v) => v !== undefined && v !== null).length
  if (raw.pki !== undefined && raw.pki !== null) {
    if (sources > 0) c.add(at, `key "${name}": pki is its own key source: give it without file, url or data`)
  } else if (sources !== 1) c.add(at, `key "${name}" needs exactly one of file, url, data (found ${sources})`)
  let fingerprints: string[] | undefined
  const pin = raw.fingerprint
  if (pin !== undefined && pin !== null) {
    const list = Array.isArray(pin) ? pin : [pin]
    if (list.length === 0 || list.some((p) => typeof p !== 'string')) {
      c.add([...at, 'fingerprint'], 'fingerprint must be a fingerprint or a list of them')
    } else {
      fingerprints = (list as string[]).map((p) => p.replaceAll(/\s/g, '').toUpperCase())
      for (const p of fingerprints) {
        if (!FINGERPRINT.test(p)) c.add([...at, 'fingerprint'], `fingerprint "${p}" must be 40 (v4) or 64 (v6) hexadecimal digits`)
      }
    }
  }

  if (raw.url !== undefined && fingerprints === undefined) {
    c.add([...at, 'url'], `key "${name}" comes from a URL, so it needs a fingerprint pin: there is no trust on first use`)
  }

  return c.withLine({name, type: type as KeySpec['type'], file, url, data, fingerprints, ...(pki ? {pki} : {}), ...validateExpiry(c, raw, at)}, at)
}

function validateIdentity(c: Collector, raw: unknown, at: Array<string | number>): SignedIdentity | undefined {
  if (raw === undefined || raw === null) return undefined
  let identity: SignedIdentity
  if (typeof raw === 'string') {
    if (!(IDENTITY_NAMES as readonly string[]).includes(raw)) {
      c.add(at, `identity "${raw}" must be one of ${IDENTITY_NAMES.join(', ')}, or a mapping for exactReference, exactRepository, remapIdentity`)
      return undefined
    }

    identity = {type: raw} as SignedIdentity
  } else if (isObject(raw) && typeof raw.type === 'string') {
    identity = raw as unknown as SignedIdentity
  } else {
    c.add(at, 'identity must be a name such as matchRepository, or a mapping with a type')
    return undefined
  }

  try {
    return newSignedIdentity(identity)
  } catch (error) {
    if (!(error instanceof PolicyRuleError)) throw error
    c.add(at, `identity: ${error.message}`)
    return undefined
  }
}

/** A scope's keys: defined under keys:, listed once, of one kind, present exactly when the policy is signed. */
function validateScopeKeys(c: Collector, raw: unknown, policy: ScopeSpec['policy'], keyNames: Map<string, KeySpec>, at: Array<string | number>): string[] {
  let keys: string[] = []
  if (raw !== undefined) {
    if (!Array.isArray(raw) || raw.some((k) => typeof k !== 'string')) {
      c.add([...at, 'keys'], 'keys must be a list of key names')
    } else {
      keys = raw as string[]
      for (const [i, key] of keys.entries()) {
        if (!keyNames.has(key)) c.add([...at, 'keys', i], `key "${key}" is not defined under keys:`)
      }

      if (new Set(keys).size !== keys.length) c.add([...at, 'keys'], 'a key is listed twice')
    }
  }

  if (policy === 'signed' && keys.length === 0) c.add(at, 'policy: signed needs at least one key in keys:')
  if (policy !== 'signed' && keys.length > 0) c.add([...at, 'keys'], `keys are only used with policy: signed, not ${policy}`)
  const kinds = new Set(keys.map((k) => keyNames.get(k)?.type).filter(Boolean))
  if (kinds.size > 1) {
    c.add([...at, 'keys'], 'gpg and sigstore keys cannot share a scope: their requirements would be ANDed, so every image would need both')
  }

  return keys
}

/** A scope's test: images, each a valid reference. */
function validateTestImages(c: Collector, raw: unknown, at: Array<string | number>): ScopeSpec['test'] {
  if (raw === undefined) return undefined
  if (!isObject(raw)) {
    c.add([...at, 'test'], 'test must be a mapping with signed and/or unsigned image references')
    return undefined
  }

  c.unknownKeys(raw, ['signed', 'unsigned'], [...at, 'test'])
  const test: NonNullable<ScopeSpec['test']> = {}
  for (const kind of ['signed', 'unsigned'] as const) {
    const ref = c.string(raw, kind, [...at, 'test'])
    if (ref === undefined) continue
    const parsed = parseImageReference(ref)
    if (typeof parsed === 'string') c.add([...at, 'test', kind], `test image "${ref}": ${parsed}`)
    test[kind] = ref
  }

  return test
}

function validateScope(c: Collector, scope: string, raw: unknown, keyNames: Map<string, KeySpec>): ScopeSpec | undefined {
  const at = ['scopes', scope]
  const syntax = parseDockerScope(scope)
  if (typeof syntax === 'string') c.add(at, syntax)
  const normalization = dockerScopeNormalization(scope)
  if (normalization?.kind === 'mismatch') {
    c.add(at, `scope "${scope}" never matches: containers/image compares normalised names, so write "${normalization.normalized}"`)
  }
  if (!isObject(raw)) {
    c.add(at, 'a scope must be a mapping with at least "policy"')
    return undefined
  }

  c.unknownKeys(raw, SCOPE_KEYS, at)
  const policy = raw.policy
  if (policy !== 'signed' && policy !== 'reject' && policy !== 'accept') {
    c.add([...at, 'policy'], `policy must be signed, reject or accept, not ${JSON.stringify(policy ?? null)}`)
    return undefined
  }

  const keys = validateScopeKeys(c, raw.keys, policy, keyNames, at)
  checkPkiScope(c, keys, keyNames, at)

  const identity = validateIdentity(c, raw.identity, [...at, 'identity'])
  if (identity && policy !== 'signed') c.add([...at, 'identity'], 'identity is only used with policy: signed')
  const lookaside = checkUrl(c, c.string(raw, 'lookaside', at), at, 'lookaside', ['http:', 'https:', 'file:'])
  const lookasideStaging = checkUrl(c, c.string(raw, 'lookasideStaging', at), at, 'lookasideStaging', ['file:'])
  const attachments = raw.sigstoreAttachments
  if (attachments !== undefined && typeof attachments !== 'boolean') c.add([...at, 'sigstoreAttachments'], 'sigstoreAttachments must be true or false')

  const test = validateTestImages(c, raw.test, at)

  return c.withLine<Omit<ScopeSpec, 'line'>>(
    {
      scope,
      policy,
      keys,
      identity,
      lookaside,
      lookasideStaging,
      sigstoreAttachments: typeof attachments === 'boolean' ? attachments : undefined,
      test,
      ...validateExpiry(c, raw, at),
    },
    at,
  )
}

export function validateTrustFile(source: YamlSource): TrustFile {
  const c = new Collector(source)
  const root = source.value
  if (!isObject(root)) {
    c.add([], 'the trust file must be a YAML mapping with version, keys and scopes')
    throw new TrustFileError(c.problems)
  }

  c.unknownKeys(root, TOP_KEYS, [])
  if (root.version !== 1) c.add(['version'], `version must be 1, not ${JSON.stringify(root.version ?? null)}`)
  const defaultPolicy = root.default
  if (defaultPolicy !== undefined && defaultPolicy !== 'reject' && defaultPolicy !== 'accept') {
    c.add(['default'], `default must be reject or accept, not ${JSON.stringify(defaultPolicy)}`)
  }

  const localTransports = root.localTransports ?? 'accept'
  if (localTransports !== 'accept' && localTransports !== 'default') c.add(['localTransports'], 'localTransports must be accept or default')

  const keys: KeySpec[] = []
  if (root.keys !== undefined && root.keys !== null && !isObject(root.keys)) c.add(['keys'], 'keys must be a mapping of key names')
  for (const [name, raw] of Object.entries(isObject(root.keys) ? root.keys : {})) {
    const key = validateKey(c, name, raw)
    if (key) keys.push(key)
  }

  const keyNames = new Map(keys.map((k) => [k.name, k]))
  const scopes: ScopeSpec[] = []
  if (root.scopes !== undefined && root.scopes !== null && !isObject(root.scopes)) c.add(['scopes'], 'scopes must be a mapping of scope to settings')
  for (const [scope, raw] of Object.entries(isObject(root.scopes) ? root.scopes : {})) {
    const spec = validateScope(c, scope, raw, keyNames)
    if (spec) scopes.push(spec)
  }

  const crioNamespaces = validateCrio(c, root.crio, new Set(scopes.map((s) => s.scope)))
  const signer = validateSigner(c, root.signer, scopes, keyNames)
  if (c.problems.length > 0) throw new TrustFileError(c.problems)
  const file = path.resolve(source.file)
  return {
    version: 1,
    default: defaultPolicy as TrustFile['default'],
    localTransports: localTransports as TrustFile['localTransports'],
    keys,
    scopes,
    crioNamespaces,
    ...(signer ? {signer} : {}),
    file,
    dir: path.dirname(file),
  }
}

function validateCrio(c: Collector, raw: unknown, scopeNames: Set<string>): TrustFile['crioNamespaces'] {
  if (raw === undefined || raw === null) return []
  if (!isObject(raw)) {
    c.add(['crio'], 'crio must be a mapping with namespaces:')
    return []
  }

  c.unknownKeys(raw, ['namespaces'], ['crio'])
  if (raw.namespaces === undefined || raw.namespaces === null) return []
  if (!isObject(raw.namespaces)) {
    c.add(['crio', 'namespaces'], 'crio.namespaces must map Kubernetes namespace names to {scopes: [...]}')
    return []
  }

  const out: TrustFile['crioNamespaces'] = []
  for (const [namespace, value] of Object.entries(raw.namespaces)) {
    const at = ['crio', 'namespaces', namespace]
    if (!NAMESPACE.test(namespace)) c.add(at, `"${namespace}" is not a Kubernetes namespace name (lowercase letters, digits and -)`)
    if (!isObject(value)) {
      c.add(at, 'a namespace must be a mapping with scopes: [scope names]')
      continue
    }

    c.unknownKeys(value, ['scopes'], at)
    const list = value.scopes
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) {
      c.add([...at, 'scopes'], 'scopes must be a list of scopes defined under the top-level scopes:')
      continue
    }

    for (const [i, scope] of (list as string[]).entries()) {
      if (!scopeNames.has(scope)) c.add([...at, 'scopes', i], `scope "${scope}" is not defined under scopes:`)
    }

    out.push(c.withLine({namespace, scopes: list as string[]}, at))
  }

  return out
}
