import {goString, type JsonNode, parseStrictJson, StrictJsonError, strictObject} from './strict-json.js'

/**
 * The simple-signing payload, parsed as containers/image's
 * signature/simple.go does (untrustedSignature.strictUnmarshalJSON):
 * exactly "critical" and "optional" at the top; "optional" any keys, each
 * once, "creator" a string and "timestamp" an integer; "critical" exactly
 * type, image and identity; image exactly docker-manifest-digest; identity
 * exactly docker-reference. Anything else is an invalid signature. Sigstore
 * payloads (signature/internal/sigstore_payload.go) are the same but for
 * their type and an "optional" that may be null (cosign writes that).
 */
export const SIMPLE_SIGNING_TYPE = 'atomic container signature'
export const SIGSTORE_SIGNING_TYPE = 'cosign container image signature'

export interface SimplePayload {
  type: string
  dockerManifestDigest: string
  dockerReference: string
}

function checkOptional(node: JsonNode, nullAllowed: boolean): void {
  if (nullAllowed && node.kind === 'literal' && node.value === null) return
  const optional = strictObject(node, 'optional')
  const creator = optional.get('creator')
  if (creator) goString(creator, 'optional.creator')
  const timestamp = optional.get('timestamp')
  if (!timestamp || (timestamp.kind === 'literal' && timestamp.value === null)) return
  if (timestamp.kind !== 'number' || !Number.isFinite(timestamp.value)) throw new StrictJsonError('optional.timestamp: cannot unmarshal into a number')
  if (!Number.isInteger(timestamp.value) || Math.abs(timestamp.value) >= 2 ** 63) throw new StrictJsonError('Field optional.timestamp is not is not an integer')
}

/** The payload's fields, or a StrictJsonError saying what containers/image refuses. */
export function parseSimplePayload(text: string, expectedType = SIMPLE_SIGNING_TYPE): SimplePayload {
  const top = strictObject(parseStrictJson(text), 'the payload', ['critical', 'optional'])
  checkOptional(top.get('optional')!, expectedType === SIGSTORE_SIGNING_TYPE)
  const critical = strictObject(top.get('critical')!, 'critical', ['type', 'image', 'identity'])
  const type = goString(critical.get('type')!, 'critical.type')
  if (type !== expectedType) throw new StrictJsonError(`Unrecognized signature type ${type}`)
  const image = strictObject(critical.get('image')!, 'critical.image', ['docker-manifest-digest'])
  const identity = strictObject(critical.get('identity')!, 'critical.identity', ['docker-reference'])
  return {
    type,
    dockerManifestDigest: goString(image.get('docker-manifest-digest')!, 'critical.image.docker-manifest-digest'),
    dockerReference: goString(identity.get('docker-reference')!, 'critical.identity.docker-reference'),
  }
}

/** parseSimplePayload, with a refusal as a reason instead of an exception. */
export function readSimplePayload(text: string, expectedType?: string): SimplePayload | {refused: string} {
  try {
    return parseSimplePayload(text, expectedType)
  } catch (error) {
    if (error instanceof StrictJsonError) return {refused: `the signed payload is refused as containers/image refuses it: ${error.message}`}
    throw error
  }
}
