import {ImagetrustError} from '../lib/errors.js'
import {childPath, type JsonNode} from '../policy/json.js'

/**
 * Typed access to a parsed JSON document imagetrust wrote itself (state.json,
 * backup manifests). They are still input: each wrong type is an error that
 * names the file, the line and the JSON path, never a bare TypeError later.
 * Unknown keys are kept, not refused: a newer version may have added them.
 */
export class JsonFields {
  constructor(
    readonly file: string,
    /** What to do about a bad file, printed after the error. */
    readonly hint: string,
  ) {}

  fail(node: JsonNode, path: string, message: string): never {
    throw new ImagetrustError(message, {location: {file: this.file, line: node.pos.line, column: node.pos.column, path}, hint: this.hint})
  }

  /** The members of an object; `required` keys must be present. */
  object(node: JsonNode, path: string, required: string[] = []): Map<string, JsonNode> {
    if (node.kind !== 'object') this.fail(node, path, `expected an object, got ${describe(node)}`)
    const members = new Map(node.entries.map((e) => [e.key, e.value]))
    for (const key of required) if (!members.has(key)) this.fail(node, path, `"${key}" is missing`)
    return members
  }

  array(node: JsonNode, path: string): JsonNode[] {
    if (node.kind !== 'array') this.fail(node, path, `expected an array, got ${describe(node)}`)
    return node.items
  }

  string(node: JsonNode, path: string): string {
    if (node.kind !== 'string') this.fail(node, path, `expected a string, got ${describe(node)}`)
    return node.value
  }

  boolean(node: JsonNode, path: string): boolean {
    if (node.kind !== 'boolean') this.fail(node, path, `expected true or false, got ${describe(node)}`)
    return node.value
  }

  /** A non-negative integer (a mode, a uid). */
  count(node: JsonNode, path: string): number {
    if (node.kind !== 'number' || !Number.isSafeInteger(node.value) || node.value < 0) this.fail(node, path, `expected a non-negative integer, got ${describe(node)}`)
    return node.value
  }

  /** Each item of an array of strings, with its path, for further checks. */
  strings(node: JsonNode, path: string): Array<{value: string; node: JsonNode; path: string}> {
    return this.array(node, path).map((item, i) => ({value: this.string(item, `${path}[${i}]`), node: item, path: `${path}[${i}]`}))
  }

  /** Each member of an object, with its path. */
  entries(node: JsonNode, path: string): Array<{key: string; node: JsonNode; path: string}> {
    return [...this.object(node, path)].map(([key, value]) => ({key, node: value, path: childPath(path, key)}))
  }

  child(members: Map<string, JsonNode>, path: string, key: string): {node: JsonNode; path: string} | undefined {
    const node = members.get(key)
    return node && {node, path: childPath(path, key)}
  }
}

function describe(node: JsonNode): string {
  switch (node.kind) {
    case 'string': {
      return JSON.stringify(node.value.length > 40 ? `${node.value.slice(0, 40)}…` : node.value)
    }

    case 'number': {
      return node.raw
    }

    case 'boolean': {
      return String(node.value)
    }

    default: {
      return node.kind === 'null' ? 'null' : `an ${node.kind}`
    }
  }
}
