import {isDeepStrictEqual} from 'node:util'

import type {Document} from 'yaml'

import {OWNED_REGISTRIES_FILE} from './names.js'
import {ImagetrustError} from '../lib/errors.js'
import type {RegistriesFile} from './read.js'

/**
 * Merges imagetrust's lookaside settings into registries.d without ever
 * defining a scope twice: a scope that another file already defines is
 * edited in that file (comments kept, previous values remembered so they can
 * be restored); every other scope goes into imagetrust.yaml, which we own.
 */

export type SectionValues = Record<string, string | boolean>

export interface DesiredSection {
  scope: string
  values: SectionValues
  /** Trust file line, for errors. */
  line: number
}

/** A section of someone else's file that we changed, with what was there before (null: absent). */
export interface ForeignEdit {
  file: string
  scope: string
  previous: Record<string, string | boolean | null>
}

export interface RegistriesMergeInput {
  dirHostPath: string
  files: RegistriesFile[]
  desired: DesiredSection[]
  previousEdits: ForeignEdit[]
  trustFile: string
  /**
   * Whether imagetrust.yaml as found is ours (state.json recorded what we
   * wrote), ours but changed by hand, or someone else's file of that name.
   */
  ownedFile: 'absent' | 'ours' | 'modified' | 'foreign'
}

export interface RegistriesFileChange {
  hostPath: string
  before: string | null
  after: string | null
}

export interface RegistriesMergeResult {
  changes: RegistriesFileChange[]
  ownedScopes: string[]
  foreignEdits: ForeignEdit[]
  /** imagetrust.yaml as this merge leaves it, when it is ours. */
  owned?: {hostPath: string; text: string}
  warnings: string[]
}

const OWNED_HEADER = [
  '# Managed by imagetrust: `imagetrust apply` rewrites this file from the trust file.',
  '# Scopes that another file in this directory defines are edited in that file instead,',
  '# because containers/image refuses a scope defined in two files.',
  '',
].join('\n')

