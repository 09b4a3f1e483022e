import {createHash} from 'node:crypto'

import {writeFileAtomic} from '../fs/atomic.js'
import {MiB, readBoundedText} from '../fs/read-bounded.js'
import {packageVersion} from '../lib/assets.js'
import type {Policy} from '../policy/types.js'
import {type ParsedEntry, parsedEntry, parseKey, type RegistriesFile} from '../registries-d/read.js'

/**
 * The policy and registries.d files apply read, as parsed, by their text:
 * status reads the same files, and one found here unchanged is not parsed
 * again (for 100 scopes, the parsers cost status a fifth of its time). An
 * entry is what parsing that text again gives, so a stale, missing or damaged
 * cache only costs the parse. Only the imagetrust version that wrote it reads it.
 */
interface CacheFile {
  version: 1
  imagetrust: string
  /** By parseKey (registries-d/read.ts). */
  registries: Record<string, ParsedEntry>
  /** By policyKey: parsePolicy's policy for that text, with no engine's features (as status parses it). */
  policies: Record<string, Policy>
}

export interface KnownParses {
  registries: ReadonlyMap<string, ParsedEntry>
  policies: ReadonlyMap<string, Policy>
}

const NOTHING_KNOWN: KnownParses = {registries: new Map(), policies: new Map()}

/** Larger than any cache an apply writes (10,000 scopes take about 2 MiB). */
const CACHE_LIMIT = 64 * MiB

/**
 * Files larger than this are not remembered: apply's own policy parse is
 * for the engines' features, and a second one of a 10,000-scope file would
 * cost apply a quarter of a second (and the cache its memory).
 */
export const PARSE_CACHE_FILE_LIMIT = 512 * 1024

/** A policy.json's text (as UTF-8 decodes it), as one digest. */
export function policyKey(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

export async function readParseCache(file: string): Promise<KnownParses> {
  const text = await readBoundedText(file, CACHE_LIMIT).catch(() => null)
  if (text === null) return NOTHING_KNOWN
  try {
    const cache = JSON.parse(text) as CacheFile
    if (cache.version !== 1 || cache.imagetrust !== packageVersion() || !isRecord(cache.registries) || !isRecord(cache.policies)) return NOTHING_KNOWN
    return {
      registries: new Map(Object.entries(cache.registries).filter(([, entry]) => isEntry(entry))),
      policies: new Map(Object.entries(cache.policies).filter(([, policy]) => isRecord(policy) && Array.isArray(policy.default))),
    }
  } catch {
    return NOTHING_KNOWN
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

function isEntry(entry: ParsedEntry): boolean {
  const scopesOk = Array.isArray(entry?.scopes) && entry.scopes.every((s) => Array.isArray(s) && typeof s[0] === 'string' && typeof s[1] === 'number')
  return scopesOk && (entry.defaultDocker === undefined || typeof entry.defaultDocker === 'number') && Array.isArray(entry.warnings) && entry.warnings.every((w) => typeof w === 'string') && 'value' in entry
}

/** What to remember of the registries.d files a plan read: those read the fast way, up to the size limit. */
export function registriesEntries(files: readonly RegistriesFile[]): Record<string, ParsedEntry> {
  const entries: Record<string, ParsedEntry> = {}
  for (const f of files.filter((f) => f.text.length <= PARSE_CACHE_FILE_LIMIT)) {
    const entry = parsedEntry(f)
    if (entry) entries[parseKey(f.text, f.displayPath)] = entry
  }

  return entries
}

/**
 * Remembers registriesEntries' files, and policies as parsePolicy read their
 * text with no engine's features (as status parses it); the rest is parsed
 * again when read. Rewritten only when it changes; best effort, like the
 * stamps: never an error.
 */
export async function writeParseCache(file: string, found: {registries: Record<string, ParsedEntry>; policies: ReadonlyArray<{text: string; policy: Policy}>}): Promise<void> {
  const {registries} = found
  const policies = Object.fromEntries(found.policies.map(({text, policy}) => [policyKey(text), policy]))
  const text = JSON.stringify({version: 1, imagetrust: packageVersion(), registries, policies} satisfies CacheFile) + '\n'
  const current = await readBoundedText(file, CACHE_LIMIT).catch(() => null)
  // 0600: it holds the registries.d files every engine reads, a user's own (and any credentials in a lookaside URL) too.
  if (current !== text) await writeFileAtomic(file, text, {mode: 0o600}).catch(() => undefined)
}
