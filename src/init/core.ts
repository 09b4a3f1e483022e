import {mkdtemp, rm, writeFile, mkdir} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import {hostRoot} from '../host/paths.js'
import {EXIT, ImagetrustError, ParseError} from '../lib/errors.js'
import {writeFileAtomic} from '../fs/atomic.js'
import {readBoundedText, TRUST_FILE_LIMIT} from '../fs/read-bounded.js'
import {KEY_SIZE_LIMIT} from '../keys/source.js'
import {type ApplyResult, applyTrust, preparePlan, type PreparedPlan} from '../plan/converge.js'
import {dockerScopeChain} from '../policy/match.js'
import {dockerScopeNormalization, parseDockerScope, parseImageReference} from '../policy/reference.js'
import {KEY_NAME, validateTrustFile} from '../trustfile/validate.js'
import {loadYamlSource} from '../trustfile/yaml-source.js'
import {checkInitKey, readInitKeySource, suggestKeyName} from './keys.js'
import {editTrustDocument, keyFileOf, renderTrustFile} from './render.js'
import {parseUntil} from '../trustfile/expiry.js'
import type {DefaultChoice, InitAnswers, InitException, InitKey, InitScope} from './types.js'

/** The flags that answer init's prompts. */
export interface InitFlags {
  scope?: string[]
  key?: string[]
  fingerprint?: string[]
  'key-name'?: string[]
  lookaside?: string[]
  'sigstore-attachments'?: boolean
  default?: string
  'test-signed'?: string[]
  'test-unsigned'?: string[]
  accept?: string[]
  until?: string[]
  reason?: string[]
  yes?: boolean
}

/** A scope as typed: an error in plain words, or undefined when containers/image will match it as written. */
export function scopeProblem(scope: string): string | undefined {
  if (scope.trim() === '') return 'type a registry (host[:port]), a namespace (host/ns) or a repository'
  const syntax = parseDockerScope(scope)
  if (typeof syntax === 'string') return syntax
  const normalization = dockerScopeNormalization(scope)
  if (normalization?.kind === 'mismatch') return `never matches: containers/image compares normalised names, so write "${normalization.normalized}"`
  return undefined
}

/** A note for a valid scope that does not do what it may seem to (docker.io/busybox is not the official image). */
export function scopeNote(scope: string): string | undefined {
  const normalization = dockerScopeNormalization(scope)
  if (normalization?.kind === 'namespace-only') return `matches only repositories below ${scope}/, not the official image ${normalization.official}`
  const syntax = parseDockerScope(scope)
  if (typeof syntax === 'string') return undefined
  return syntax.kind === 'wildcard' ? `every host under ${syntax.suffix}` : syntax.kind === 'registry' ? 'a whole registry' : syntax.kind === 'namespace' ? 'a namespace or repository' : 'one image'
}

/** Which flags are missing for a run with no terminal. */
export function missingFlags(flags: InitFlags, options: {existing: boolean}): string[] {
  const missing: string[] = []
  // Only exceptions (--accept): no signed scope, so no key and no lookaside.
  const onlyExceptions = Boolean(flags.accept?.length) && !flags.scope?.length
  if (!flags.scope?.length && !onlyExceptions) missing.push('--scope')
  if (!flags.key?.length && !onlyExceptions) missing.push('--key')
  if (!flags.lookaside?.length && !flags['sigstore-attachments'] && !options.existing && !onlyExceptions) missing.push('--lookaside (or --sigstore-attachments)')
  if (flags.accept?.length && !flags.until?.length) missing.push('--until (with --accept)')
  if (!flags.default && !options.existing) missing.push('--default')
  if (!flags.yes) missing.push('--yes')
  return missing
}

/** The scope a test image falls under: the most specific of the given scopes, as containers/image picks. */
export function scopeOfImage(image: string, scopes: string[]): string | undefined {
  const ref = parseImageReference(image)
  if (typeof ref === 'string') throw new ImagetrustError(`test image "${image}": ${ref}`)
  return dockerScopeChain(ref).find((s) => scopes.includes(s))
}

export interface ExistingTrust {
  file: string
  text: string
  keys: Array<{name: string; fingerprints: string[]}>
  scopes: string[]
  default?: string
}

export async function readExisting(file: string): Promise<ExistingTrust | undefined> {
  let text: string
  try {
    text = await readBoundedText(file, TRUST_FILE_LIMIT)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new ImagetrustError(error instanceof ImagetrustError ? `trust file ${error.message}` : `cannot read trust file ${file}: ${(error as Error).message}`)
  }

  const trust = validateTrustFile(await loadYamlSource(text, file))
  return {file, text, keys: trust.keys.map((k) => ({name: k.name, fingerprints: k.fingerprints ?? []})), scopes: trust.scopes.map((s) => s.scope), default: trust.default}
}

