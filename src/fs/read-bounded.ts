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
export async function readRegularFile(file: string | Buffer, maxBytes: number): Promise<BoundedFile> {
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

/**
 * A file name as read from a directory listing (bytes), as text: itself when
 * it is UTF-8, else with each undecodable byte written \xNN. The second is
 * for messages only: open the file by its bytes.
 */
export function nameText(raw: Buffer): {text: string; utf8: boolean} {
  const text = raw.toString('utf8')
  if (Buffer.from(text, 'utf8').equals(raw)) return {text, utf8: true}
  let out = ''
  for (let i = 0; i < raw.length; ) {
    const width = utf8Width(raw, i)
    out += width > 0 ? raw.subarray(i, i + width).toString('utf8') : `\\x${raw[i].toString(16).padStart(2, '0')}`
    i += Math.max(width, 1)
  }

  return {text: out, utf8: false}
}

/** The length of the well-formed UTF-8 sequence at i, or 0. */
function utf8Width(raw: Buffer, i: number): number {
  const b = raw[i]
  const width = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0
  if (width <= 1 || i + width > raw.length) return width === 1 ? 1 : 0
  const piece = raw.subarray(i, i + width)
  return Buffer.from(piece.toString('utf8'), 'utf8').equals(piece) ? width : 0
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
  constructor(file: string | Buffer, kind: string) {
    super(`${file} is a ${kind}, not a regular file`)
  }
}

export class TooLarge extends ImagetrustError {
  readonly code = 'EFBIG'
  constructor(file: string | Buffer, maxBytes: number) {
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
