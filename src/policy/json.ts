import {ParseError} from '../lib/errors.js'

/**
 * A JSON reader as strict as Go's encoding/json plus containers/image's
 * duplicate-key check: standard JSON only, no BOM, no trailing data, ASCII
 * whitespace only, duplicate keys (compared after unescaping) rejected.
 * Every node keeps its line and column, so errors can point into the file.
 */

export interface Position {
  line: number
  column: number
}

export type JsonNode =
  | {kind: 'object'; pos: Position; entries: JsonEntry[]}
  | {kind: 'array'; pos: Position; items: JsonNode[]}
  | {kind: 'string'; pos: Position; value: string}
  | {kind: 'number'; pos: Position; value: number; raw: string}
  | {kind: 'boolean'; pos: Position; value: boolean}
  | {kind: 'null'; pos: Position}

export interface JsonEntry {
  key: string
  keyPos: Position
  value: JsonNode
}

export type JsonValue = null | boolean | number | string | JsonValue[] | {[key: string]: JsonValue}

const SPACE = 0x20
const TAB = 0x09
const NEWLINE = 0x0a
const RETURN = 0x0d

const QUOTE = 0x22
const BACKSLASH = 0x5c

/** Up to this many keys, a duplicate is looked for in the entries themselves. */
const SMALL_OBJECT = 8

const SIMPLE_ESCAPES: Record<string, string> = {'"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t'}

/**
 * The deepest nesting of objects and arrays accepted. A valid policy.json is
 * at most 7 levels deep; the cap keeps a hostile file from exhausting the
 * stack (containers/image itself stops at 10,000).
 */
export const MAX_JSON_DEPTH = 64

class Reader {
  private index = 0
  private depth = 0
  private line = 1
  private lineStart = 0
  /**
   * The keys and indexes from the top to the value being read. The JSON path
   * is built from it only for an error: building it for every value cost a
   * 10,000-scope policy.json a string per node.
   */
  private readonly pathStack: Array<string | number> = []

  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {}

  parseDocument(): JsonNode {
    if (this.text.charCodeAt(0) === 0xfe_ff) this.fail('byte-order mark is not allowed')
    this.skipWhitespace()
    const node = this.parseValue()
    this.skipWhitespace()
    if (this.index < this.text.length) this.fail(`invalid character ${quoteChar(this.peek())} after top-level value`)
    return node
  }

  private position(): Position {
    return {line: this.line, column: this.index - this.lineStart + 1}
  }

  private fail(message: string, pos: Position = this.position(), path?: string): never {
    throw new ParseError(message, {file: this.file, line: pos.line, column: pos.column, path})
  }

  /** The JSON path of the value being read (or, inside an object or array, of that container). */
  private path(): string {
    let path = '$'
    for (const step of this.pathStack) path = typeof step === 'number' ? `${path}[${step}]` : childPath(path, step)
    return path
  }

  private peek(): string {
    return this.text[this.index] ?? ''
  }

  private skipWhitespace(): void {
    const {text} = this
    let i = this.index
    for (;;) {
      const code = text.charCodeAt(i) // NaN past the end: not whitespace
      if (code === NEWLINE) {
        this.line++
        this.lineStart = i + 1
      } else if (code !== SPACE && code !== TAB && code !== RETURN) break
      i++
    }

    this.index = i
  }

  private parseValue(): JsonNode {
    const pos = this.position()
    const ch = this.peek()
    if (ch === '{') return this.parseObject()
    if (ch === '[') return this.parseArray()
    if (ch === '"') return {kind: 'string', pos, value: this.parseString()}
    if (ch === '-' || (ch >= '0' && ch <= '9')) return this.parseNumber()
    for (const [word, node] of [
      ['true', {kind: 'boolean', pos, value: true}],
      ['false', {kind: 'boolean', pos, value: false}],
      ['null', {kind: 'null', pos}],
    ] as const) {
      if (this.text.startsWith(word, this.index)) {
        this.index += word.length
        return node
      }
    }

    if (ch === '') this.fail('unexpected end of JSON input', pos, this.path())
    this.fail(`invalid character ${quoteChar(ch)} looking for beginning of value`, pos, this.path())
  }