/** Adds a checked key to the answers, reusing the name of the same key when it is already there. */
export function nameKey(key: InitKey, answers: InitAnswers, existing: ExistingTrust | undefined, wanted?: string): InitKey {
  const same = (fps: string[]) => fps.length === key.fingerprints.length && fps.every((f) => key.fingerprints.includes(f))
  const known = existing?.keys.find((k) => same(k.fingerprints)) ?? answers.keys.find((k) => same(k.fingerprints))
  if (known) return {...key, name: known.name}
  const taken = new Set([...(existing?.keys.map((k) => k.name) ?? []), ...answers.keys.map((k) => k.name)])
  if (wanted && taken.has(wanted)) throw new ImagetrustError(`key name "${wanted}" is already used by another key`)
  return {...key, name: wanted ?? suggestKeyName(key.keys, taken)}
}

/** init --yes: every answer from flags. */
export async function answersFromFlags(flags: InitFlags, options: {capabilities: Capabilities; existing?: ExistingTrust; quiet?: boolean; log: (line: string) => void}): Promise<InitAnswers> {
  const scopes = flags.scope ?? []
  for (const scope of scopes) {
    const problem = scopeProblem(scope)
    if (problem) throw new ImagetrustError(`--scope "${scope}": ${problem}`)
  }

  if (new Set(scopes).size !== scopes.length) throw new ImagetrustError('a --scope is given twice')
  const answers: InitAnswers = {default: flags.default as DefaultChoice | undefined, keys: [], scopes: [], exceptions: exceptionsFromFlags(flags, new Date())}
  const keySources = flags.key ?? []
  if (keySources.length !== 1 && keySources.length !== scopes.length) throw new ImagetrustError(`give one --key for all scopes, or one per --scope (${scopes.length} scope(s), ${keySources.length} --key)`)
  const pins = flags.fingerprint ?? []
  const names = flags['key-name'] ?? []
  // Checked before any key is read: a name becomes a file name (keys/NAME.asc).
  const badName = names.find((n) => !KEY_NAME.test(n))
  if (badName !== undefined) throw new ImagetrustError(`--key-name ${JSON.stringify(badName)} must match ${KEY_NAME.source} (it becomes a file name)`, {exitCode: EXIT.usage})
  const keyNames: string[] = []
  for (const [i, source] of keySources.entries()) {
    if (/^https:\/\//i.test(source) && !pins[i]) {
      throw new ImagetrustError(`--key ${source} needs --fingerprint: a key fetched from a URL must be pinned (init --yes has no one to confirm it)`)
    }

    const {bytes, origin} = await readInitKeySource(source, {quiet: options.quiet})
    const checked = await checkInitKey(bytes, {name: 'key', pin: pins[i] ? [pins[i]] : undefined, capabilities: options.capabilities, origin})
    const key = nameKey(checked, answers, options.existing, names[i])
    if (!answers.keys.some((k) => k.name === key.name) && !options.existing?.keys.some((k) => k.name === key.name)) answers.keys.push(key)
    keyNames.push(key.name)
  }

  const keyOf = paired(keyNames, scopes.length, '--key')
  const lookasides = paired(flags.lookaside, scopes.length, '--lookaside')
  for (const [i, scope] of scopes.entries()) {
    const entry: InitScope = {scope, key: keyOf[i]!}
    if (lookasides[i]) entry.lookaside = normalizeLookaside(lookasides[i]!)
    if (flags['sigstore-attachments']) entry.sigstoreAttachments = true
    answers.scopes.push(entry)
  }

  for (const kind of ['signed', 'unsigned'] as const) {
    for (const image of flags[`test-${kind}`] ?? []) {
      const scope = scopeOfImage(image, scopes)
      if (!scope) throw new ImagetrustError(`--test-${kind} ${image} is under none of the scopes ${scopes.join(', ')}: its pull would prove nothing about them`)
      const entry = answers.scopes.find((s) => s.scope === scope)!
      entry.test = {...entry.test, [kind]: image}
    }
  }

  return answers
}

function paired<T>(values: T[] | undefined, count: number, flag: string, per = '--scope'): Array<T | undefined> {
  const list = values ?? []
  if (list.length === 0) return Array.from({length: count}, () => undefined)
  if (list.length === 1) return Array.from({length: count}, () => list[0])
  const what = per === '--scope' ? 'scope' : 'exception'
  if (list.length !== count) throw new ImagetrustError(`give one ${flag} for all ${what}s, or one per ${per} (${count} ${what}(s), ${list.length} ${flag})`)
  return list
}

/** An until for a new exception: a valid date or time, still ahead. A message when not. */
export function untilProblem(value: string, now: Date): string | undefined {
  const until = parseUntil(value)
  if (typeof until === 'string') return until
  if (until.getTime() <= now.getTime()) return `until ${value} (${until.toISOString()}) has already passed: the exception would never apply`
  return undefined
}

