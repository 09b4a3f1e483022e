import {stat} from 'node:fs/promises'

import {readBoundedText, TRUST_FILE_LIMIT} from '../fs/read-bounded.js'

import type {Document} from 'yaml'

import {ImagetrustError, ParseError} from '../lib/errors.js'
import {writeFileAtomic} from '../fs/atomic.js'
import type {TrustFile} from './types.js'
import {validateTrustFile} from './validate.js'
import {loadYamlSource} from './yaml-source.js'

/**
 * Edits the trust file in place with the yaml Document API, so comments,
 * order and layout survive. The result is validated before it is written
 * (atomically, mode kept); an edit that would break the file writes nothing.
 */
export async function editTrustFile(file: string, mutate: (doc: Document) => void | Promise<void>, options: {create?: boolean} = {}): Promise<TrustFile> {
  const {parseDocument} = await import('yaml')
  let text: string
  try {
    text = await readBoundedText(file, TRUST_FILE_LIMIT)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !options.create) {
      throw new ImagetrustError(error instanceof ImagetrustError ? `trust file ${error.message}` : `cannot read trust file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
    }

    text = 'version: 1\n'
  }

  const doc = parseDocument(text, {uniqueKeys: true})
  if (doc.errors.length > 0) throw new ParseError(doc.errors[0].message.split('\n')[0], {file})
  await mutate(doc)
  const after = doc.toString({lineWidth: 0})
  const trust = validateTrustFile(await loadYamlSource(after, file))
  if (after !== text) {
    const mode = await stat(file).then(
      (s) => s.mode & 0o7777,
      () => 0o644,
    )
    await writeFileAtomic(file, after, {mode})
  }

  return trust
}

/** Makes sure `key` holds a mapping (it may be absent or null in a hand-written file). */
export function ensureMap(doc: Document, path: string[]): void {
  const node = doc.getIn(path, true) as {flow?: boolean; items?: unknown[]} | null | undefined
  const value = doc.getIn(path)
  if (value === undefined || value === null) doc.setIn(path, doc.createNode({}))
  // `keys: {}` reads better as a block once it has entries.
  else if (node && node.flow && node.items?.length === 0) node.flow = false
}
