import {createHash} from 'node:crypto'

import {readBoundedText, TRUST_FILE_LIMIT} from '../fs/read-bounded.js'
import {ImagetrustError} from '../lib/errors.js'
import type {TrustFile} from './types.js'
import {validateTrustFile} from './validate.js'
import {missingTrustFileHint} from './hints.js'
import {loadYamlSource} from './yaml-source.js'

export async function loadTrustFile(file: string): Promise<TrustFile> {
  let text: string
  try {
    text = await readBoundedText(file, TRUST_FILE_LIMIT)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new ImagetrustError(
      code === 'ENOENT' ? `trust file ${file} does not exist` : error instanceof ImagetrustError ? `trust file ${error.message}` : `cannot read trust file ${file}: ${(error as Error).message}`,
      {hint: code === 'ENOENT' ? missingTrustFileHint(file) : undefined},
    )
  }

  return {...validateTrustFile(await loadYamlSource(text, file)), digest: textDigest(text)}
}

export function textDigest(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** The trust file as already read, while the file still holds the same text; otherwise read again. */
export async function reloadTrustFile(file: string, loaded: TrustFile | undefined): Promise<TrustFile> {
  if (!loaded?.digest) return loadTrustFile(file)
  const text = await readBoundedText(file, TRUST_FILE_LIMIT).catch(() => null)
  return text !== null && textDigest(text) === loaded.digest ? loaded : loadTrustFile(file)
}
