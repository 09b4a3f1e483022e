import {parse as parseYaml} from 'yaml'

import {inspectGpgKeys} from '../keys/gpg.js'
import {checkSigstoreKey} from '../keys/sigstore.js'
import type {FileChange} from './types.js'

/**
 * What differs inside a drifted file, named: a scope, the default, a
 * registries.d entry, a key. `found` is what the host has now, `expected`
 * what the trust file asks for; either is absent when that side has none.
 * `change` reads from the host's side: `added` is on the host and not in the
 * trust file, `removed` is in the trust file and missing on the host.
 */
export interface DriftChange {
  what: 'scope' | 'default' | 'registries.d entry' | 'key' | 'file'
  change: 'added' | 'removed' | 'changed' | 'replaced'
  /** transport:scope for a scope, the namespace for a registries.d entry, the key file for a key. */
  name?: string
  found?: string
  expected?: string
  /** One line for people and the journal. */
  summary: string
}

type Json = unknown

function tryJson(text: string | null): Record<string, Json> | null {
  if (text === null) return null
  try {
    const value = JSON.parse(text) as unknown
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, Json>) : null
  } catch {
    return null
  }
}

/** A requirement list, short: `reject`, `accept`, `signedBy GPGKeys /etc/pki/containers/acme.gpg`. */
export function requirementText(list: Json): string {
  if (!Array.isArray(list)) return JSON.stringify(list)
  return list
    .map((r: Record<string, Json>) => {
      if (r?.type === 'insecureAcceptAnything') return 'accept'
      if (r?.type === 'reject') return 'reject'
      if (r?.type === 'signedBy') return `signedBy ${String(r.keyType)} ${String(r.keyPath ?? (Array.isArray(r.keyPaths) ? r.keyPaths.join(',') : 'keyData'))}`
      if (r?.type === 'sigstoreSigned' && r.pki && typeof r.pki === 'object') return `sigstoreSigned pki ${Object.values(r.pki).join(' ')}`
      if (r?.type === 'sigstoreSigned') return `sigstoreSigned ${String(r.keyPath ?? (Array.isArray(r.keyPaths) ? r.keyPaths.join(',') : 'keyData'))}`
      return JSON.stringify(r)
    })
    .join(' + ')
}

function entry(what: DriftChange['what'], name: string | undefined, found: string | undefined, expected: string | undefined, verb?: DriftChange['change']): DriftChange {
  const change = verb ?? (found === undefined ? 'removed' : expected === undefined ? 'added' : 'changed')
  const label = name === undefined ? what : `${what} ${name}`
  const summary =
    change === 'removed'
      ? `${label} missing (trust file wants ${expected})`
      : change === 'added'
        ? `${label} added by hand (host has ${found}; not in the trust file)`
        : `${label} ${change}: host has ${found}, trust file wants ${expected}`
  return {what, change, ...(name === undefined ? {} : {name}), ...(found === undefined ? {} : {found}), ...(expected === undefined ? {} : {expected}), summary}
}

function policyChanges(before: string | null, after: string | null): DriftChange[] {
  const found = tryJson(before)
  const expected = tryJson(after)
  if (!found || !expected) return []
  const out: DriftChange[] = []
  if (JSON.stringify(found.default) !== JSON.stringify(expected.default)) {
    out.push(entry('default', undefined, found.default === undefined ? undefined : requirementText(found.default), expected.default === undefined ? undefined : requirementText(expected.default)))
  }

  const transports = (p: Record<string, Json>): Record<string, Record<string, Json>> => (p.transports && typeof p.transports === 'object' ? (p.transports as Record<string, Record<string, Json>>) : {})
  const ft = transports(found)
  const et = transports(expected)
  for (const transport of [...new Set([...Object.keys(ft), ...Object.keys(et)])].sort()) {
    const fs = ft[transport] ?? {}
    const es = et[transport] ?? {}
    for (const scope of [...new Set([...Object.keys(fs), ...Object.keys(es)])].sort()) {
      if (JSON.stringify(fs[scope]) === JSON.stringify(es[scope])) continue
      out.push(entry('scope', `${transport}:${scope === '' ? '""' : scope}`, scope in fs ? requirementText(fs[scope]) : undefined, scope in es ? requirementText(es[scope]) : undefined))
    }
  }

  return out
}

function registriesEntries(text: string | null): Map<string, string> | null {
  if (text === null) return new Map()
  try {
    const doc = parseYaml(text) as Record<string, Json> | null
    const map = new Map<string, string>()
    if (doc?.['default-docker'] !== undefined) map.set('default-docker', JSON.stringify(doc['default-docker']))
    const docker = doc?.docker
    if (docker && typeof docker === 'object') for (const [ns, value] of Object.entries(docker)) map.set(ns, JSON.stringify(value))
    return map
  } catch {
    return null
  }
}

function registriesChanges(before: string | null, after: string | null): DriftChange[] {
  const found = registriesEntries(before)
  const expected = registriesEntries(after)
  if (!found || !expected) return []
  const out: DriftChange[] = []
  for (const ns of [...new Set([...found.keys(), ...expected.keys()])].sort()) {
    if (found.get(ns) !== expected.get(ns)) out.push(entry('registries.d entry', ns, found.get(ns), expected.get(ns)))
  }

  return out
}

async function fingerprints(text: string | null): Promise<string | undefined> {
  if (text === null) return undefined
  const bytes = Buffer.from(text)
  try {
    if (text.includes('PUBLIC KEY-----') && !text.includes('PGP')) return checkSigstoreKey(bytes, {name: 'installed'}).info.fingerprint
    return (await inspectGpgKeys(bytes, {name: 'installed'})).keys.map((k) => k.fingerprint).join(',')
  } catch {
    return 'an unreadable key'
  }
}

/** The changes inside one planned file: what check names instead of just "content". */
export async function describeChange(change: Pick<FileChange, 'hostPath' | 'kind' | 'before' | 'after'>): Promise<DriftChange[]> {
  if (change.before === change.after) return []
  if (change.kind === 'policy') return policyChanges(change.before, change.after)
  if (change.kind === 'registries.d') return registriesChanges(change.before, change.after)
  if (change.kind === 'key') {
    const [found, expected] = await Promise.all([fingerprints(change.before), fingerprints(change.after)])
    if (found !== undefined && expected !== undefined && found === expected) return [entry('key', change.hostPath, 'the same key in another encoding', `fingerprint ${expected}`, 'changed')]
    return [entry('key', change.hostPath, found && `fingerprint ${found}`, expected && `fingerprint ${expected}`, found && expected ? 'replaced' : undefined)]
  }

  return []
}

/** The changes of every file of a plan, by host path. */
export async function describeChanges(changes: FileChange[]): Promise<Map<string, DriftChange[]>> {
  const entries = await Promise.all(changes.map(async (c) => [c.hostPath, await describeChange(c)] as const))
  return new Map(entries.filter(([, list]) => list.length > 0))
}
