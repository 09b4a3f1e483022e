import type {Document, LineCounter} from 'yaml'

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

/**
 * Parses YAML, refusing duplicate mapping keys with the line of the second
 * one. The yaml library's own uniqueKeys check compares every pair of keys
 * (quadratic: seconds for a 10,000-scope file), so duplicates are found here
 * with a Set, in the same walk that indexes every key's line.
 */
export async function parseYaml(text: string, file: string): Promise<{doc: Document; lineCounter: LineCounter; lines: Map<string, number>}> {
  const {LineCounter, parseDocument, isMap, isNode, isScalar, isSeq} = await import('yaml')
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

export async function loadYamlSource(text: string, file: string): Promise<YamlSource> {
  const {doc, lines} = await parseYaml(text, file)
  return {
    file,
    value: doc.toJS({maxAliasCount: 50}),
    lineOf(path) {
      // The line of the deepest part of the path that exists: a mapping key is where a reader looks.
      for (let depth = path.length; depth >= 0; depth--) {
        const line = lines.get(JSON.stringify(path.slice(0, depth).map((p) => (typeof p === 'number' ? p : String(p)))))
        if (line !== undefined) return line
      }

      return undefined
    },
  }
}