function indentOf(text: string): number {
  const match = /^[^\s#][^\n]*:\s*\n( +)\S/m.exec(text)
  return match ? Math.min(match[1].length, 8) : 2
}

function sectionValues(doc: Document, scope: string): Record<string, unknown> {
  const value = doc.getIn(['docker', scope]) as unknown
  const plain = value && typeof value === 'object' && 'toJSON' in value ? (value as {toJSON(): unknown}).toJSON() : value
  return plain && typeof plain === 'object' ? (plain as Record<string, unknown>) : {}
}

/** A string the yaml library writes as is (plain): it cannot be read back as anything but this string. */
const PLAIN = /^[A-Za-z0-9][A-Za-z0-9._/:@+~=-]*$/
const RESOLVES_AS_OTHER = /^(?:null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|0o[0-7]+|0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)$/
const plain = (text: string) => PLAIN.test(text) && !text.endsWith(':') && !RESOLVES_AS_OTHER.test(text)

/**
 * imagetrust.yaml's body: what `stringify({docker}, {indent: 2, lineWidth: 0})`
 * writes, byte for byte (a unit test compares them), written directly when
 * every scope, key and value is a plain scalar; otherwise by the yaml
 * library, which knows how to quote. Its Document model costs a second for
 * 10,000 scopes.
 */
export function stringifyOwned(docker: Record<string, SectionValues>, stringify: (value: unknown, options: {indent: number; lineWidth: number}) => string): string {
  const lines = ['docker:']
  for (const [scope, values] of Object.entries(docker)) {
    if (!plain(scope) || Object.keys(values).length === 0) return stringify({docker}, {indent: 2, lineWidth: 0})
    lines.push(`  ${scope}:`)
    for (const [key, value] of Object.entries(values)) {
      if (!plain(key) || (typeof value === 'string' && !plain(value))) return stringify({docker}, {indent: 2, lineWidth: 0})
      lines.push(`    ${key}: ${String(value)}`)
    }
  }

  return lines.join('\n') + '\n'
}

export async function mergeRegistriesD(input: RegistriesMergeInput): Promise<RegistriesMergeResult> {
  const {isMap, stringify} = await import('yaml')
  // Someone else's imagetrust.yaml is a foreign file like any other: its scopes are theirs.
  const ownedFound = input.files.find((f) => f.name === OWNED_REGISTRIES_FILE)
  if (input.ownedFile === 'foreign' && ownedFound) {
    // Unless it is byte for byte what we would write: then it is adopted.
    const asOurs = await mergeRegistriesD({...input, ownedFile: 'ours'})
    if (asOurs.owned?.text === ownedFound.text && !asOurs.changes.some((c) => c.hostPath === ownedFound.hostPath)) return asOurs
  }

  const theirs = input.ownedFile === 'foreign'
  const foreign = input.files.filter((f) => f.name !== OWNED_REGISTRIES_FILE || theirs)
  const owned = theirs ? undefined : ownedFound
  const warnings: string[] = []
  const edited = new Map<string, Document>()
  const docFor = (file: RegistriesFile): Document => {
    let doc = edited.get(file.hostPath)
    if (!doc) {
      doc = file.doc.clone()
      edited.set(file.hostPath, doc)
    }

    return doc
  }

  const desiredByScope = new Map(input.desired.map((d) => [d.scope, d]))
  const previousByKey = new Map(input.previousEdits.map((e) => [`${e.file}\0${e.scope}`, e]))
  const foreignEdits: ForeignEdit[] = []
  const ownedEntries: DesiredSection[] = []

  // Undo earlier edits whose scope we no longer manage in that file.
  for (const edit of input.previousEdits) {
    const file = foreign.find((f) => f.hostPath === edit.file)
    if (!file || !file.scopes.has(edit.scope)) continue
    if (desiredByScope.has(edit.scope)) continue
    const doc = docFor(file)
    for (const [key, value] of Object.entries(edit.previous)) {
      if (value === null) doc.deleteIn(['docker', edit.scope, key])
      else doc.setIn(['docker', edit.scope, key], value)
    }
  }

  for (const desired of input.desired) {
    const defining = foreign.filter((f) => f.scopes.has(desired.scope))
    if (defining.length > 1) {
      throw new ImagetrustError(
        `registries.d scope "${desired.scope}" is already defined in two files, ${defining[0].displayPath}:${defining[0].scopes.get(desired.scope)} and ${defining[1].displayPath}:${defining[1].scopes.get(desired.scope)}; containers/image fails every pull like this. Remove one definition, then apply again.`,
        {location: {file: input.trustFile, line: desired.line}},
      )
    }

    if (defining.length === 0) {
      ownedEntries.push(desired)
      continue
    }

    const file = defining[0]
    const doc = docFor(file)
    const current = sectionValues(doc, desired.scope)
    const earlier = previousByKey.get(`${file.hostPath}\0${desired.scope}`)
    const previous: ForeignEdit['previous'] = {...earlier?.previous}
    // `scope:` with nothing under it is a null node, which setIn cannot descend into.
    if (!isMap(doc.getIn(['docker', desired.scope], true))) doc.setIn(['docker', desired.scope], doc.createNode({}))
    for (const [key, value] of Object.entries(desired.values)) {
      if (!(key in previous)) previous[key] = key in current ? (current[key] as string | boolean) : null
      doc.setIn(['docker', desired.scope, key], value)
    }

    // Keys we set before but no longer want: put back what was there.
    for (const [key, value] of Object.entries(previous)) {
      if (key in desired.values) continue
      if (value === null) doc.deleteIn(['docker', desired.scope, key])
      else doc.setIn(['docker', desired.scope, key], value)
      delete previous[key]
    }

    if (Object.keys(previous).length > 0) foreignEdits.push({file: file.hostPath, scope: desired.scope, previous})
  }

  const changes: RegistriesFileChange[] = []
  for (const file of foreign) {
    const doc = edited.get(file.hostPath)
    if (!doc || isDeepStrictEqual(doc.toJS(), file.doc.toJS())) continue
    changes.push({hostPath: file.hostPath, before: file.text, after: doc.toString({indent: indentOf(file.text)})})
  }

  const ownedPath = ownedFound?.hostPath ?? `${input.dirHostPath}/${OWNED_REGISTRIES_FILE}`
  let ownedText: string | null = null
  if (ownedEntries.length > 0) {
    const docker: Record<string, SectionValues> = {}
    for (const entry of ownedEntries) docker[entry.scope] = entry.values
    ownedText = OWNED_HEADER + stringifyOwned(docker, stringify)
  }

  const result = {changes, ownedScopes: ownedEntries.map((e) => e.scope), foreignEdits, warnings}
  if (theirs && ownedText !== null && ownedText !== ownedFound!.text) {
    throw new ImagetrustError(`${ownedFound!.displayPath} exists and is not imagetrust's (no record in its state file): refusing to overwrite it`, {
      hint: `imagetrust keeps its registries.d entries in ${OWNED_REGISTRIES_FILE}: rename that file (e.g. to local.yaml), then apply again`,
    })
  }

  if (theirs) return result
  if (ownedText === null && owned && input.ownedFile === 'modified') {
    warnings.push(`${owned.displayPath} is no longer needed, but it changed since imagetrust wrote it: left in place, and no longer managed`)
    return result
  }

  if ((owned?.text ?? null) !== ownedText) changes.push({hostPath: ownedPath, before: owned?.text ?? null, after: ownedText})
  return ownedText === null ? result : {...result, owned: {hostPath: ownedPath, text: ownedText}}
}
