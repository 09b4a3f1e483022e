import {createRequire} from 'node:module'

import type {Document, LineCounter} from 'yaml'

import {deepFreeze} from '../lib/deep-freeze.js'
import {ParseError} from '../lib/errors.js'

/**
 * A parsed YAML document that can say on which line any value sits, so every
 * validation error names the file and the line.
 */
export interface YamlSource {
  file: string
  value: unknown
  lineOf(path: ReadonlyArray<string | number>): number | undefined
}

type YamlLibrary = typeof import('yaml')
const require = createRequire(import.meta.url)
/** Loaded synchronously, and only when needed: lineOf is synchronous, and a valid trust file never needs it. */
const yamlLibrary = (): YamlLibrary => require('yaml') as YamlLibrary

/**
 * Parses YAML, refusing duplicate mapping keys with the line of the second
 * one. The yaml library's own uniqueKeys check compares every pair of keys
 * (quadratic: seconds for a 10,000-scope file), so duplicates are found here
 * with a Set, in the same walk that indexes every key's line.
 */
export async function parseYaml(text: string, file: string): Promise<{doc: Document; lineCounter: LineCounter; lines: Map<string, number>}> {
  return indexLines(yamlLibrary(), text, file)
}

/** The comment-preserving Document of a text the fast parser already accepted (so no error is expected; one would still be located). */
export function parseYamlDocumentSync(text: string, file: string): Document {
  return indexLines(yamlLibrary(), text, file).doc
}

function indexLines(yaml: YamlLibrary, text: string, file: string): {doc: Document; lineCounter: LineCounter; lines: Map<string, number>} {
  const {LineCounter, parseDocument, isMap, isNode, isScalar, isSeq} = yaml
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, uniqueKeys: false, prettyErrors: false, strict: true})
  const fail = (message: string, offset: number): never => {
    const pos = lineCounter.linePos(offset)
    throw new ParseError(message, {file, line: pos.line, column: pos.col})
  }

  const error = doc.errors[0]
  if (error) fail(error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, ''), error.pos[0])
  const lines = new Map<string, number>()
  const walk = (node: unknown, path: Array<string | number>): void => {
    if (isMap(node)) {
      const seen = new Set<string>()
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
        const offset = isNode(pair.key) && pair.key.range ? pair.key.range[0] : (node.range?.[0] ?? 0)
        if (seen.has(key)) fail(`Map keys must be unique: "${key}" is defined twice`, offset)
        seen.add(key)
        const childPath = [...path, key]
        lines.set(JSON.stringify(childPath), lineCounter.linePos(offset).line)
        walk(pair.value, childPath)
      }
    } else if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) {
        if (isNode(item) && item.range) lines.set(JSON.stringify([...path, i]), lineCounter.linePos(item.range[0]).line)
        walk(item, [...path, i])
      }
    }
  }

  walk(doc.contents, [])
  if (isNode(doc.contents) && doc.contents.range) lines.set('[]', lineCounter.linePos(doc.contents.range[0]).line)
  return {doc, lineCounter, lines}
}

/**
 * What the fast parser may read: no anchors or aliases (the precise parser
 * bounds their expansion), no tags, no directives. Text that might hold one
 * takes the precise path; a trust file never needs them.
 */
