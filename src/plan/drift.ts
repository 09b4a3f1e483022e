import type {LoadedKey} from '../keys/types.js'
import {describeOverride} from '../policy/overrides.js'
import {type Expiring, expiryReport} from '../trustfile/expiry.js'
import type {DriftChange} from './changes.js'
import type {DriftReason, FileAction, FileKind, Plan} from './types.js'

export type {DriftChange} from './changes.js'

/** Keys that stopped being trustworthy are drift; keys about to expire are warnings. */
export function keyDrift(
  keys: Array<Pick<LoadedKey, 'name' | 'hostPath' | 'keys' | 'problems'>>,
  expiryWarnDays: number,
  now: Date,
): {drift: Array<{path: string; kind: FileKind; action: 'none'; reasons: DriftReason[]; detail: string}>; warnings: string[]} {
  const warnBefore = now.getTime() + expiryWarnDays * 86_400_000
  const drift = []
  const warnings = []
  for (const key of keys) {
    if (key.problems.length > 0) {
      const reason: DriftReason = key.keys.some((k) => k.revoked) ? 'revoked' : key.keys.some((k) => k.expired) ? 'expired' : 'unusable key'
      drift.push({path: key.hostPath, kind: 'key' as const, action: 'none' as const, reasons: [reason], detail: key.problems.join('; ')})
      continue
    }

    for (const info of key.keys) {
      if (info.expires && new Date(info.expires).getTime() <= warnBefore) {
        const days = Math.max(0, Math.floor((new Date(info.expires).getTime() - now.getTime()) / 86_400_000))
        warnings.push(`key "${key.name}" (${info.fingerprint}) expires on ${info.expires.slice(0, 10)}, in ${days} day(s)`)
      }
    }
  }

  return {drift, warnings}
}

/** Keys remembered by the last apply (all usable then): only time can have made one expire since. */
export function cachedKeys(keys: Array<Pick<LoadedKey, 'name' | 'hostPath' | 'keys'>>, now: Date): Array<Pick<LoadedKey, 'name' | 'hostPath' | 'keys' | 'problems'>> {
  return keys.map((key) => {
    const infos = key.keys.map((info) => ({...info, expired: Boolean(info.expires && new Date(info.expires).getTime() <= now.getTime())}))
    const problems = infos.filter((info) => info.expired).map((info) => `key "${key.name}" (${info.fingerprint}) expired on ${info.expires}`)
    return {...key, keys: infos, problems}
  })
}

/** One place where the host differs from the trust file, as check reports it. */
export interface DriftEntry {
  path: string
  kind: FileKind
  action: FileAction | 'none'
  reasons: DriftReason[]
  detail?: string
  /** What changed inside the file (a scope, the default, a registries.d entry, a key), when it can be named. */
  changes?: DriftChange[]
  /** reason expired: the trust file's scope or key whose until has passed (path is the trust file). */
  entry?: Expiring
}

/**
 * A scope the host still has because its until passed since the last apply
 * is not a hand edit: its change says so. Other changes are kept as they are.
 */
export function explainExpired(changes: Map<string, DriftChange[]>, expired: Expiring[]): Map<string, DriftChange[]> {
  const ended = new Map(expired.filter((e) => e.what === 'scope').map((e) => [`docker:${e.name}`, e]))
  if (ended.size === 0) return changes
  const relabel = (c: DriftChange): DriftChange => {
    const e = c.what === 'scope' && c.change === 'added' && c.name !== undefined ? ended.get(c.name) : undefined
    return e ? {...c, summary: `scope ${c.name} expired on ${e.until}${e.reason ? ` (${e.reason})` : ''}: the host still has it (${c.found ?? 'a rule'}); apply removes it`} : c
  }

  return new Map([...changes].map(([file, list]) => [file, list.map(relabel)]))
}

/** Trust file entries past their until are drift (path: the trust file) until it drops or renews them; those close to it are warnings. */
export function expiryDrift(entries: Expiring[], trustFile: string, now: Date, expiryWarnDays: number): {drift: DriftEntry[]; warnings: string[]} {
  const report = expiryReport(entries, now, expiryWarnDays)
  return {
    drift: report.drift.map(({entry, detail}) => ({path: trustFile, kind: entry.what === 'key' ? ('key' as const) : ('policy' as const), action: 'none' as const, reasons: ['expired' as const], detail, entry})),
    warnings: report.warnings,
  }
}

/**
 * The drift a plan shows, keys aside: files to write, files that shadow the
 * managed ones, and foreign rules that override the trust file's. The state
 * file records ownership; it is not host configuration, so it is not drift.
 */
export function planDrift(plan: Plan, realPath: (hostPath: string) => string, changes?: Map<string, DriftChange[]>): DriftEntry[] {
  return [
    ...plan.changes
      .filter((c) => c.kind !== 'state')
      .map((c) => ({path: realPath(c.hostPath), kind: c.kind, action: c.action, reasons: c.reasons, ...(changes?.has(c.hostPath) ? {changes: changes.get(c.hostPath)} : {})})),
    ...plan.shadowedBy.map((p) => ({path: p, kind: 'policy' as const, action: 'none' as const, reasons: ['shadowed' as const], detail: 'containers/image reads this file instead of the managed one'})),
    ...plan.namespaceShadows.map((n) => ({
      path: realPath(n.file),
      kind: 'policy' as const,
      action: 'none' as const,
      reasons: ['shadowed' as const],
      detail: `CRI-O uses this policy for pods in namespace ${n.namespace} instead of the managed one`,
    })),
    ...plan.looseDirs.map((d) => ({path: d.path, kind: d.kind, action: 'none' as const, reasons: ['mode' as const], detail: `a directory of managed files, writable by others (mode ${d.mode.toString(8).padStart(4, '0')}): chmod go-w`})),
    ...plan.broken.map((b) => ({path: b.path, kind: 'registries.d' as const, action: 'none' as const, reasons: ['broken' as const], detail: b.detail})),
    ...plan.overrides
      .filter((o) => o.effect === 'weaker')
      .map((o) => ({path: realPath(o.policyPath), kind: 'policy' as const, action: 'none' as const, reasons: ['overridden' as const], detail: describeOverride(o)})),
  ]
}

/** One line per drifted file, for people and the journal: path, reasons, and what changed inside. */
export function driftLine(d: DriftEntry): string {
  const inside = d.changes && d.changes.length > 0 ? `: ${d.changes.map((c) => c.summary).join('; ')}` : ''
  return `${d.path}: ${d.reasons.join(', ')}${d.detail ? ` (${d.detail})` : ''}${inside}`
}
