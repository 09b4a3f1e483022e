import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {readBoundedText} from '../fs/read-bounded.js'
import type {HostRoot} from '../host/paths.js'

/**
 * When apply and check last ran, for status. A best-effort stamp beside the
 * state file (one small file per command, node built-ins only, so check
 * stays fast); a read-only state directory just leaves it unrecorded.
 */
export type Stamped = 'apply' | 'check'

function stampPath(root: HostRoot, what: Stamped): string {
  return root.resolve(path.posix.join(root.layout.stateDir, `last-${what}`))
}

export async function stamp(root: HostRoot, what: Stamped, now = new Date()): Promise<void> {
  try {
    await mkdir(path.dirname(stampPath(root, what)), {recursive: true})
    await writeFile(stampPath(root, what), `${now.toISOString()}\n`)
  } catch {}
}

export async function readStamp(root: HostRoot, what: Stamped): Promise<string | null> {
  const text = await readBoundedText(stampPath(root, what), 4096).catch(() => null)
  const value = text?.trim()
  return value && !Number.isNaN(Date.parse(value)) ? value : null
}
