import {type DockerReference, parseNamedReference} from './reference.js'
import {
  ALL_FEATURES,
  GPG_KEY_TYPES,
  type GpgKeyType,
  type PolicyFeatures,
  type PolicyRequirement,
  type SignedByRequirement,
  type SignedIdentity,
  type SigstoreSignedRequirement,
} from './types.js'

/**
 * The constructors every requirement goes through, whether parsed from a file
 * or built by the planner, so both pass the same checks. They throw
 * PolicyRuleError with containers/image's own wording; the parser adds the
 * location.
 */
export class PolicyRuleError extends Error {}

function fail(message: string): never {
  throw new PolicyRuleError(message)
}

export function newAcceptAnything(): PolicyRequirement {
  return {type: 'insecureAcceptAnything'}
}

export function newReject(): PolicyRequirement {
  return {type: 'reject'}
}

export function newSignedIdentity(identity: SignedIdentity, features: PolicyFeatures = ALL_FEATURES): SignedIdentity {
  switch (identity.type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository': {
      return {type: identity.type}
    }

    case 'exactReference': {
      const ref = parseIdentityReference(identity.dockerReference)
      if (typeof ref === 'string') fail(`Invalid format of dockerReference ${identity.dockerReference}: ${ref}`)
      if (!ref.tag && !ref.digest) fail(`dockerReference ${identity.dockerReference} contains neither a tag nor digest`)
      return {type: 'exactReference', dockerReference: identity.dockerReference}
    }

    case 'exactRepository': {
      const ref = parseIdentityReference(identity.dockerRepository)
      if (typeof ref === 'string') fail(`Invalid format of dockerRepository ${identity.dockerRepository}: ${ref}`)
      return {type: 'exactRepository', dockerRepository: identity.dockerRepository}
    }

    case 'remapIdentity': {
      if (!features.remapIdentity) fail('Unknown policy reference match type "remapIdentity" (needs containers/image 5.9)')
      for (const [name, value] of [
        ['prefix', identity.prefix],
        ['signedPrefix', identity.signedPrefix],
      ] as const) {
        if (!isValidPrefix(value)) fail(`${name} "${value}" is not valid`)
      }

      return {type: 'remapIdentity', prefix: identity.prefix, signedPrefix: identity.signedPrefix}
    }

    default: {
      fail(`Unknown policy reference match type "${(identity as {type: string}).type}"`)
    }
  }
}

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*'
/** host[:port], then optionally repository path components: the first component is always a host. */
const PREFIX_RE = new RegExp(`^${DOMAIN}(?:/${PATH_COMPONENT})*$`)

/**
 * A remap prefix is a host[:port] with an optional repository path, without
 * scheme, tag, digest or trailing /. A single label ("a", "busybox") is a
 * host here, so containers/image accepts it; "a_b" is not.
 */
function isValidPrefix(prefix: string): boolean {
  return PREFIX_RE.test(prefix)
}

/** The digest algorithms containers/image knows, with their hex lengths (lowercase hex only). */
const DIGEST_LENGTHS: Record<string, number> = {sha256: 64, sha384: 96, sha512: 128}

/**
 * A dockerReference or dockerRepository as containers/image parses it: no
 * transport prefix (`docker://` is a format error there), no 64-hex name, and
 * a digest of a known algorithm and length.
 */
function parseIdentityReference(input: string): DockerReference | string {
  if (input.includes('://')) return 'invalid reference format (no transport prefix such as docker:// here)'
  let ref = parseNamedReference(input)
  // A first component with a dot but not a valid host ("a_b.example.com/x")
  // is read by containers/image as a repository path component instead.
  if (typeof ref === 'string' && ref.startsWith('invalid registry host')) {
    const asPath = parseNamedReference(`docker.io/${input}`)
    if (typeof asPath !== 'string') ref = asPath
  }

  if (typeof ref === 'string') return `invalid reference format: ${ref}`
  if (/^[a-f0-9]{64}$/.test(input)) return `invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`
  if (ref.digest) {
    const [algorithm, hex] = ref.digest.split(':')
    if (!(algorithm in DIGEST_LENGTHS)) return `unsupported digest algorithm in ${ref.digest}`
    if (!new RegExp(`^[a-f0-9]{${DIGEST_LENGTHS[algorithm]}}$`).test(hex)) return `invalid checksum digest format in ${ref.digest}`
  }

  return ref
}

