/**
 * The extensions of an X.509 certificate, read from its DER: node:crypto's
 * X509Certificate does not expose path length, name constraints or which
 * extensions are critical, and Go's x509.Verify (which containers/image's
 * pki check calls) enforces all three.
 */
export interface CertificateExtension {
  oid: string
  critical: boolean
  value: Uint8Array
}

interface Tlv {
  tag: number
  contentStart: number
  end: number
}

class DerError extends Error {}

/** One tag-length-value at `at`; definite lengths only, as DER requires. */
function readTlv(der: Uint8Array, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new DerError('truncated')
  const tag = der[at]
  let length = der[at + 1]
  let contentStart = at + 2
  if (length & 0x80) {
    const bytes = length & 0x7f
    if (bytes === 0 || bytes > 4 || contentStart + bytes > limit) throw new DerError('bad length')
    length = 0
    for (let i = 0; i < bytes; i++) length = length * 256 + der[contentStart + i]
    contentStart += bytes
  }

  const end = contentStart + length
  if (end > limit) throw new DerError('truncated')
  return {tag, contentStart, end}
}

/** The elements inside a constructed value. */
function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = []
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readTlv(der, at, parent.end)
    out.push(child)
    at = child.end
  }

  return out
}

function decodeOid(bytes: Uint8Array): string {
  const arcs: number[] = []
  let value = 0
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f)
    if (byte & 0x80) continue
    if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80)
    else arcs.push(value)
    value = 0
  }

  return arcs.join('.')
}

const SEQUENCE = 0x30
const OID = 0x06
const BOOLEAN = 0x01
const OCTET_STRING = 0x04
const EXTENSIONS = 0xa3

/** Every extension of a DER certificate; undefined when the DER cannot be read. */
export function certificateExtensions(der: Uint8Array): CertificateExtension[] | undefined {
  try {
    const certificate = readTlv(der, 0, der.length)
    const [tbs] = children(der, certificate)
    if (certificate.tag !== SEQUENCE || tbs?.tag !== SEQUENCE) return undefined
    const wrapper = children(der, tbs).find((t) => t.tag === EXTENSIONS)
    if (!wrapper) return []
    const [list] = children(der, wrapper)
    return children(der, list).map((extension) => {
      const parts = children(der, extension)
      const oid = parts.find((p) => p.tag === OID)
      const critical = parts.find((p) => p.tag === BOOLEAN)
      const value = parts.find((p) => p.tag === OCTET_STRING)
      if (!oid || !value) throw new DerError('extension without id or value')
      return {
        oid: decodeOid(der.subarray(oid.contentStart, oid.end)),
        critical: critical !== undefined && der[critical.contentStart] !== 0,
        value: der.subarray(value.contentStart, value.end),
      }
    })
  } catch (error) {
    if (error instanceof DerError) return undefined
    throw error
  }
}

/** basicConstraints' pathLenConstraint (an INTEGER after the cA flag): undefined when absent, NaN when unreadable. */
export function pathLength(basicConstraints: Uint8Array): number | undefined {
  try {
    const sequence = readTlv(basicConstraints, 0, basicConstraints.length)
    const integer = children(basicConstraints, sequence).find((t) => t.tag === 0x02)
    if (!integer) return undefined
    const bytes = basicConstraints.subarray(integer.contentStart, integer.end)
    if (bytes.length === 0 || bytes.length > 4 || bytes[0] & 0x80) return Number.NaN
    return bytes.reduce((value, byte) => value * 256 + byte, 0)
  } catch (error) {
    if (error instanceof DerError) return Number.NaN
    throw error
  }
}
