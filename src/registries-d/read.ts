import {createHash} from 'node:crypto'

import type {Document} from 'yaml'

import {ParseError} from '../lib/errors.js'
import {fastKeyPath, parseYaml, parseYamlDocumentSync, parseYamlFast} from '../trustfile/yaml-source.js'

/**
 * One registries.d file, parsed into a comment-preserving yaml Document so
 * that an edit in place keeps the owner's comments and layout.
 */
export interface RegistriesFile {
  /** Base name, e.g. default.yaml. */
  name: string
  /** Host path, e.g. /etc/containers/registries.d/default.yaml. */
  hostPath: string
  /** The path as this run sees it (under --root), for messages. */
  displayPath: string
  text: string
  doc: Document
  /**
   * The value the fast parser read, when it read the file (and every key in it
   * is a string): lookups read sections from it, so a file only looked at
   * never needs its Document. Edits clone the Document, so it stays true.
   */
  value?: unknown
  /** docker: scope → line of its key. */
  scopes: Map<string, number>
  /** Line of a non-null default-docker, if any. */
  defaultDocker?: number
  /** What reading it warned about (unknown keys), located. */
  warnings?: string[]
  /** The name on disk is not UTF-8: `name` and `hostPath` spell it with \xNN escapes, so it is read, never written. */
  undecodableName?: true
  /** As found on disk (absent for files the plan makes up). */
  mode?: number
  uid?: number
  gid?: number
}

const SECTION_KEYS = ['lookaside', 'lookaside-staging', 'sigstore', 'sigstore-staging', 'use-sigstore-attachments']

/**
 * What parsing a file gave, as JSON, for one whose text was read the fast way:
 * parsing the same text (named by the same path) again gives the same.
 */
export interface ParsedEntry {
  scopes: Array<[string, number]>
  defaultDocker?: number
  value: unknown
  warnings: string[]
}

/** Parses already made, by parseKey: a text found here is not parsed again (host/parse-cache.ts). */
export type KnownRegistries = ReadonlyMap<string, ParsedEntry>

/** A file's text and the path its warnings name, as one digest. */
export function parseKey(text: string, displayPath: string): string {
  return createHash('sha256').update(displayPath).update('\0').update(text).digest('hex')
}

export async function parseRegistriesFile(name: string, hostPath: string, text: string, displayPath = hostPath, known?: KnownRegistries): Promise<{file: RegistriesFile; warnings: string[]}> {
  const entry = known?.get(parseKey(text, displayPath))
  if (entry) {
    const file = fastFile({name, hostPath, displayPath, text}, {scopes: new Map(entry.scopes), defaultDocker: entry.defaultDocker, value: entry.value}, [...entry.warnings])
    return {file, warnings: [...entry.warnings]}
  }

  const parsed = (await parseFast(name, hostPath, text, displayPath)) ?? (await parsePrecise(name, hostPath, text, displayPath))
  parsed.file.warnings = [...parsed.warnings]
  return parsed
}

/** The entry to remember for a file read the fast way, when its value is plain JSON (no infinities, no -0). */
export function parsedEntry(file: RegistriesFile): ParsedEntry | undefined {
  if (!('value' in file) || !file.warnings || !isJson(file.value)) return undefined
  return {scopes: [...file.scopes], ...(file.defaultDocker === undefined ? {} : {defaultDocker: file.defaultDocker}), value: file.value, warnings: file.warnings}
}

function isJson(value: unknown): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0)
  if (Array.isArray(value)) return value.every((v) => isJson(v))
  return isPlainMap(value) && Object.values(value).every((v) => isJson(v))
}

/** A file read the fast way: its Document is parsed only when something reads it. */
function fastFile(base: Pick<RegistriesFile, 'name' | 'hostPath' | 'displayPath' | 'text'>, found: Pick<RegistriesFile, 'scopes' | 'defaultDocker' | 'value'>, warnings?: string[]): RegistriesFile {
  let doc: Document | undefined
  const {scopes, defaultDocker} = found
  const file = {...base, scopes, defaultDocker, ...('value' in found ? {value: found.value} : {}), ...(warnings ? {warnings} : {})} as RegistriesFile
  Object.defineProperty(file, 'doc', {enumerable: true, get: () => (doc ??= parseYamlDocumentSync(base.text, base.displayPath))})
  return file
}

const isPlainMap = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * The fast path (js-yaml, lines from its parse events): the same checks and
 * warnings as the precise one; the comment-preserving Document is parsed
 * only when something reads it (an edit in place, a lookup). A file with a
 * problem goes the precise way, which says where.
 */
