/**
 * A JSON parser that keeps what JSON.parse throws away: the order and the
 * repetition of an object's keys. containers/image parses signature payloads
 * with a token decoder that refuses a key seen twice (internal/json.go's
 * ParanoidUnmarshalJSONObject); JSON.parse keeps the last one silently.
 */
export type JsonNode =
  | {kind: 'object'; entries: Array<[string, JsonNode]>}
  | {kind: 'array'; items: JsonNode[]}
  | {kind: 'string'; value: string}
  | {kind: 'number'; value: number}
  | {kind: 'literal'; value: boolean | null}

export class StrictJsonError extends Error {}

const WHITESPACE = /[ \t\n\r]*/y
// eslint-disable-next-line no-control-regex -- JSON forbids raw control characters in strings
const STRING = /"(?:[^"\\\u0000-\u001F]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const LITERAL = /true|false|null/y
// Deeper than any payload needs; a hostile one cannot exhaust the stack.
const MAX_DEPTH = 200

class Reader {
  position = 0
  constructor(readonly text: string) {}

  skip(): void {
    WHITESPACE.lastIndex = this.position
    WHITESPACE.exec(this.text)
    this.position = WHITESPACE.lastIndex
  }

  match(re: RegExp): string | undefined {
    re.lastIndex = this.position
    const m = re.exec(this.text)
    if (!m) return undefined
    this.position = re.lastIndex
    return m[0]
  }

  fail(what: string): never {
    throw new StrictJsonError(`${what} at offset ${this.position}`)
  }

  expect(char: string): void {
    this.skip()
    if (this.text[this.position] !== char) this.fail(`expected "${char}"`)
    this.position++
  }
}

function parseContainer(r: Reader, close: string, depth: number, item: () => void): void {
  if (depth > MAX_DEPTH) r.fail('JSON nested too deeply')
  r.position++
  r.skip()
  if (r.text[r.position] === close) {
    r.position++
    return
  }

  for (;;) {
    item()
    r.skip()
    const next = r.text[r.position++]
    if (next === close) return
    if (next !== ',') r.fail(`expected "," or "${close}"`)
  }
}

function parseValue(r: Reader, depth: number): JsonNode {
  r.skip()
  const c = r.text[r.position]
  if (c === '{') {
    const entries: Array<[string, JsonNode]> = []
    parseContainer(r, '}', depth, () => {
      r.skip()
      const key = r.match(STRING) ?? r.fail('expected a string key')
      r.expect(':')
      entries.push([JSON.parse(key) as string, parseValue(r, depth + 1)])
    })
    return {kind: 'object', entries}
  }

  if (c === '[') {
    const items: JsonNode[] = []
    parseContainer(r, ']', depth, () => items.push(parseValue(r, depth + 1)))
    return {kind: 'array', items}
  }

  const string = r.match(STRING)
  if (string !== undefined) return {kind: 'string', value: JSON.parse(string) as string}
  const number = r.match(NUMBER)
  if (number !== undefined) return {kind: 'number', value: Number(number)}
  const literal = r.match(LITERAL)
  if (literal !== undefined) return {kind: 'literal', value: literal === 'null' ? null : literal === 'true'}
  return r.fail(c === undefined ? 'unexpected end of JSON' : `unexpected character ${JSON.stringify(c)}`)
}

/** One JSON value, nothing after it but whitespace. */
export function parseStrictJson(text: string): JsonNode {
  const r = new Reader(text)
  const value = parseValue(r, 0)
  r.skip()
  if (r.position !== text.length) r.fail('unexpected data after the JSON value')
  return value
}

/**
 * ParanoidUnmarshalJSONObject: an object whose keys appear once each. With
 * `exact`, those keys and no others, every one of them present.
 */
export function strictObject(node: JsonNode, where: string, exact?: string[]): Map<string, JsonNode> {
  if (node.kind !== 'object') throw new StrictJsonError(`${where}: JSON object expected, got ${node.kind === 'literal' ? String(node.value) : `a ${node.kind}`}`)
  const fields = new Map<string, JsonNode>()
  for (const [key, value] of node.entries) {
    if (fields.has(key)) throw new StrictJsonError(`${where}: Duplicate key "${key}"`)
    if (exact && !exact.includes(key)) throw new StrictJsonError(`${where}: Unknown key "${key}"`)
    fields.set(key, value)
  }

  for (const key of exact ?? []) if (!fields.has(key)) throw new StrictJsonError(`${where}: Key "${key}" missing in a JSON object`)
  return fields
}

/** What Go's json decoder puts in a string field: a string, or nothing for null; anything else is an error. */
export function goString(node: JsonNode, where: string): string {
  if (node.kind === 'string') return node.value
  if (node.kind === 'literal' && node.value === null) return ''
  throw new StrictJsonError(`${where}: cannot unmarshal ${node.kind === 'literal' ? 'bool' : node.kind} into a string`)
}
