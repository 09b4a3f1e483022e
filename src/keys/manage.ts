import {rm} from 'node:fs/promises'
import path from 'node:path'

import {isMap, isSeq, type Document} from 'yaml'

import type {Capabilities} from '../host/capabilities.js'
import {type HostRoot} from '../host/paths.js'
import {readHostFile} from '../host/snapshot.js'
import {ImagetrustError} from '../lib/errors.js'
import {writeFileAtomic} from '../fs/atomic.js'
import {editTrustFile, ensureMap} from '../trustfile/edit.js'
import type {KeyKind, TrustFile} from '../trustfile/types.js'
import {KEY_NAME} from '../trustfile/validate.js'
import {isOpenPgp} from './gpg.js'
import {describeKeyBytes, keyHostPath, loadKeys} from './load.js'
import {fetchKey, readKeyFile} from './source.js'
import type {KeyInfo, LoadedKey} from './types.js'

/** Where key add keeps a copy of each key, relative to the trust file. */
export const KEYS_SUBDIR = 'keys'

export interface KeySourceOptions {
  fingerprints?: string[]
  readStdin: () => Promise<Buffer>
}

/**
 * A key given on the command line: a file, `-` for stdin, an https URL
 * (only with a fingerprint pin: no trust on first use), or the key itself.
 */
