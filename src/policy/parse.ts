import {deepFreeze} from '../lib/deep-freeze.js'
import {ParseError} from '../lib/errors.js'
import {childPath, decodeJsonBytes, type JsonEntry, type JsonNode, parseStrictJson} from './json.js'
import {
  newAcceptAnything,
  newReject,
  newSignedBaseLayer,
  newSignedBy,
  newSignedIdentity,
  newSigstoreSigned,
  PolicyRuleError,
} from './requirements.js'
import {checkScope} from './scopes.js'
import {
  ALL_FEATURES,
  type GpgKeyType,
  KNOWN_TRANSPORTS,
  type Policy,
  type PolicyFeatures,
  type PolicyRequirement,
  type PolicyTransport,
  type SignedIdentity,
} from './types.js'

/**
 * Strict policy.json parser: it rejects what containers/image rejects
 * (unknown and duplicate keys, empty requirement lists, bad scopes) and says
 * where, with file, line, column and JSON path.
 */

export interface ParsedPolicy {
  policy: Policy
  warnings: string[]
}

interface Context {
  file: string
  features: PolicyFeatures
  /** Each without the file name, which parsePolicy puts in front: the same text parsed for another path warns the same. */
  warnings: string[]
}

function fail(ctx: Context, node: {pos: {line: number; column: number}}, path: string, message: string): never {
  throw new ParseError(message, {file: ctx.file, line: node.pos.line, column: node.pos.column, path})
}

function warn(ctx: Context, node: {pos: {line: number; column: number}}, path: string, message: string): void {
  ctx.warnings.push(`:${node.pos.line}:${node.pos.column} (${path}): ${message}`)
}

function describe(node: JsonNode): string {
  return node.kind === 'null' ? 'null' : node.kind
}

function expectObject(ctx: Context, node: JsonNode, path: string): Extract<JsonNode, {kind: 'object'}> {
  if (node.kind !== 'object') fail(ctx, node, path, `JSON object expected, got ${describe(node)}`)
  return node
}

/** Checks an object's key set and returns its entries by name. */
function readFields(
  ctx: Context,
  node: JsonNode,
  path: string,
  allowed: readonly string[],
  required: readonly string[] = [],
): Map<string, JsonEntry> {
  const object = expectObject(ctx, node, path)
  const fields = new Map<string, JsonEntry>()
  for (const entry of object.entries) {
    if (!allowed.includes(entry.key)) fail(ctx, {pos: entry.keyPos}, path, `Unknown key "${entry.key}"`)
    fields.set(entry.key, entry)
  }

  for (const key of required) {
    if (!fields.has(key)) fail(ctx, object, path, `Key "${key}" missing in a JSON object`)
  }

  return fields
}

function readString(ctx: Context, entry: JsonEntry | undefined, path: string): string | undefined {
  if (!entry) return undefined
  if (entry.value.kind !== 'string') fail(ctx, entry.value, childPath(path, entry.key), `expected a string, got ${describe(entry.value)}`)
  return entry.value.value
}

/**
 * A list of strings. With nullItems, a null item is read as "" as Go's
 * []string does, with a warning: "" names no key.
 */
function readStringList(ctx: Context, entry: JsonEntry | undefined, path: string, nullItems = false): string[] | undefined {
  if (!entry) return undefined
  const here = childPath(path, entry.key)
  if (entry.value.kind !== 'array') fail(ctx, entry.value, here, `expected an array of strings, got ${describe(entry.value)}`)
  return entry.value.items.map((item, i) => {
    if (item.kind === 'null' && nullItems) {
      warn(ctx, item, `${here}[${i}]`, 'null is read as an empty path by containers/image, which names no key')
      return ''
    }

    if (item.kind !== 'string') fail(ctx, item, `${here}[${i}]`, `expected a string, got ${describe(item)}`)
    return item.value
  })
}

/**
 * Key bytes as Go's []byte reads them: a base64 string (the constructor
 * checks it), or an array of byte values 0-255 (null items read as 0), kept
 * as the same bytes in base64, with a warning.
 */