const NEEDS_PRECISE = /(?:^|[\s,[{:-])[&*!]|^%/m

/**
 * A trust file. Parsed fast when it can be: js-yaml (YAML 1.2 core schema,
 * duplicate keys refused) builds the value, and the lines are found only
 * when asked for, which validation does only for a problem, by the precise
 * parser (the yaml library, with its CST). A parse error is always located:
 * by the precise parser, or by js-yaml's mark when only js-yaml refuses.
 */
export async function loadYamlSource(text: string, file: string): Promise<YamlSource> {
  let lines: Map<string, number> | undefined
  let value: unknown
  if (NEEDS_PRECISE.test(text)) {
    const parsed = indexLines(yamlLibrary(), text, file)
    lines = parsed.lines
    value = parsed.doc.toJS({maxAliasCount: 50})
  } else {
    value = await fastParse(text, file)
  }

  return {
    file,
    value,
    lineOf(path) {
      lines ??= indexLines(yamlLibrary(), text, file).lines
      // The line of the deepest part of the path that exists: a mapping key is where a reader looks.
      for (let depth = path.length; depth >= 0; depth--) {
        const line = lines.get(JSON.stringify(path.slice(0, depth).map((p) => (typeof p === 'number' ? p : String(p)))))
        if (line !== undefined) return line
      }

      return undefined
    },
  }
}

async function fastParse(text: string, file: string): Promise<unknown> {
  const jsYaml = (await import('js-yaml')).default
  try {
    return jsYaml.load(text, {schema: jsYaml.CORE_SCHEMA, filename: file})
  } catch (error) {
    indexLines(yamlLibrary(), text, file) // the precise parser's located error, when it agrees
    const mark = (error as {mark?: {line: number; column: number}}).mark
    throw new ParseError((error as {reason?: string}).reason ?? (error as Error).message, {file, line: (mark?.line ?? 0) + 1, column: (mark?.column ?? 0) + 1})
  }
}

/**
 * js-yaml's value and the line of every mapping key (by fastKeyPath), from
 * its parse events: no CST. Keys inside sequences are not indexed. Undefined
 * when the text is not for the fast parser (see NEEDS_PRECISE) or it
 * refuses the text: the caller takes the precise path, which locates errors.
 * typedKeys: some indexed key is not a string (`5000:`, `true:`), which
 * js-yaml's value spells as one; the Document keeps its type.
 */
/** The key of parseYamlFast's keyLines for a mapping key's path. */
export function fastKeyPath(path: readonly string[]): string {
  let key = ''
  for (const part of path) key += `/${JSON.stringify(part)}`
  return key
}

type FastYaml = {value: unknown; keyLines: ReadonlyMap<string, number>; typedKeys: boolean}

/**
 * The last text parseYamlFast read: an apply parses the registries.d file it
 * plans to write, then reads the same bytes back after writing. Its value is
 * frozen, since every caller that reads the same text shares it.
 */
let lastFast: {text: string; parsed: FastYaml} | undefined

export async function parseYamlFast(text: string): Promise<FastYaml | undefined> {
  if (lastFast?.text === text) return lastFast.parsed
  const parsed = await parseYamlFastUncached(text)
  if (parsed) lastFast = {text, parsed: {...parsed, value: deepFreeze(parsed.value)}}
  return parsed && lastFast!.parsed
}

async function parseYamlFastUncached(text: string): Promise<FastYaml | undefined> {
  if (NEEDS_PRECISE.test(text)) return undefined
  const jsYaml = (await import('js-yaml')).default
  // A path is its keys, each JSON-quoted, joined by '/' (fastKeyPath): strings, not arrays, since a
  // 10,000-scope file has tens of thousands of nodes, and arrays copied per node cost its parse a tenth.
  interface Frame {
    path: string | undefined
    count: number
    lastKey?: string
  }

  const stack: Frame[] = [{path: '', count: 0}]
  const keyLines = new Map<string, number>()
  let typedKeys = false
  const listener = (event: 'open' | 'close', state: {line: number; kind: string | null; result: unknown}) => {
    const parent = stack.at(-1)!
    if (event === 'open') {
      // A mapping's odd children are values: their path is the parent's and the key before them.
      const isValue = parent.count % 2 === 1 && parent.path !== undefined && parent.lastKey !== undefined
      stack.push({path: stack.length === 1 ? '' : isValue ? `${parent.path}/${JSON.stringify(parent.lastKey)}` : undefined, count: 0})
      return
    }

    stack.pop()
    const owner = stack.at(-1)!
    if (owner.count % 2 === 0 && state.kind === 'scalar' && owner.path !== undefined && stack.length > 1) {
      owner.lastKey = String(state.result)
      typedKeys ||= typeof state.result !== 'string'
      keyLines.set(`${owner.path}/${JSON.stringify(owner.lastKey)}`, state.line + 1)
    }

    owner.count++
  }

  try {
    const value = jsYaml.load(text, {schema: jsYaml.CORE_SCHEMA, listener})
    return {value, keyLines, typedKeys}
  } catch {
    return undefined
  }
}
