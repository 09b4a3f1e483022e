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

export async function loadYamlSource(text: string, file: string): Promise<YamlSource> {
  const {LineCounter, parseDocument, isMap, isNode, isScalar} = await import('yaml')
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, uniqueKeys: true, prettyErrors: false, strict: true})
  const error = doc.errors[0]
  if (error) {
    const pos = lineCounter.linePos(error.pos[0])
    const message = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
    throw new ParseError(message, {file, line: pos.line, column: pos.col})
  }

  return {
    file,
    value: doc.toJS({maxAliasCount: 50}),
    lineOf(path) {
      for (let depth = path.length; depth >= 0; depth--) {
        // Prefer the line of a mapping key: that is where a reader looks.
        const parent = depth > 0 ? (doc.getIn(path.slice(0, depth - 1), true) as unknown) : undefined
        if (isMap(parent)) {
          const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === String(path[depth - 1]))
          if (pair && isNode(pair.key) && pair.key.range) return lineCounter.linePos(pair.key.range[0]).line
        }

        const node = depth === 0 ? doc.contents : (doc.getIn(path.slice(0, depth), true) as unknown)
        if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line
      }

      return undefined
    },
  }
}