function readKeyData(ctx: Context, entry: JsonEntry, path: string): string {
  const here = childPath(path, entry.key)
  const node = entry.value
  if (node.kind === 'string') return node.value
  if (node.kind !== 'array') fail(ctx, node, here, `expected a base64 string, got ${describe(node)} (json: cannot unmarshal ${describe(node)} into Go value of type []uint8)`)
  const bytes = node.items.map((item, i) => {
    if (item.kind === 'null') return 0
    if (item.kind !== 'number' || !/^(?:0|[1-9]\d*)$/.test(item.raw) || item.value > 255) {
      const shown = item.kind === 'number' ? `number ${item.raw}` : describe(item)
      fail(ctx, item, `${here}[${i}]`, `expected a byte value 0-255, got ${shown} (json: cannot unmarshal ${shown} into Go value of type uint8)`)
    }

    return item.value
  })
  warn(ctx, node, here, 'key data written as an array of byte values: containers/image reads it as those bytes; imagetrust writes it back in base64')
  return Buffer.from(bytes).toString('base64')
}

/**
 * sigstoreSigned's keyPath or keyData. containers/image 5.23 counts the keys
 * present, so a null or empty one still is the requirement's one key source
 * (it loads, then rejects every image). From 5.24 it counts values: an empty
 * or null keyPath, and a null keyData, are no key source at all (undefined
 * here); an empty keyData string still is one.
 */
function sigstoreSingleKey(ctx: Context, entry: JsonEntry | undefined, path: string, key: 'keyPath' | 'keyData'): string | undefined {
  if (!entry) return undefined
  const isNull = entry.value.kind === 'null'
  const value = isNull ? '' : key === 'keyData' ? readKeyData(ctx, entry, path) : readString(ctx, entry, path)!
  const countsValues = ctx.features.sigstoreFulcioRekor
  if (countsValues && (isNull || (key === 'keyPath' && value === ''))) return undefined
  if (value === '') {
    warn(ctx, entry.value, childPath(path, key), `${key} is ${isNull ? 'null' : 'empty'}: containers/image loads this requirement, but no key can verify a signature, so it rejects every image`)
  }

  return value
}

function readStringMap(ctx: Context, entry: JsonEntry | undefined, path: string, allowed: readonly string[]): Record<string, string> | undefined {
  if (!entry) return undefined
  const here = childPath(path, entry.key)
  const fields = readFields(ctx, entry.value, here, allowed)
  const out: Record<string, string> = {}
  for (const [key, field] of fields) out[key] = readString(ctx, field, here)!
  return out
}

/** Runs a constructor, turning its rule errors into located parse errors. */
function build<T>(ctx: Context, node: JsonNode, path: string, make: () => T): T {
  try {
    return make()
  } catch (error) {
    if (error instanceof PolicyRuleError) fail(ctx, node, path, error.message)
    throw error
  }
}

const IDENTITY_KEYS: Record<string, readonly string[]> = {
  matchExact: [],
  matchRepoDigestOrExact: [],
  matchRepository: [],
  exactReference: ['dockerReference'],
  exactRepository: ['dockerRepository'],
  remapIdentity: ['prefix', 'signedPrefix'],
}

function parseIdentity(ctx: Context, node: JsonNode, path: string): SignedIdentity {
  if (node.kind === 'null') fail(ctx, node, path, 'signedIdentity must be an object, not null')
  const object = expectObject(ctx, node, path)
  const typeEntry = object.entries.find((entry) => entry.key === 'type')
  if (!typeEntry) fail(ctx, node, path, 'Key "type" missing in a JSON object')
  const type = readString(ctx, typeEntry, path)!
  const extra = IDENTITY_KEYS[type]
  if (!extra) fail(ctx, typeEntry.value, childPath(path, 'type'), `Unknown policy reference match type "${type}"`)
  const fields = readFields(ctx, node, path, ['type', ...extra], ['type', ...extra])
  const values: Record<string, string> = {type}
  for (const key of extra) values[key] = readString(ctx, fields.get(key), path)!
  return build(ctx, node, path, () => newSignedIdentity(values as unknown as SignedIdentity, ctx.features))
}

const SIGNED_BY_SOURCES = ['keyPath', 'keyPaths', 'keyData'] as const

const SIGSTORE_FIELDS = [
  'type',
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
  'signedIdentity',
] as const