async function parseFast(name: string, hostPath: string, text: string, displayPath: string): Promise<{file: RegistriesFile; warnings: string[]} | undefined> {
  const fast = await parseYamlFast(text)
  if (!fast) return undefined
  const {value, keyLines, typedKeys} = fast
  const lineOf = (...path: string[]) => keyLines.get(fastKeyPath(path))
  const warnings: string[] = []
  const scopes = new Map<string, number>()
  let defaultDocker: number | undefined
  const sectionOk = (section: unknown, path: string[], where: string): boolean => {
    if (section === null) return true
    if (!isPlainMap(section)) return false
    for (const [key, item] of Object.entries(section)) {
      if (!SECTION_KEYS.includes(key)) warnings.push(`${displayPath}:${lineOf(...path, key)}: ${where}: unknown key "${key}" is ignored by containers/image (typo?)`)
      else if (key === 'use-sigstore-attachments' ? typeof item !== 'boolean' : typeof item !== 'string') return false
    }

    return true
  }

  if (value !== null && value !== undefined) {
    if (!isPlainMap(value)) return undefined
    for (const [key, section] of Object.entries(value)) {
      if (key === 'default-docker') {
        if (section === null) continue
        if (!isPlainMap(section) || !sectionOk(section, [key], 'default-docker')) return undefined
        defaultDocker = lineOf(key)
      } else if (key === 'docker') {
        if (section === null) continue
        if (!isPlainMap(section)) return undefined
        for (const [scope, entry] of Object.entries(section)) {
          scopes.set(scope, lineOf(key, scope) ?? 0)
          if (!sectionOk(entry, [key, scope], `docker "${scope}"`)) return undefined
        }
      } else {
        warnings.push(`${displayPath}:${lineOf(key)}: unknown top-level key "${key}" is ignored by containers/image`)
      }
    }
  }

  return {file: fastFile({name, hostPath, displayPath, text}, {scopes, defaultDocker, ...(typedKeys ? {} : {value})}), warnings}
}

async function parsePrecise(name: string, hostPath: string, text: string, displayPath: string): Promise<{file: RegistriesFile; warnings: string[]}> {
  const {isMap, isScalar} = await import('yaml')
  // Duplicate keys are refused, as containers/image 5.25+ (yaml.v3) does.
  const {doc, lineCounter} = await parseYaml(text, displayPath)
  function fail(message: string, offset?: number): never {
    const pos = offset === undefined ? undefined : lineCounter.linePos(offset)
    throw new ParseError(message, {file: displayPath, line: pos?.line, column: pos?.col})
  }

  const warnings: string[] = []
  const scopes = new Map<string, number>()
  let defaultDocker: number | undefined
  const contents = doc.contents
  if (contents !== null && !(isScalar(contents) && contents.value === null)) {
    if (!isMap(contents)) fail('a registries.d file must be a mapping with docker: and/or default-docker:', contents.range?.[0])
    for (const pair of contents.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : ''
      const keyOffset = isScalar(pair.key) ? pair.key.range?.[0] : undefined
      const keyLine = keyOffset === undefined ? undefined : lineCounter.linePos(keyOffset).line
      const value = pair.value
      const isNull = value === null || (isScalar(value) && value.value === null)
      if (key === 'default-docker') {
        if (!isNull) {
          if (!isMap(value)) fail('default-docker must be a mapping', keyOffset)
          defaultDocker = keyLine
          checkSection(value, `default-docker`)
        }
      } else if (key === 'docker') {
        if (isNull) continue
        if (!isMap(value)) fail('docker must be a mapping of scopes', keyOffset)
        for (const scopePair of value.items) {
          const scope = isScalar(scopePair.key) ? String(scopePair.key.value) : ''
          const offset = isScalar(scopePair.key) ? scopePair.key.range?.[0] : undefined
          scopes.set(scope, offset === undefined ? 0 : lineCounter.linePos(offset).line)
          const section = scopePair.value
          if (section === null || (isScalar(section) && section.value === null)) continue
          if (!isMap(section)) fail(`docker scope "${scope}" must be a mapping`, offset)
          checkSection(section, `docker "${scope}"`)
        }
      } else {
        warnings.push(`${displayPath}:${keyLine}: unknown top-level key "${key}" is ignored by containers/image`)
      }
    }
  }

  function checkSection(section: {items: Array<{key: unknown; value: unknown}>}, where: string): void {
    for (const item of section.items) {
      const key = isScalar(item.key) ? String(item.key.value) : ''
      const offset = isScalar(item.key) ? item.key.range?.[0] : undefined
      const line = offset === undefined ? undefined : lineCounter.linePos(offset).line
      if (!SECTION_KEYS.includes(key)) {
        warnings.push(`${displayPath}:${line}: ${where}: unknown key "${key}" is ignored by containers/image (typo?)`)
        continue
      }

      const value = isScalar(item.value) ? item.value.value : item.value
      if (key === 'use-sigstore-attachments' && typeof value !== 'boolean') fail(`${where}: use-sigstore-attachments must be true or false`, offset)
      if (key !== 'use-sigstore-attachments' && typeof value !== 'string') fail(`${where}: ${key} must be a URL string`, offset)
    }
  }

  return {file: {name, hostPath, displayPath, text, doc, scopes, defaultDocker}, warnings}
}