  /** Enters an object or array; fails, located, past MAX_JSON_DEPTH levels. */
  private enter(pos: Position): void {
    this.depth++
    if (this.depth > MAX_JSON_DEPTH) this.fail(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`, pos, this.path())
  }

  private parseObject(): JsonNode {
    const pos = this.position()
    this.enter(pos)
    this.index++ // {
    const entries: JsonEntry[] = []
    let seen: Map<string, Position> | undefined // only for a large object: a Map per small one was most of the garbage
    this.skipWhitespace()
    if (this.peek() === '}') {
      this.index++
      this.depth--
      return {kind: 'object', pos, entries}
    }

    for (;;) {
      this.skipWhitespace()
      const keyPos = this.position()
      if (this.peek() !== '"') {
        if (this.peek() === '') this.fail('unexpected end of JSON input', keyPos, this.path())
        this.fail(`invalid character ${quoteChar(this.peek())} looking for beginning of object key string`, keyPos, this.path())
      }

      const key = this.parseString()
      seen = entries.length >= SMALL_OBJECT ? (seen ?? new Map(entries.map((e) => [e.key, e.keyPos]))) : undefined
      const first = seen ? seen.get(key) : entries.find((e) => e.key === key)?.keyPos
      if (first) this.fail(`Duplicate key "${key}" (first at line ${first.line})`, keyPos, this.path())
      seen?.set(key, keyPos)
      this.skipWhitespace()
      if (this.peek() !== ':') this.fail(`invalid character ${quoteChar(this.peek())} after object key`, this.position(), this.path())
      this.index++
      this.skipWhitespace()
      this.pathStack.push(key)
      const value = this.parseValue()
      this.pathStack.pop()
      entries.push({key, keyPos, value})
      this.skipWhitespace()
      const next = this.peek()
      this.index++
      if (next === '}') {
        this.depth--
        return {kind: 'object', pos, entries}
      }

      if (next !== ',') {
        this.index--
        if (next === '') this.fail('unexpected end of JSON input', this.position(), this.path())
        this.fail(`invalid character ${quoteChar(next)} after object key:value pair`, this.position(), this.path())
      }
    }
  }

  private parseArray(): JsonNode {
    const pos = this.position()
    this.enter(pos)
    this.index++ // [
    const items: JsonNode[] = []
    this.skipWhitespace()
    if (this.peek() === ']') {
      this.index++
      this.depth--
      return {kind: 'array', pos, items}
    }

    for (;;) {
      this.skipWhitespace()
      this.pathStack.push(items.length)
      items.push(this.parseValue())
      this.pathStack.pop()
      this.skipWhitespace()
      const next = this.peek()
      this.index++
      if (next === ']') {
        this.depth--
        return {kind: 'array', pos, items}
      }

      if (next !== ',') {
        this.index--
        if (next === '') this.fail('unexpected end of JSON input', this.position(), this.path())
        this.fail(`invalid character ${quoteChar(next)} after array element`, this.position(), this.path())
      }
    }
  }

  /** A string with no escape is one slice of the text; one with escapes is built by parseEscapedString. */
  private parseString(): string {
    const start = this.index
    const end = this.plainRunEnd(start + 1)
    if (this.text.charCodeAt(end) !== QUOTE || end - start > 50_000_000) return this.parseEscapedString(start)
    this.index = end + 1
    return this.text.slice(start + 1, end)
  }

  /**
   * Plain runs are sliced from the text whole: appending a character at a time
   * leaves a rope of one node per character behind every key, which a 10,000
   * scope policy.json turns into a million retained objects.
   */
  private parseEscapedString(start: number): string {
    this.index = start + 1 // past the opening quote
    const parts: string[] = []
    for (;;) {
      const end = this.plainRunEnd(this.index)
      if (end > this.index) parts.push(this.text.slice(this.index, end))
      this.index = end
      if (this.index - start > 50_000_000) this.fail('string too long')
      const ch = this.text[this.index]
      if (ch === undefined || ch === '\n') this.fail('unterminated string', this.position())
      if (ch === '"') {
        this.index++
        return parts.join('')
      }

      if (ch.charCodeAt(0) < 0x20) this.fail('invalid control character in string literal')
      parts.push(this.parseEscape())
    }
  }

  /** Where the run of characters that need no escape (not a quote, a backslash or a control character) from `from` ends. */
  private plainRunEnd(from: number): number {
    const {text} = this
    let i = from
    for (;;) {
      const code = text.charCodeAt(i)
      // NaN past the end fails the comparison too.
      if (!(code >= 0x20) || code === QUOTE || code === BACKSLASH) return i
      i++
    }
  }

  /** One backslash escape, at this.index. */
  private parseEscape(): string {
    const esc = this.text[this.index + 1]
    if (esc !== undefined && Object.hasOwn(SIMPLE_ESCAPES, esc)) {
      this.index += 2
      return SIMPLE_ESCAPES[esc]
    }

    if (esc === 'u') {
      const hex = this.text.slice(this.index + 2, this.index + 6)
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape in string literal')
      this.index += 6
      return this.surrogate(Number.parseInt(hex, 16))
    }

    return this.fail(`invalid escape \\${esc ?? ''} in string literal`)
  }

  /**
   * A `\u` escape as Go decodes it: a high surrogate joins a following `\u` low
   * surrogate; a lone surrogate becomes U+FFFD (so keys compare as in Go).
   */
  private surrogate(code: number): string {
    if (code < 0xd8_00 || code > 0xdf_ff) return String.fromCharCode(code)
    if (code < 0xdc_00 && this.text.startsWith('\\u', this.index)) {
      const hex = this.text.slice(this.index + 2, this.index + 6)
      const low = /^[0-9a-fA-F]{4}$/.test(hex) ? Number.parseInt(hex, 16) : 0
      if (low >= 0xdc_00 && low <= 0xdf_ff) {
        this.index += 6
        return String.fromCharCode(code, low)
      }
    }

    return '\ufffd'
  }

  private parseNumber(): JsonNode {
    const pos = this.position()
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.index, this.index + 400))
    if (!match) this.fail(`invalid number literal`, pos)
    this.index += match[0].length
    return {kind: 'number', pos, value: Number(match[0]), raw: match[0]}
  }
}

function quoteChar(ch: string): string {
  return ch === '' ? 'end of input' : `'${ch}'`
}

/** `$.a.b` for identifier-like keys, `$["a.example.com"]` otherwise. */
export function childPath(path: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`
}

/**
 * File bytes as Go reads them: valid UTF-8 as is, and every byte of an
 * invalid sequence as its own U+FFFD (Node's decoder folds a truncated
 * sequence into one, so two keys Go keeps apart could collide). A BOM is
 * kept, for the reader to refuse.
 */
export function decodeJsonBytes(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', {fatal: true, ignoreBOM: true}).decode(bytes)
  } catch {}

  let out = ''
  let i = 0
  while (i < bytes.length) {
    const first = bytes[i]
    if (first < 0x80) {
      out += String.fromCharCode(first)
      i++
      continue
    }

    const [need, min, bits] = first >= 0xc2 && first <= 0xdf ? [1, 0x80, first & 0x1f] : first >= 0xe0 && first <= 0xef ? [2, 0x8_00, first & 0x0f] : first >= 0xf0 && first <= 0xf4 ? [3, 0x1_00_00, first & 0x07] : [0, 0, 0]
    let code = bits
    let ok = need > 0
    for (let k = 1; ok && k <= need; k++) {
      const next = bytes[i + k]
      if (next === undefined || (next & 0xc0) !== 0x80) ok = false
      else code = (code << 6) | (next & 0x3f)
    }

    if (ok && code >= min && code <= 0x10_ff_ff && (code < 0xd8_00 || code > 0xdf_ff)) {
      out += String.fromCodePoint(code)
      i += need + 1
    } else {
      out += '\ufffd'
      i++
    }
  }

  return out
}

export function parseStrictJson(text: string, file: string): JsonNode {
  return new Reader(text, file).parseDocument()
}

/** The plain value of a node (objects keep their key order). */
export function toValue(node: JsonNode): JsonValue {
  switch (node.kind) {
    case 'object': {
      const out: {[key: string]: JsonValue} = {}
      for (const entry of node.entries) out[entry.key] = toValue(entry.value)
      return out
    }

    case 'array': {
      return node.items.map((item) => toValue(item))
    }

    case 'null': {
      return null
    }

    default: {
      return node.value
    }
  }
}