export function parseRequirement(ctx: Context, node: JsonNode, path: string): PolicyRequirement {
  const object = expectObject(ctx, node, path)
  const typeEntry = object.entries.find((entry) => entry.key === 'type')
  if (!typeEntry) fail(ctx, node, path, 'Key "type" missing in a JSON object')
  const type = readString(ctx, typeEntry, path)!
  switch (type) {
    case 'insecureAcceptAnything': {
      readFields(ctx, node, path, ['type'])
      return newAcceptAnything()
    }

    case 'reject': {
      readFields(ctx, node, path, ['type'])
      return newReject()
    }

    case 'signedBy': {
      const fields = readFields(ctx, node, path, ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'signedIdentity'])
      const present = SIGNED_BY_SOURCES.filter((key) => fields.has(key))
      const only = present.length === 1 ? fields.get(present[0])! : undefined
      if (only?.value.kind === 'null') {
        fail(ctx, only.value, childPath(path, only.key), `exactly one of keyPath, keyPaths and keyData must be specified (${only.key} is null, which containers/image reads as no key)`)
      }

      // A null beside another key source still counts as present: the constructor refuses the pair.
      const given = (key: string): JsonEntry | undefined => {
        const entry = fields.get(key)
        return entry?.value.kind === 'null' ? undefined : entry
      }

      const keyData = given('keyData')
      const identity = fields.get('signedIdentity')
      return build(ctx, node, path, () =>
        newSignedBy(
          {
            keyType: (readString(ctx, fields.get('keyType'), path) ?? '') as GpgKeyType,
            keyPath: fields.has('keyPath') ? (readString(ctx, given('keyPath'), path) ?? '') : undefined,
            keyPaths: fields.has('keyPaths') ? (readStringList(ctx, given('keyPaths'), path, true) ?? []) : undefined,
            keyData: fields.has('keyData') ? (keyData ? readKeyData(ctx, keyData, path) : '') : undefined,
            signedIdentity: identity ? parseIdentity(ctx, identity.value, childPath(path, 'signedIdentity')) : undefined,
          },
          ctx.features,
        ),
      )
    }

    case 'sigstoreSigned': {
      if (!ctx.features.sigstoreSigned) fail(ctx, typeEntry.value, path, 'Unknown policy requirement type "sigstoreSigned" (needs containers/image 5.22)')
      const fields = readFields(ctx, node, path, SIGSTORE_FIELDS)
      const identity = fields.get('signedIdentity')
      const singleKey = (key: 'keyPath' | 'keyData') => sigstoreSingleKey(ctx, fields.get(key), path, key)
      const rekorPath = fields.get('rekorPublicKeyPath')
      return build(ctx, node, path, () =>
        newSigstoreSigned(
          {
            keyPath: singleKey('keyPath'),
            keyPaths: readStringList(ctx, fields.get('keyPaths'), path, true),
            keyData: singleKey('keyData'),
            keyDatas: readStringList(ctx, fields.get('keyDatas'), path, true),
            fulcio: readStringMap(ctx, fields.get('fulcio'), path, ['caPath', 'caData', 'oidcIssuer', 'subjectEmail']),
            pki: readStringMap(ctx, fields.get('pki'), path, [
              'caRootsPath',
              'caRootsData',
              'caIntermediatesPath',
              'caIntermediatesData',
              'subjectEmail',
              'subjectHostname',
            ]),
            // From 5.24 an empty rekorPublicKeyPath is no Rekor key, as an empty keyPath is no key.
            rekorPublicKeyPath: rekorPath && (rekorPath.value.kind === 'null' || (rekorPath.value.kind === 'string' && rekorPath.value.value === '')) ? undefined : readString(ctx, rekorPath, path),
            rekorPublicKeyPaths: readStringList(ctx, fields.get('rekorPublicKeyPaths'), path, true),
            rekorPublicKeyData: readString(ctx, fields.get('rekorPublicKeyData'), path),
            rekorPublicKeyDatas: readStringList(ctx, fields.get('rekorPublicKeyDatas'), path, true),
            signedIdentity: identity ? parseIdentity(ctx, identity.value, childPath(path, 'signedIdentity')) : undefined,
          },
          ctx.features,
        ),
      )
    }

    case 'signedBaseLayer': {
      const fields = readFields(ctx, node, path, ['type', 'baseLayerIdentity'], ['baseLayerIdentity'])
      ctx.warnings.push(`:${node.pos.line}: signedBaseLayer is not implemented by containers/image and rejects every image`)
      const identity = fields.get('baseLayerIdentity')!
      return build(ctx, node, path, () => newSignedBaseLayer(parseIdentity(ctx, identity.value, childPath(path, 'baseLayerIdentity')), ctx.features))
    }

    default: {
      fail(ctx, typeEntry.value, childPath(path, 'type'), `Unknown policy requirement type "${type}"`)
    }
  }
}

