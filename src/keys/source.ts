import path from 'node:path'

import {MiB, readRegularFile} from '../fs/read-bounded.js'
import {ImagetrustError, locationOf} from '../lib/errors.js'
import type {KeySpec} from '../trustfile/types.js'

/** Reads a key's bytes from its one source; errors name the trust file and line. */
export async function readKeySource(spec: KeySpec, trustFile: string, trustDir: string): Promise<Uint8Array> {
  const location = locationOf(trustFile, spec)
  if (spec.file !== undefined) {
    const file = path.resolve(trustDir, spec.file)
    try {
      return await readKeyFile(file)
    } catch (error) {
      throw new ImagetrustError(`key "${spec.name}": ${(error as Error).message}`, {location})
    }
  }

  if (spec.data !== undefined) return Buffer.from(spec.data, 'utf8')
  if (spec.url !== undefined) return fetchKey(spec.url, spec.name, location)
  throw new ImagetrustError(`key "${spec.name}" has no source`, {location})
}

/** No public key (not even a keyring of many) comes near this; anything larger is not one. */
export const KEY_SIZE_LIMIT = MiB

/** A key file's bytes: a regular file (a FIFO or device is refused without blocking) of at most 1 MiB. */
export async function readKeyFile(file: string): Promise<Uint8Array> {
  try {
    return (await readRegularFile(file, KEY_SIZE_LIMIT)).content
  } catch (error) {
    if (error instanceof ImagetrustError) throw error
    throw new ImagetrustError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
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
  return readCappedBody(response, url, name, location)
}

/** The body, read only up to the key size limit: a server streaming without end cannot fill the memory. */
export async function readCappedBody(response: Response, url: string, name: string, location?: {file: string; line?: number}): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let length = 0
  const reader = response.body?.getReader()
  try {
    for (;;) {
      const chunk = await reader?.read()
      if (!chunk || chunk.done) break
      length += chunk.value.length
      if (length > KEY_SIZE_LIMIT) throw new ImagetrustError(`key "${name}": ${url} sent more than ${KEY_SIZE_LIMIT / MiB} MiB`, {location})
      chunks.push(chunk.value)
    }
  } catch (error) {
    if (error instanceof ImagetrustError) throw error
    throw new ImagetrustError(`key "${name}": cannot fetch ${url}: ${(error as Error).message}`, {location})
  } finally {
    await reader?.cancel().catch(() => {})
  }

  return Buffer.concat(chunks, length)
}
