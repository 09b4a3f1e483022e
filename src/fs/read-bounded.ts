import {constants, type Stats} from 'node:fs'
import {open} from 'node:fs/promises'

import {ImagetrustError} from '../lib/errors.js'

export const MiB = 1024 * 1024

export interface BoundedFile {
  content: Buffer
  /** fstat of the file read (the same file the content came from). */
  stats: Stats
}

/**
 * Reads a regular file of at most `maxBytes`. Opened non-blocking and checked
 * with fstat before any read, so a FIFO or a device (/dev/zero) is refused at
 * once instead of hanging or growing without end. Errors carry the `code`
 * (ENOENT...) of the failed call so callers can tell "missing" apart.
 */
export async function readRegularFile(file: string, maxBytes: number): Promise<BoundedFile> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) throw new NotRegularFile(file, kindOf(stats))
    if (stats.size > maxBytes) throw new TooLarge(file, maxBytes)
    // Read to the end, not to st_size: the file may grow meanwhile; stop one byte past the limit.
    const chunks: Buffer[] = []
    let length = 0
    for (;;) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - length))
      const {bytesRead} = await handle.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      chunks.push(chunk.subarray(0, bytesRead))
      length += bytesRead
      if (length > maxBytes) throw new TooLarge(file, maxBytes)
    }

    return {content: Buffer.concat(chunks, length), stats}
  } finally {
    await handle.close()
  }
}

/** A trust file is YAML a person edits: 16 MiB is far beyond any real one (40,000 scopes take about 3 MiB). */
export const TRUST_FILE_LIMIT = 16 * MiB

/** A regular file's text (UTF-8), bounded like readRegularFile. */
export async function readBoundedText(file: string, maxBytes: number): Promise<string> {
  return (await readRegularFile(file, maxBytes)).content.toString('utf8')
}

/** A located error for a bad input file: which file, and what is wrong with it. */
export class NotRegularFile extends ImagetrustError {
  readonly code = 'ENOTREG'
  constructor(file: string, kind: string) {
    super(`${file} is a ${kind}, not a regular file`)
  }
}

export class TooLarge extends ImagetrustError {
  readonly code = 'EFBIG'
  constructor(file: string, maxBytes: number) {
    super(`${file} is larger than ${maxBytes >= MiB ? `${maxBytes / MiB} MiB` : `${maxBytes} bytes`}`)
  }
}

function kindOf(stats: Stats): string {
  if (stats.isFIFO()) return 'FIFO'
  if (stats.isCharacterDevice()) return 'character device'
  if (stats.isBlockDevice()) return 'block device'
  if (stats.isDirectory()) return 'directory'
  if (stats.isSocket()) return 'socket'
  return 'special file'
}
