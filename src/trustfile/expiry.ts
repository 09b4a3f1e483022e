import type {KeySpec, ScopeSpec, TrustFile} from './types.js'

/**
 * Scopes and keys that expire (`until:` in the trust file). An `until` is an
 * instant in UTC: the entry is in force strictly before it and gone from it
 * on. A bare date means 00:00 UTC of that day, so `until: 2027-01-31` is
 * over for the whole of 31 January (write 2027-02-01 to keep the 31st).
 * Expiry is applied to the desired state before plan(): plan() never sees
 * an expired entry, and check, apply, plan, audit --candidate agree.
 */

/** An entry of the trust file that carries an `until`. */
export interface Expiring {
  what: 'scope' | 'key'
  name: string
  /** ISO 8601 in UTC (toISOString). */
  until: string
  reason?: string
  /** A signed scope's policy or `accept`/`reject`: what ends when it expires. */
  policy?: string
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

/**
 * An `until` value: a date (2027-01-31), an RFC 3339 time
 * (2027-01-31T12:00:00Z, 2027-01-31T14:00:00+02:00), or a YAML timestamp the
 * parser already made a Date. Returns the instant, or a message why not.
 */
export function parseUntil(value: unknown): Date | string {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'until is not a valid time' : value
  if (typeof value !== 'string') return `until must be a date (2027-01-31) or an RFC 3339 time (2027-01-31T12:00:00Z), not ${JSON.stringify(value ?? null)}`
  const date = DATE.exec(value)
  const time = date ? undefined : TIME.exec(value)
  if (!date && !time) {
    return /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value)
      ? `until "${value}" has no time zone: add Z (UTC) or an offset such as +02:00`
      : `until "${value}" must be a date (2027-01-31) or an RFC 3339 time (2027-01-31T12:00:00Z)`
  }

  const [, y, mo, d, h = '00', mi = '00', s = '00', fraction = '', zone = 'Z'] = (date ?? time)!
  const fields = {month: Number(mo), day: Number(d), hour: Number(h), minute: Number(mi), second: Number(s)}
  // Date.UTC rolls 2027-02-30 over into March: compare the fields back.
  const utc = new Date(Date.UTC(Number(y), fields.month - 1, fields.day, fields.hour, fields.minute, fields.second))
  const valid = utc.getUTCMonth() === fields.month - 1 && utc.getUTCDate() === fields.day && fields.hour < 24 && fields.minute < 60 && fields.second < 60
  const offset = zone.toUpperCase() === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)))
  if (!valid || Math.abs(offset) >= 24 * 60 || Number(zone.slice(4, 6) || 0) >= 60) return `until "${value}" is not a valid ${date ? 'date' : 'time'}`
  const millis = fraction ? Math.floor(Number(`0${fraction}`) * 1000) : 0
  return new Date(utc.getTime() + millis - offset * 60_000)
}

/** Every entry with an `until`, expired or not: keys first, then scopes, in file order. */
export function expiringEntries(trust: Pick<TrustFile, 'keys' | 'scopes'>): Expiring[] {
  const entry = (what: Expiring['what'], spec: KeySpec | ScopeSpec, name: string, policy?: string): Expiring[] =>
    spec.until === undefined ? [] : [{what, name, until: spec.until, ...(spec.reason === undefined ? {} : {reason: spec.reason}), ...(policy ? {policy} : {})}]
  return [...trust.keys.flatMap((k) => entry('key', k, k.name)), ...trust.scopes.flatMap((s) => entry('scope', s, s.scope, s.policy))]
}

export function isExpired(until: string | undefined, at: Date): boolean {
  return until !== undefined && new Date(until).getTime() <= at.getTime()
}

/**
 * The desired state as of time `at`: expired scopes dropped (an `accept`
 * exception falls back to whatever the rest of the policy says), expired keys
 * dropped from the keys and from every scope. A signed scope left with no
 * key becomes `reject`: its images are refused rather than falling to a
 * broader, possibly weaker, rule. `notes` says so loudly.
 */