function checkBase64(name: string, value: string): void {
  // Go decodes []byte from padded standard base64; embedded newlines are allowed.
  const compact = value.replaceAll(/[\r\n]/g, '')
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(compact)) {
    const bad = [...compact].findIndex((ch) => !/[A-Za-z0-9+/=]/.test(ch))
    fail(`${name}: illegal base64 data at input byte ${bad === -1 ? compact.length : bad}`)
  }
}

export function newSignedBy(fields: Omit<SignedByRequirement, 'type'>, features: PolicyFeatures = ALL_FEATURES): SignedByRequirement {
  if ((fields.keyType as string) === '' || fields.keyType === undefined) fail('invalid keyType ""')
  if (!(GPG_KEY_TYPES as readonly string[]).includes(fields.keyType)) fail(`Unrecognized keyType value "${fields.keyType}"`)
  if (fields.keyPaths !== undefined && !features.signedByKeyPaths) fail('Unknown key "keyPaths" (signedBy.keyPaths needs containers/image 5.22)')
  // As in containers/image: exactly one of the three keys is present, and the
  // one present holds a key source (keyPath "" does not; keyPaths [] does).
  const present = [fields.keyPath, fields.keyPaths, fields.keyData].filter((value) => value !== undefined).length
  if (present === 0) fail('Exactly one of keyPath, keyPaths and keyData must be specified, none of them present')
  if (present > 1) fail('Exactly one of keyPath, keyPaths and keyData must be specified, more than one present')
  if (fields.keyPath === '') fail('exactly one of keyPath, keyPaths and keyData must be specified (keyPath is empty)')
  if (fields.keyData !== undefined) checkBase64('keyData', fields.keyData)
  const out: SignedByRequirement = {type: 'signedBy', keyType: fields.keyType as GpgKeyType}
  if (fields.keyPath !== undefined) out.keyPath = fields.keyPath
  if (fields.keyPaths !== undefined) out.keyPaths = [...fields.keyPaths]
  if (fields.keyData !== undefined) out.keyData = fields.keyData
  if (fields.signedIdentity !== undefined) out.signedIdentity = newSignedIdentity(fields.signedIdentity, features)
  return out
}

const SIGSTORE_KEY_SOURCES = ['keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio', 'pki'] as const
const REKOR_SOURCES = ['rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas'] as const

