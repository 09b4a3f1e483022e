import type {KeySpec, PkiSpec} from './types.js'
import {type Collector, isObject} from './collector.js'

/**
 * `pki:` under a sigstore key: the CA roots (file or inline PEM), optional
 * intermediates, and the subject a signing certificate must name, as
 * containers/image 5.35+ models sigstoreSigned's `pki` (caRootsPath|caRootsData,
 * caIntermediatesPath|caIntermediatesData, subjectEmail, subjectHostname).
 * The certificates themselves are checked when the key is loaded (src/keys/pki.ts).
 */

export const PKI_KEYS = ['caRootsFile', 'caRootsData', 'caIntermediatesFile', 'caIntermediatesData', 'subjectEmail', 'subjectHostname']
const EMAIL = /^[^\s@]+@[^\s@]+$/
/** A DNS name (a leading `*.` allowed, as Go's VerifyHostname matches wildcards) or an IP address. */
const HOSTNAME = /^(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$|^[0-9a-fA-F:.]+$/

function certificateSource(c: Collector, raw: Record<string, unknown>, at: Array<string | number>, kind: 'caRoots' | 'caIntermediates'): PkiSpec['caRoots'] | undefined {
  const file = c.string(raw, `${kind}File`, at)
  const data = c.string(raw, `${kind}Data`, at)
  const given = [raw[`${kind}File`], raw[`${kind}Data`]].filter((v) => v !== undefined && v !== null).length
  if (given > 1) c.add([...at, `${kind}Data`], `${kind}File and ${kind}Data cannot be used together`)
  if (given === 0 && kind === 'caRoots') c.add(at, 'pki needs the CA roots: caRootsFile (a PEM file, relative to the trust file) or caRootsData (inline PEM)')
  if (file === undefined && data === undefined) return undefined
  return c.withLine({...(file === undefined ? {} : {file}), ...(data === undefined ? {} : {data})}, [...at, file === undefined ? `${kind}Data` : `${kind}File`])
}

export function validatePki(c: Collector, raw: unknown, keyAt: Array<string | number>, type: unknown): PkiSpec | undefined {
  if (raw === undefined || raw === null) return undefined
  const at = [...keyAt, 'pki']
  if (type !== 'sigstore') c.add([...keyAt, 'type'], 'pki is a sigstore key source: its type must be sigstore')
  if (!isObject(raw)) {
    c.add(at, `pki must be a mapping with ${PKI_KEYS.join(', ')}`)
    return undefined
  }

  c.unknownKeys(raw, PKI_KEYS, at)
  const caRoots = certificateSource(c, raw, at, 'caRoots')
  const caIntermediates = certificateSource(c, raw, at, 'caIntermediates')
  const subjectEmail = c.string(raw, 'subjectEmail', at)
  const subjectHostname = c.string(raw, 'subjectHostname', at)
  if (subjectEmail === undefined && subjectHostname === undefined && raw.subjectEmail === undefined && raw.subjectHostname === undefined) {
    c.add(at, 'pki needs subjectEmail and/or subjectHostname: without a subject, any certificate the CA issued would be trusted (containers/image refuses that too)')
  }

  if (subjectEmail !== undefined && !EMAIL.test(subjectEmail)) c.add([...at, 'subjectEmail'], `subjectEmail "${subjectEmail}" is not an email address`)
  if (subjectHostname !== undefined && !HOSTNAME.test(subjectHostname)) c.add([...at, 'subjectHostname'], `subjectHostname "${subjectHostname}" is not a hostname (no scheme, port or path)`)
  if (!caRoots) return undefined
  return c.withLine({caRoots, ...(caIntermediates ? {caIntermediates} : {}), ...(subjectEmail ? {subjectEmail} : {}), ...(subjectHostname ? {subjectHostname} : {})}, at)
}

/** A pki key is a whole sigstoreSigned requirement: it cannot share a scope (requirements in one scope are ANDed). */
export function checkPkiScope(c: Collector, keys: string[], keyNames: Map<string, KeySpec>, at: Array<string | number>): void {
  const pki = keys.filter((k) => keyNames.get(k)?.pki)
  if (pki.length > 0 && keys.length > 1) {
    c.add([...at, 'keys'], `key "${pki[0]}" (pki) must be the only key of its scope: containers/image takes one key source per sigstoreSigned requirement, and several requirements would all be demanded`)
  }
}
