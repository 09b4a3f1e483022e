import {DOMAIN, type DockerReference, PATH_COMPONENT, parseImageReference, referenceName, referenceString} from '../policy/reference.js'
import type {SignedIdentity} from '../policy/types.js'

/**
 * Does a signature's claimed docker-reference satisfy a policy's signedIdentity?
 * Mirrors containers/image's signature/policy_reference_match.go, without I/O.
 * Anything this module cannot decide the way the engine would is 'unknown',
 * never a match: a caller must treat it as inconclusive.
 */
export type IdentityVerdict = {verdict: 'match'} | {verdict: 'mismatch'; reason: string} | {verdict: 'unknown'; reason: string}

type Parsed = {ref: DockerReference} | {verdict: 'mismatch' | 'unknown'; reason: string}

const MATCH: IdentityVerdict = {verdict: 'match'}
const mismatch = (reason: string): IdentityVerdict => ({verdict: 'mismatch', reason})
const unknown = (reason: string): IdentityVerdict => ({verdict: 'unknown', reason})

// go-digest knows these algorithms; their hex is lowercase and of a fixed length.
const DIGEST_HEX_LENGTH: Record<string, number> = {sha256: 64, sha384: 96, sha512: 128}

// The distribution/reference grammar for a remap prefix: a host, or a host and a path.
const REMAP_DOMAIN_RE = new RegExp(`^${DOMAIN}$`)
const REMAP_NAME_RE = new RegExp(`^${DOMAIN}/${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`)

/**
 * reference.ParseNormalizedNamed: short names expand to docker.io/library/,
 * index.docker.io becomes docker.io, and the result must be a valid name with
 * an optional tag and/or digest. Unlike `podman pull`, no docker:// prefix.
 */
export function parseNormalizedNamed(input: string): Parsed {
  if (/^[a-f0-9]{64}$/.test(input)) return {verdict: 'mismatch', reason: `"${input}" is a 64-hex image ID, not a reference`}
  if (input.startsWith('docker://')) return {verdict: 'mismatch', reason: `"${input}" carries a transport prefix`}
  // Bracketed IPv6 hosts: refused by c/image 5.23, accepted by newer versions.
  if (input.startsWith('[')) return {verdict: 'unknown', reason: `"${input}" names an IPv6 host, which containers/image versions parse differently`}
  const parsed = parseImageReference(input)
  if (typeof parsed === 'string') return {verdict: 'mismatch', reason: `"${input}" is not a valid reference: ${parsed}`}
  const ref = {...parsed}
  // parseImageReference leaves docker.io/busybox as is; distribution adds library/.
  if (ref.domain === 'docker.io' && !ref.path.includes('/')) ref.path = `library/${ref.path}`
  if (referenceName(ref).length > 255) return {verdict: 'mismatch', reason: `"${input}": repository name longer than 255 characters`}
  if (ref.digest) {
    const [algorithm, hex] = ref.digest.split(':')
    const length = DIGEST_HEX_LENGTH[algorithm]
    if (length === undefined) return {verdict: 'unknown', reason: `"${input}" uses digest algorithm ${algorithm}, which this check does not know`}
    if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) return {verdict: 'mismatch', reason: `"${input}" has an invalid ${algorithm} digest`}
  }

  return {ref}
}

/** The reference the docker transport pulls: normalised, with :latest when it has neither tag nor digest. */
export function pulledReference(input: string): DockerReference | string {
  const parsed = parseNormalizedNamed(input.startsWith('docker://') ? input.slice('docker://'.length) : input)
  if (!('ref' in parsed)) return parsed.reason
  return parsed.ref.tag || parsed.ref.digest ? parsed.ref : {...parsed.ref, tag: 'latest'}
}

const isNameOnly = (ref: DockerReference) => !ref.tag && !ref.digest

function exactlyEqual(intended: DockerReference, signed: DockerReference): IdentityVerdict {
  if (isNameOnly(signed)) return mismatch(`the signature claims ${referenceString(signed)}, with neither tag nor digest`)
  return referenceString(signed) === referenceString(intended) ? MATCH : mismatch(`signed for ${referenceString(signed)}, not ${referenceString(intended)}`)
}

function sameRepository(intended: DockerReference, signed: DockerReference): IdentityVerdict {
  return referenceName(signed) === referenceName(intended) ? MATCH : mismatch(`signed for repository ${referenceName(signed)}, not ${referenceName(intended)}`)
}

/** matchRepoDigestOrExact on parsed values: a tag (even with a digest) must match exactly; a digest only the repository. */
function repoDigestOrExact(intended: DockerReference, signed: DockerReference): IdentityVerdict {
  if (isNameOnly(signed)) return mismatch(`the signature claims ${referenceString(signed)}, with neither tag nor digest`)
  if (intended.tag) return exactlyEqual(intended, signed)
  // The signed manifest digest is checked against the image separately.
  if (intended.digest) return sameRepository(intended, signed)
  return mismatch(`the image reference ${referenceString(intended)} has neither tag nor digest`)
}