export async function readKeyArgument(source: string, options: KeySourceOptions): Promise<{bytes: Uint8Array; origin: string}> {
  if (source === '-') return {bytes: await options.readStdin(), origin: 'standard input'}
  if (/^http:\/\//i.test(source)) throw new ImagetrustError(`refusing ${source}: keys are only fetched over https://`)
  if (/^https:\/\//i.test(source)) {
    if (!options.fingerprints?.length) {
      throw new ImagetrustError(`refusing ${source} without --fingerprint: a key fetched from a URL must be pinned (there is no trust on first use)`)
    }

    return {bytes: await fetchKey(source, source), origin: source}
  }

  if (source.trimStart().startsWith('-----BEGIN')) return {bytes: Buffer.from(source, 'utf8'), origin: 'inline data'}
  try {
    return {bytes: await readKeyFile(path.resolve(source)), origin: path.resolve(source)}
  } catch (error) {
    const message = (error as Error).message
    throw new ImagetrustError(message.startsWith('cannot read ') ? message.replace('cannot read ', 'cannot read key file ') : `key file ${message}`)
  }
}

export function guessKeyType(bytes: Uint8Array): KeyKind {
  return isOpenPgp(bytes) ? 'gpg' : 'sigstore'
}

export interface AddKeyOptions {
  trustFile: string
  name: string
  bytes: Uint8Array
  type?: KeyKind
  fingerprints?: string[]
  scopes?: string[]
  capabilities: Capabilities
}

export interface AddKeyResult {
  name: string
  type: KeyKind
  file: string
  keys: KeyInfo[]
  scopes: string[]
  warnings: string[]
}

function pinValue(fingerprints: string[]): string | string[] {
  return fingerprints.length === 1 ? fingerprints[0] : fingerprints
}

/** Checks the key, keeps a normalized copy beside the trust file, and records it (pinned) in the trust file. */
export async function addKey(options: AddKeyOptions): Promise<AddKeyResult> {
  const {name} = options
  if (!KEY_NAME.test(name)) throw new ImagetrustError(`key name "${name}" must match ${KEY_NAME.source} (it becomes a file name)`)
  const type = options.type ?? guessKeyType(options.bytes)
  const pins = options.fingerprints?.map((f) => f.replaceAll(/\s/g, '').toUpperCase())
  const described = await describeKeyBytes(options.bytes, {name, type, fingerprints: pins}, options.capabilities)
  if (described.problems.length > 0) throw new ImagetrustError(described.problems.join('\n'))
  const fingerprints = described.keys.map((k) => k.fingerprint)
  const relative = `${KEYS_SUBDIR}/${name}.${type === 'gpg' ? 'asc' : 'pub'}`
  const keyFile = path.join(path.dirname(path.resolve(options.trustFile)), relative)
  const scopes = options.scopes ?? []
  let wroteKey = false
  try {
    await editTrustFile(
      options.trustFile,
      async (doc) => {
        if (doc.hasIn(['keys', name])) throw new ImagetrustError(`key "${name}" is already in ${options.trustFile}; remove it first, or add the new key under another name`)
        ensureMap(doc, ['keys'])
        doc.setIn(['keys', name], doc.createNode({type, file: relative, fingerprint: pinValue(fingerprints)}))
        for (const scope of scopes) addKeyToScope(doc, scope, name)
        // The copy must exist before the edited file is validated and written.
        await writeFileAtomic(keyFile, described.content, {mode: 0o644})
        wroteKey = true
      },
      {create: true},
    )
  } catch (error) {
    if (wroteKey) await rm(keyFile, {force: true})
    throw error
  }

  return {name, type, file: keyFile, keys: described.keys, scopes, warnings: described.warnings}
}

function addKeyToScope(doc: Document, scope: string, name: string): void {
  ensureMap(doc, ['scopes'])
  const existing = doc.getIn(['scopes', scope], true)
  if (!isMap(existing)) {
    doc.setIn(['scopes', scope], doc.createNode({policy: 'signed', keys: [name]}))
    return
  }

  const policy = existing.get('policy')
  if (policy !== 'signed') throw new ImagetrustError(`scope "${scope}" has policy: ${String(policy)}; only a signed scope takes keys`)
  const keys = existing.get('keys', true)
  if (isSeq(keys)) {
    if (!keys.items.some((item) => String((item as {value?: unknown}).value ?? item) === name)) keys.add(doc.createNode(name))
  } else {
    existing.set('keys', doc.createNode([name]))
  }
}

export interface RemoveKeyResult {
  name: string
  droppedFrom: string[]
  removedCopy?: string
}

/** Removes a key; refuses while a scope uses it unless force, and never leaves a signed scope without keys. */
export async function removeKey(trustFile: string, name: string, options: {force?: boolean}): Promise<RemoveKeyResult> {
  const droppedFrom: string[] = []
  let copy: string | undefined
  await editTrustFile(trustFile, (doc) => {
    const entry = doc.getIn(['keys', name], true)
    if (!isMap(entry)) throw new ImagetrustError(`key "${name}" is not in ${trustFile}`)
    const file = entry.get('file')
    if (typeof file === 'string' && file === `${KEYS_SUBDIR}/${path.basename(file)}` && path.basename(file).startsWith(`${name}.`)) {
      copy = path.join(path.dirname(path.resolve(trustFile)), file)
    }

    const scopes = doc.get('scopes', true)
    const users: Array<{scope: string; keys: NonNullable<ReturnType<typeof asSeq>>}> = []
    if (isMap(scopes)) {
      for (const pair of scopes.items) {
        const keys = asSeq(isMap(pair.value) ? pair.value.get('keys', true) : undefined)
        if (keys && keys.items.some((item) => scalarValue(item) === name)) users.push({scope: String(scalarValue(pair.key)), keys})
      }
    }

    if (users.length > 0 && !options.force) {
      throw new ImagetrustError(`key "${name}" is used by scope(s) ${users.map((u) => `"${u.scope}"`).join(', ')}`, {
        hint: 'Remove it from those scopes first, or pass --force to drop it from them too.',
      })
    }

    for (const user of users) {
      user.keys.items = user.keys.items.filter((item) => scalarValue(item) !== name)
      if (user.keys.items.length === 0) {
        throw new ImagetrustError(`scope "${user.scope}" would have no key left; add another key to it, or change its policy, first`)
      }

      droppedFrom.push(user.scope)
    }

    doc.deleteIn(['keys', name])
  })
  if (copy) await rm(copy, {force: true})
  return {name, droppedFrom, removedCopy: copy}
}

function asSeq(node: unknown) {
  return isSeq(node) ? node : undefined
}

function scalarValue(node: unknown): unknown {
  return node && typeof node === 'object' && 'value' in node ? (node as {value: unknown}).value : node
}

export type KeyStatus = 'valid' | 'expires-soon' | 'expired' | 'revoked' | 'missing' | 'changed' | 'invalid'

export interface KeyListEntry {
  name: string
  type: KeyKind
  status: KeyStatus
  /** The path the host reads (under --root when given). */
  installedPath: string
  scopes: string[]
  keys: KeyInfo[]
  problems: string[]
}

export function keyStatus(key: Pick<LoadedKey, 'content' | 'keys' | 'problems'>, installed: string | null, warnBefore: Date): KeyStatus {
  if (key.keys.some((k) => k.revoked)) return 'revoked'
  if (key.keys.some((k) => k.expired)) return 'expired'
  if (key.problems.length > 0) return 'invalid'
  if (installed === null) return 'missing'
  if (installed !== key.content) return 'changed'
  if (key.keys.some((k) => k.expires && new Date(k.expires) <= warnBefore)) return 'expires-soon'
  return 'valid'
}

export async function listKeys(trust: TrustFile, root: HostRoot, capabilities: Capabilities, options: {expiryWarnDays: number; now?: Date}): Promise<KeyListEntry[]> {
  const now = options.now ?? new Date()
  const warnBefore = new Date(now.getTime() + options.expiryWarnDays * 86_400_000)
  const entries: KeyListEntry[] = []
  for (const spec of trust.keys) {
    const scopes = trust.scopes.filter((s) => s.keys.includes(spec.name)).map((s) => s.scope)
    const hostPath = keyHostPath(spec, root.layout.keyDir)
    const installed = (await readHostFile(root, hostPath)).content?.toString('utf8') ?? null
    let loaded: LoadedKey
    try {
      ;[loaded] = await loadKeys({...trust, keys: [spec]}, capabilities, {strict: false, now, keyDir: root.layout.keyDir})
    } catch (error) {
      entries.push({name: spec.name, type: spec.type, status: 'invalid', installedPath: root.resolve(hostPath), scopes, keys: [], problems: [(error as Error).message]})
      continue
    }

    entries.push({
      name: spec.name,
      type: spec.type,
      status: keyStatus(loaded, installed, warnBefore),
      installedPath: root.resolve(hostPath),
      scopes,
      keys: loaded.keys,
      problems: loaded.problems,
    })
  }

  return entries
}