export function trustAsOf(trust: TrustFile, at: Date): {trust: TrustFile; expired: Expiring[]; notes: string[]} {
  const expired = expiringEntries(trust).filter((e) => isExpired(e.until, at))
  if (expired.length === 0) return {trust, expired, notes: []}
  const goneKeys = new Set(expired.filter((e) => e.what === 'key').map((e) => e.name))
  const goneScopes = new Set(expired.filter((e) => e.what === 'scope').map((e) => e.name))
  const notes: string[] = []
  const scopes: ScopeSpec[] = []
  for (const scope of trust.scopes) {
    if (goneScopes.has(scope.scope)) continue
    const keys = scope.keys.filter((k) => !goneKeys.has(k))
    if (keys.length === scope.keys.length) {
      scopes.push(scope)
      continue
    }

    const dropped = scope.keys.filter((k) => goneKeys.has(k))
    if (keys.length > 0) {
      notes.push(`scope "${scope.scope}" no longer trusts expired key(s) ${dropped.map((k) => `"${k}"`).join(', ')}`)
      scopes.push(withLineOf(scope, {keys}))
      continue
    }

    notes.push(`scope "${scope.scope}" REFUSES EVERY IMAGE: its only key(s) ${dropped.map((k) => `"${k}"`).join(', ')} expired; add a key or a new until`)
    // Its signed test image would now be refused: only the unsigned one is still a test.
    const test = scope.test?.unsigned ? {unsigned: scope.test.unsigned} : undefined
    scopes.push(withLineOf(scope, {policy: 'reject', keys: [], identity: undefined, lookaside: undefined, sigstoreAttachments: undefined, lookasideStaging: undefined, test}))
  }

  const kept = new Set(scopes.map((s) => s.scope))
  const crioNamespaces = trust.crioNamespaces.map((n) => withLineOf(n, {scopes: n.scopes.filter((s) => kept.has(s))}))
  const signer = trust.signer
  return {trust: {...trust, keys: trust.keys.filter((k) => !goneKeys.has(k.name)), scopes, crioNamespaces, ...(signer ? {signer} : {})}, expired, notes}
}

/** A copy with changes that keeps the lazy `line` of the original (see Collector.withLine). */
function withLineOf<T extends {line: number}>(original: T, changes: Partial<T>): T {
  const copy = Object.defineProperties({} as T, Object.getOwnPropertyDescriptors(original))
  return Object.assign(copy, changes)
}

function describe(e: Expiring): string {
  return `${e.what} "${e.name}"${e.policy ? ` (${e.policy})` : ''}`
}

/** check's view: expired entries are drift (until the trust file drops or renews them); those close to expiry are warnings. */
export function expiryReport(
  entries: Expiring[],
  now: Date,
  warnDays: number,
): {drift: Array<{entry: Expiring; detail: string}>; warnings: string[]} {
  const warnBefore = now.getTime() + warnDays * 86_400_000
  const drift = []
  const warnings = []
  for (const e of entries) {
    const at = new Date(e.until).getTime()
    const why = e.reason ? `: ${e.reason}` : ''
    if (at <= now.getTime()) {
      drift.push({entry: e, detail: `${describe(e)} expired on ${e.until}${why}; apply leaves it out: remove it from the trust file, or give a new until`})
    } else if (at <= warnBefore) {
      warnings.push(`${describe(e)} expires on ${e.until}, in ${Math.floor((at - now.getTime()) / 86_400_000)} day(s)${why}`)
    }
  }

  return {drift, warnings}
}

/** The first `until` still ahead of `at`: until then, a plan made at `at` stays right. */
export function nextExpiry(entries: Expiring[], at: Date): string | undefined {
  return entries
    .map((e) => e.until)
    .filter((u) => !isExpired(u, at))
    .sort()[0]
}