export function newSigstoreSigned(
  fields: Omit<SigstoreSignedRequirement, 'type'>,
  features: PolicyFeatures = ALL_FEATURES,
): SigstoreSignedRequirement {
  if (!features.sigstoreSigned) fail('Unknown policy requirement type "sigstoreSigned" (needs containers/image 5.22)')
  const gated: Array<[keyof typeof fields, boolean, string]> = [
    ['keyPaths', features.sigstoreKeyLists, '5.33'],
    ['keyDatas', features.sigstoreKeyLists, '5.33'],
    ['rekorPublicKeyPaths', features.sigstoreKeyLists, '5.33'],
    ['rekorPublicKeyDatas', features.sigstoreKeyLists, '5.33'],
    ['fulcio', features.sigstoreFulcioRekor, '5.24'],
    ['rekorPublicKeyPath', features.sigstoreFulcioRekor, '5.24'],
    ['rekorPublicKeyData', features.sigstoreFulcioRekor, '5.24'],
    ['pki', features.sigstorePki, '5.35'],
  ]
  for (const [key, supported, version] of gated) {
    if (fields[key] !== undefined && !supported) fail(`Unknown key "${key}" (sigstoreSigned.${key} needs containers/image ${version})`)
  }

  const sources = SIGSTORE_KEY_SOURCES.filter((key) => fields[key] !== undefined)
  if (features.sigstoreKeyLists) {
    if (sources.length !== 1) fail('exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified')
  } else {
    if (fields.keyPath !== undefined && fields.keyData !== undefined) fail('keyPath and keyData cannot be used simultaneously')
    if (sources.length === 0) fail('At least one of keyPath and keyData must be specified')
  }

  for (const list of ['keyPaths', 'keyDatas', 'rekorPublicKeyPaths', 'rekorPublicKeyDatas'] as const) {
    if (fields[list] !== undefined && fields[list]!.length === 0) fail(`"${list}" contains no entries`)
  }

  const rekor = REKOR_SOURCES.filter((key) => fields[key] !== undefined)
  if (rekor.length > 1) fail('at most one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas can be used')
  if (fields.fulcio !== undefined && rekor.length === 0) fail('fulcio requires a Rekor public key')
  if (fields.pki !== undefined && rekor.length > 0) fail('pki cannot be used with a Rekor public key')
  if (fields.pki !== undefined) checkPki(fields.pki)
  if (fields.keyData !== undefined) checkBase64('keyData', fields.keyData)
  for (const data of fields.keyDatas ?? []) checkBase64('keyDatas', data)

  const out: SigstoreSignedRequirement = {type: 'sigstoreSigned'}
  for (const key of [...SIGSTORE_KEY_SOURCES, ...REKOR_SOURCES] as const) {
    if (fields[key] !== undefined) (out as unknown as Record<string, unknown>)[key] = fields[key]
  }

  if (fields.signedIdentity !== undefined) out.signedIdentity = newSignedIdentity(fields.signedIdentity, features)
  return out
}

/**
 * As containers/image's PKI constructor: one CA roots source, at most one
 * intermediates source, and a subject. A path counts when not empty; inline
 * data counts when present (Go's []byte), even when empty.
 */
function checkPki(pki: Record<string, string>): void {
  const hasPath = (key: string) => pki[key] !== undefined && pki[key] !== ''
  const hasData = (key: string) => pki[key] !== undefined
  if (hasPath('caRootsPath') && hasData('caRootsData')) fail('caRootsPath and caRootsData cannot be used simultaneously')
  if (!hasPath('caRootsPath') && !hasData('caRootsData')) fail('At least one of caRootsPath and caRootsData must be specified')
  if (hasPath('caIntermediatesPath') && hasData('caIntermediatesData')) fail('caIntermediatesPath and caIntermediatesData cannot be used simultaneously')
  if (!hasPath('subjectEmail') && !hasPath('subjectHostname')) fail('At least one of subjectEmail, subjectHostname must be specified')
}

export function newSignedBaseLayer(baseLayerIdentity: SignedIdentity, features: PolicyFeatures = ALL_FEATURES): PolicyRequirement {
  return {type: 'signedBaseLayer', baseLayerIdentity: newSignedIdentity(baseLayerIdentity, features)}
}

/** Re-runs a requirement through its constructor (for hand-built or merged policies). */
export function checkRequirement(requirement: PolicyRequirement, features: PolicyFeatures = ALL_FEATURES): PolicyRequirement {
  switch (requirement.type) {
    case 'insecureAcceptAnything': {
      return newAcceptAnything()
    }

    case 'reject': {
      return newReject()
    }

    case 'signedBy': {
      const {type: _type, ...fields} = requirement
      return newSignedBy(fields, features)
    }

    case 'sigstoreSigned': {
      const {type: _type, ...fields} = requirement
      return newSigstoreSigned(fields, features)
    }

    case 'signedBaseLayer': {
      return newSignedBaseLayer(requirement.baseLayerIdentity, features)
    }

    default: {
      fail(`Unknown policy requirement type "${(requirement as {type: string}).type}"`)
    }
  }
}
