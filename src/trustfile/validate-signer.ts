import type {KeySpec, ScopeSpec, SignerSpec} from './types.js'
import {type Collector, FINGERPRINT, isObject} from './collector.js'

const SIGNER_KEYS = ['fingerprint', 'gnupgHome', 'hosts']
const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$/

/**
 * `signer:`: the signing host's GPG key. The scopes it signs for are the
 * ones with lookasideStaging; each must be one that pulling hosts check
 * (policy: signed, with a lookaside URL to read from), and the signer's key
 * must be one they trust. What only the key files can tell (an unpinned key)
 * is checked again at apply.
 */
export function validateSigner(c: Collector, raw: unknown, scopes: ScopeSpec[], keys: Map<string, KeySpec>): SignerSpec | undefined {
  if (raw === undefined || raw === null) return undefined
  const at = ['signer']
  if (!isObject(raw)) {
    c.add(at, 'signer must be a mapping with fingerprint (and optionally gnupgHome, hosts)')
    return undefined
  }

  c.unknownKeys(raw, SIGNER_KEYS, at)
  let fingerprint: string | undefined
  if (typeof raw.fingerprint !== 'string') c.add(at, 'signer needs fingerprint: the primary key fingerprint of the signing key')
  else {
    fingerprint = raw.fingerprint.replaceAll(/\s/g, '').toUpperCase()
    if (!FINGERPRINT.test(fingerprint)) {
      c.add([...at, 'fingerprint'], `fingerprint "${raw.fingerprint}" must be 40 (v4) or 64 (v6) hexadecimal digits`)
      fingerprint = undefined
    }
  }

  const gnupgHome = c.string(raw, 'gnupgHome', at)
  let hosts: string[] | undefined
  if (raw.hosts !== undefined && raw.hosts !== null) {
    if (!Array.isArray(raw.hosts) || raw.hosts.length === 0 || raw.hosts.some((h) => typeof h !== 'string' || !HOSTNAME.test(h))) {
      c.add([...at, 'hosts'], 'hosts must be a non-empty list of hostnames')
    } else hosts = raw.hosts as string[]
  }

  const signing = scopes.filter((s) => s.lookasideStaging)
  if (signing.length === 0) c.add(at, 'no scope has lookasideStaging: the signing host signs for the scopes that carry it, so name at least one')
  for (const spec of signing) {
    const where = ['scopes', spec.scope, 'lookasideStaging']
    if (spec.policy !== 'signed') {
      c.add(where, `scope "${spec.scope}" is signed for by this signer, so pulling hosts must check it: it needs policy: signed, not ${spec.policy}`)
      continue
    }

    if (!spec.lookaside || spec.lookaside.startsWith('file:')) {
      c.add(where, `scope "${spec.scope}" needs a lookaside: http(s) URL: it is where pulling hosts read the signatures this host stages`)
    }

    const specs = spec.keys.map((k) => keys.get(k)).filter((k): k is KeySpec => k !== undefined)
    if (specs.some((k) => k.type !== 'gpg')) c.add(['scopes', spec.scope, 'keys'], `scope "${spec.scope}": the signer signs with GPG (simple signing), so its keys must be gpg keys`)
    // With every key pinned, a mismatch is visible here already.
    const pins = specs.flatMap((k) => k.fingerprints ?? [])
    if (fingerprint && specs.every((k) => k.fingerprints) && !pins.includes(fingerprint)) {
      c.add([...at, 'fingerprint'], `signer key ${fingerprint} is not a key that scope "${spec.scope}" trusts (${pins.join(', ')}): pulling hosts would reject every signature it makes`)
    }
  }

  if (!fingerprint) return undefined
  return c.withLine({fingerprint, ...(gnupgHome ? {gnupgHome} : {}), ...(hosts ? {hosts} : {})}, at)
}