/** c/image's validateIdentityRemappingPrefix: host[:port], or host[:port]/path. There is no *. form. */
function remapPrefixError(name: string, prefix: string): string | undefined {
  if (REMAP_DOMAIN_RE.test(prefix) || REMAP_NAME_RE.test(prefix)) return undefined
  return `remapIdentity ${name} "${prefix}" is not valid (host[:port] or host[:port]/path, no tag, digest or *.): containers/image refuses the whole policy`
}

/** The name equals the prefix, or continues it after a '/': a prefix never matches inside a path component or a port. */
function matchesPrefix(name: string, prefix: string): boolean {
  return name === prefix || (name.startsWith(prefix) && name[prefix.length] === '/')
}

function remap(intended: DockerReference, prefix: string, signedPrefix: string): Parsed {
  if (!matchesPrefix(referenceName(intended), prefix)) return {ref: intended}
  const rewritten = signedPrefix + referenceString(intended).slice(prefix.length)
  // reference.ParseNamed: the rewritten string must already be in normalised form.
  const parsed = parseNormalizedNamed(rewritten)
  if (!('ref' in parsed)) return {verdict: parsed.verdict, reason: `remapping gives ${rewritten}: ${parsed.reason}`}
  if (referenceString(parsed.ref) !== rewritten) {
    return {verdict: 'mismatch', reason: `remapping gives ${rewritten}, which is not a normalised name (${referenceString(parsed.ref)}); containers/image refuses it`}
  }

  return parsed
}

/** Parses the policy's own reference or repository; one that does not parse means containers/image refuses the policy. */
function policyReference(field: string, value: string): Parsed {
  const parsed = parseNormalizedNamed(value)
  if ('ref' in parsed || parsed.verdict === 'unknown') return parsed
  return {verdict: 'mismatch', reason: `the policy's ${field} ${parsed.reason}; containers/image refuses the policy`}
}

/**
 * @param identity the requirement's signedIdentity; absent means matchRepoDigestOrExact
 * @param intended the pulled reference as the docker transport sees it (see pulledReference)
 * @param signed the signature's critical.identity.docker-reference
 */
export function matchSignedIdentity(identity: SignedIdentity | undefined, intended: DockerReference, signed: string): IdentityVerdict {
  const type = identity?.type ?? 'matchRepoDigestOrExact'
  const signature = parseNormalizedNamed(signed)
  if (!('ref' in signature)) return {verdict: signature.verdict, reason: `the signed identity ${signature.reason}`}
  const usesImage = type === 'matchExact' || type === 'matchRepoDigestOrExact' || type === 'matchRepository' || type === 'remapIdentity'
  if (usesImage && intended.tag && intended.digest) {
    return unknown(`${referenceString(intended)} has both a tag and a digest: skopeo refuses it, podman drops the tag`)
  }

  if (usesImage && isNameOnly(intended)) return unknown(`${referenceString(intended)} has neither tag nor digest; the docker transport adds :latest`)
  switch (identity?.type) {
    case undefined:
    case 'matchRepoDigestOrExact': {
      return repoDigestOrExact(intended, signature.ref)
    }

    case 'matchExact': {
      return exactlyEqual(intended, signature.ref)
    }

    case 'matchRepository': {
      return sameRepository(intended, signature.ref)
    }

    case 'exactReference': {
      const wanted = policyReference('dockerReference', identity.dockerReference)
      if (!('ref' in wanted)) return wanted
      if (isNameOnly(wanted.ref)) return mismatch(`the policy's dockerReference ${identity.dockerReference} contains neither a tag nor digest; containers/image refuses the policy`)
      return exactlyEqual(wanted.ref, signature.ref)
    }

    case 'exactRepository': {
      const wanted = policyReference('dockerRepository', identity.dockerRepository)
      if (!('ref' in wanted)) return wanted
      return sameRepository(wanted.ref, signature.ref)
    }

    case 'remapIdentity': {
      const invalid = remapPrefixError('prefix', identity.prefix) ?? remapPrefixError('signedPrefix', identity.signedPrefix)
      if (invalid) return mismatch(invalid)
      const remapped = remap(intended, identity.prefix, identity.signedPrefix)
      if (!('ref' in remapped)) return remapped
      return repoDigestOrExact(remapped.ref, signature.ref)
    }

    default: {
      return unknown(`signedIdentity type ${JSON.stringify((identity as {type: unknown}).type)} is not evaluated here`)
    }
  }
}
