import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {ImagetrustError} from '../lib/errors.js'
import type {KeySpec} from '../trustfile/types.js'

/** Reads a key's bytes from its one source; errors name the trust file and line. */
export async function readKeySource(spec: KeySpec, trustFile: string, trustDir: string): Promise<Uint8Array> {
  const location = {file: trustFile, line: spec.line}
  if (spec.file !== undefined) {
    const file = path.resolve(trustDir, spec.file)
    try {
      return await readFile(file)
    } catch (error) {
      throw new ImagetrustError(`key "${spec.name}": cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {location})
    }
  }

  if (spec.data !== undefined) return Buffer.from(spec.data, 'utf8')
  if (spec.url !== undefined) return fetchKey(spec.url, spec.name, location)
  throw new ImagetrustError(`key "${spec.name}" has no source`, {location})
}

export async function fetchKey(url: string, name: string, location?: {file: string; line?: number}): Promise<Uint8Array> {
  if (!url.startsWith('https://')) throw new ImagetrustError(`key "${name}": refusing ${url}: only https:// URLs are allowed`, {location})
  let response: Response
  try {
    response = await fetch(url, {signal: AbortSignal.timeout(15_000), redirect: 'error'})
  } catch (error) {
    throw new ImagetrustError(`key "${name}": cannot fetch ${url}: ${(error as Error).message}`, {location})
  }

  if (!response.ok) throw new ImagetrustError(`key "${name}": ${url} answered HTTP ${response.status}`, {location})
  return new Uint8Array(await response.arrayBuffer())
}
