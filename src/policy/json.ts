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

const WHITESPACE = new Set([' ', '\t', '\n', '\r'])

/** A run of string characters that need no escape: not a quote, a backslash or a control character. */
// eslint-disable-next-line no-control-regex -- control characters end a run: JSON refuses them unescaped
const PLAIN_RUN = /[^"\\\u0000-\u001F]*/y

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

  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {}

  parseDocument(): JsonNode {
    if (this.text.charCodeAt(0) === 0xfe_ff) this.fail('byte-order mark is not allowed')
    this.skipWhitespace()
    const node = this.parseValue('$')
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

  private peek(): string {
    return this.text[this.index] ?? ''
  }

  private skipWhitespace(): void {
    while (this.index < this.text.length && WHITESPACE.has(this.text[this.index])) {
      if (this.text[this.index] === '\n') {
        this.line++
        this.lineStart = this.index + 1
      }

      this.index++
    }
  }

  private parseValue(path: string): JsonNode {
    const pos = this.position()
    const ch = this.peek()
    if (ch === '{') return this.parseObject(path)
    if (ch === '[') return this.parseArray(path)
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

    if (ch === '') this.fail('unexpected end of JSON input', pos, path)
    this.fail(`invalid character ${quoteChar(ch)} looking for beginning of value`, pos, path)
  }

  /** Enters an object or array; fails, located, past MAX_JSON_DEPTH levels. */
  private enter(pos: Position, path: string): void {
    this.depth++
    if (this.depth > MAX_JSON_DEPTH) this.fail(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`, pos, path)
  }

  private parseObject(path: string): JsonNode {
    const pos = this.position()
    this.enter(pos, path)
    this.index++ // {
    const entries: JsonEntry[] = []
    const seen = new Map<string, Position>()
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
        if (this.peek() === '') this.fail('unexpected end of JSON input', keyPos, path)
        this.fail(`invalid character ${quoteChar(this.peek())} looking for beginning of object key string`, keyPos, path)
      }

      const key = this.parseString()
      const first = seen.get(key)
      if (first) this.fail(`Duplicate key "${key}" (first at line ${first.line})`, keyPos, path)
      seen.set(key, keyPos)
      this.skipWhitespace()
      if (this.peek() !== ':') this.fail(`invalid character ${quoteChar(this.peek())} after object key`, this.position(), path)
      this.index++
      this.skipWhitespace()
      const value = this.parseValue(childPath(path, key))
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
        if (next === '') this.fail('unexpected end of JSON input', this.position(), path)
        this.fail(`invalid character ${quoteChar(next)} after object key:value pair`, this.position(), path)
      }
    }
  }

  private parseArray(path: string): JsonNode {
    const pos = this.position()
    this.enter(pos, path)
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
      items.push(this.parseValue(`${path}[${items.length}]`))
      this.skipWhitespace()
      const next = this.peek()
      this.index++
      if (next === ']') {
        this.depth--
        return {kind: 'array', pos, items}
      }

      if (next !== ',') {
        this.index--
        if (next === '') this.fail('unexpected end of JSON input', this.position(), path)
        this.fail(`invalid character ${quoteChar(next)} after array element`, this.position(), path)
      }
    }
  }

  /**
   * Plain runs are sliced from the text whole: appending a character at a time
   * leaves a rope of one node per character behind every key, which a 10,000
   * scope policy.json turns into a million retained objects.
   */
  private parseString(): string {
    const start = this.index
    this.index++ // opening quote
    const parts: string[] = []
    for (;;) {
      this.index = this.skipPlainRun(parts)
      if (this.index - start > 50_000_000) this.fail('string too long')
      const ch = this.text[this.index]
      if (ch === undefined || ch === '\n') this.fail('unterminated string', this.position())
      if (ch === '"') {
        this.index++
        return parts.length === 1 ? parts[0] : parts.join('')
      }

      if (ch.charCodeAt(0) < 0x20) this.fail('invalid control character in string literal')
      parts.push(this.parseEscape())
    }
  }

  /** Past the characters that need no escape, collecting them; returns where the run ends. */
  private skipPlainRun(parts: string[]): number {
    PLAIN_RUN.lastIndex = this.index
    PLAIN_RUN.exec(this.text)
    const end = PLAIN_RUN.lastIndex
    if (end > this.index) parts.push(this.text.slice(this.index, end))
    return end
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