/** --accept SCOPE --until DATE [--reason TEXT]: accept scopes that end. */
export function exceptionsFromFlags(flags: InitFlags, now: Date): InitException[] {
  const scopes = flags.accept ?? []
  if (scopes.length === 0) {
    if (flags.until?.length || flags.reason?.length) throw new ImagetrustError('--until and --reason go with --accept SCOPE (an exception that ends)', {exitCode: EXIT.usage})
    return []
  }

  const untils = paired(flags.until, scopes.length, '--until', '--accept')
  const reasons = paired(flags.reason, scopes.length, '--reason', '--accept')
  return scopes.map((scope, i) => {
    const problem = scopeProblem(scope) ?? (flags.scope?.includes(scope) ? 'is also a --scope: a scope is either signed or an exception' : undefined)
    if (problem) throw new ImagetrustError(`--accept "${scope}": ${problem}`, {exitCode: EXIT.usage})
    const until = untils[i]!
    const bad = untilProblem(until, now)
    if (bad) throw new ImagetrustError(`--until: ${bad}`, {exitCode: EXIT.usage})
    return {scope, until, ...(reasons[i] ? {reason: reasons[i]} : {})}
  })
}

export function normalizeLookaside(url: string): string {
  // The URL parser drops newlines and tabs, so they are refused before it sees them.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(url)) throw new ImagetrustError(`lookaside ${JSON.stringify(url)} has a control character (a newline?)`, {exitCode: EXIT.usage})
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ImagetrustError(`lookaside "${url}" is not a URL (http://, https:// or file://)`)
  }

  if (!['http:', 'https:', 'file:'].includes(parsed.protocol)) throw new ImagetrustError(`lookaside "${url}" must use http://, https:// or file://`)
  return url.replace(/\/+$/, '')
}

/** The trust file text and the key files init would write. Nothing is written. */
export interface Staged {
  trustFile: string
  text: string
  keyFiles: Map<string, string>
  notes: string[]
  created: boolean
}

export async function stage(answers: InitAnswers, trustFile: string, existing: ExistingTrust | undefined): Promise<Staged> {
  const dir = path.dirname(path.resolve(trustFile))
  const keyFiles = new Map(answers.keys.map((k) => [path.join(dir, keyFileOf(k)), k.content]))
  let text: string
  let notes: string[] = []
  if (existing) {
    const {parseDocument} = await import('yaml')
    const doc = parseDocument(existing.text, {uniqueKeys: true})
    if (doc.errors.length > 0) throw new ParseError(doc.errors[0].message.split('\n')[0], {file: trustFile})
    notes = editTrustDocument(doc, answers)
    text = doc.toString({lineWidth: 0, flowCollectionPadding: false})
  } else {
    text = renderTrustFile(answers)
  }

  validateTrustFile(await loadYamlSource(text, trustFile))
  for (const [file, content] of keyFiles) {
    const current = await readBoundedText(file, KEY_SIZE_LIMIT).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined
      throw new ImagetrustError(`cannot read ${file}: ${error.message}`)
    })
    if (current !== undefined && current !== content) throw new ImagetrustError(`${file} exists and holds another key; choose another key name (--key-name)`)
  }

  return {trustFile: path.resolve(trustFile), text, keyFiles, notes, created: !existing}
}

/**
 * The plan for the staged trust file, made from a throw-away copy whose key
 * files point at absolute paths: the host and the trust file stay untouched.
 */
export async function planStaged(staged: Staged, options: {root: string; user?: boolean; capabilities: Capabilities}): Promise<PreparedPlan> {
  const temp = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-init-'))
  try {
    const {parseDocument, isMap} = await import('yaml')
    const doc = parseDocument(staged.text)
    const keys = doc.get('keys', true)
    const dir = path.dirname(staged.trustFile)
    if (isMap(keys)) {
      for (const pair of keys.items) {
        if (!isMap(pair.value)) continue
        const file = pair.value.get('file')
        if (typeof file !== 'string') continue
        const real = path.resolve(dir, file)
        const content = staged.keyFiles.get(real)
        if (content === undefined) {
          pair.value.set('file', real)
          continue
        }

        const copy = path.join(temp, path.basename(real))
        await writeFile(copy, content)
        pair.value.set('file', copy)
      }
    }

    const config = path.join(temp, 'trust.yaml')
    await writeFile(config, doc.toString({lineWidth: 0}))
    return await preparePlan({root: options.root, user: options.user, config, capabilities: options.capabilities})
  } finally {
    await rm(temp, {recursive: true, force: true})
  }
}

/** Writes the key copies and the trust file (atomically), then, unless told not to, applies. */
export async function commit(staged: Staged, options: {root: string; user?: boolean; capabilities: Capabilities; apply: boolean}): Promise<Omit<ApplyResult, 'warnings'> & {warnings: string[]} | null> {
  for (const [file, content] of staged.keyFiles) await writeFileAtomic(file, content, {mode: 0o644})
  await mkdir(path.dirname(staged.trustFile), {recursive: true})
  await writeFileAtomic(staged.trustFile, staged.text, {mode: 0o644})
  if (!options.apply) return null
  const {prepared: _prepared, ...result} = await applyTrust({root: options.root, user: options.user, config: staged.trustFile, capabilities: options.capabilities})
  return result
}

export {hostRoot}