function parseRequirementList(ctx: Context, node: JsonNode, path: string): PolicyRequirement[] {
  if (node.kind === 'null' || (node.kind === 'array' && node.items.length === 0)) {
    fail(ctx, node, path, 'List of verification policy requirements must not be empty')
  }

  if (node.kind !== 'array') fail(ctx, node, path, `expected an array of requirements, got ${describe(node)}`)
  return node.items.map((item, i) => parseRequirement(ctx, item, `${path}[${i}]`))
}

export interface ParseOptions {
  features?: PolicyFeatures
}

/**
 * The last policy this process parsed. An apply parses the policy.json it
 * plans to write, then reads the same bytes back after writing them: for
 * 10,000 scopes, a second parse cost a tenth of the run. Frozen, since every
 * caller that reads the same text shares it.
 */
let lastParsed: {text: string; features: PolicyFeatures; policy: Policy; warnings: string[]} | undefined

/** Takes the file's bytes (decoded as Go does) or text already decoded. */
export function parsePolicy(input: string | Uint8Array, file: string, options: ParseOptions = {}): ParsedPolicy {
  const text = typeof input === 'string' ? input : decodeJsonBytes(input)
  const features = options.features ?? ALL_FEATURES
  if (lastParsed?.text !== text || !sameFeatures(lastParsed.features, features)) {
    const ctx: Context = {file, features, warnings: []}
    const policy = deepFreeze(parsePolicyText(ctx, text))
    lastParsed = {text, features, policy, warnings: ctx.warnings}
  }

  return {policy: lastParsed.policy, warnings: lastParsed.warnings.map((warning) => `${file}${warning}`)}
}

function sameFeatures(a: PolicyFeatures, b: PolicyFeatures): boolean {
  return a === b || (Object.keys(a) as Array<keyof PolicyFeatures>).every((name) => a[name] === b[name])
}

function parsePolicyText(ctx: Context, text: string): Policy {
  const root = parseStrictJson(text, ctx.file)
  const fields = readFields(ctx, root, '$', ['default', 'transports'])
  const defaultEntry = fields.get('default')
  if (!defaultEntry) fail(ctx, root, '$', 'Default policy is missing')
  const policy: Policy = {default: parseRequirementList(ctx, defaultEntry.value, '$.default')}
  const transportsEntry = fields.get('transports')
  if (transportsEntry) policy.transports = parseTransports(ctx, transportsEntry.value)
  return policy
}

function parseTransports(ctx: Context, node: JsonNode): PolicyTransport[] {
  const transportsNode = expectObject(ctx, node, '$.transports')
  const transports: PolicyTransport[] = []
  for (const transport of transportsNode.entries) {
    const transportPath = childPath('$.transports', transport.key)
    if (!(KNOWN_TRANSPORTS as readonly string[]).includes(transport.key)) {
      ctx.warnings.push(`:${transport.keyPos.line}: transport "${transport.key}" is unknown to containers/image; its scopes never match`)
    }

    const scopesNode = expectObject(ctx, transport.value, transportPath)
    const scopes = scopesNode.entries.map((scope) => {
      const scopePath = childPath(transportPath, scope.key)
      const check = checkScope(transport.key, scope.key, ctx.features)
      if (!check.ok) fail(ctx, {pos: scope.keyPos}, scopePath, `Unknown key "${scope.key}": ${check.reason}`)
      if (check.warning) ctx.warnings.push(`:${scope.keyPos.line}: ${transport.key} scope "${scope.key}": ${check.warning}`)
      return {scope: scope.key, requirements: parseRequirementList(ctx, scope.value, scopePath)}
    })
    transports.push({name: transport.key, scopes})
  }

  return transports
}
