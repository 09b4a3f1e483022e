import {readdir} from 'node:fs/promises'
import path from 'node:path'

import {MiB, readRegularFile} from '../fs/read-bounded.js'
import type {HostRoot} from './paths.js'

/** Where systemd looks for system units, highest precedence first. */
export const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system'] as const

export interface UnitEnvironment {
  unit: string
  /** The unit file and its drop-ins, in the order systemd applies them (host paths). */
  files: string[]
  /** Environment= assignments, the last one of a name winning. */
  env: Record<string, string>
}

const UNIT_FILE_LIMIT = MiB

/** Splits an Environment= value as systemd does: space-separated words, "double" or 'single' quoted. */
export function environmentWords(value: string): string[] {
  const words: string[] = []
  for (const match of value.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)) {
    words.push(match[1] === undefined ? (match[2] ?? match[3]) : match[1].replaceAll(/\\(.)/g, '$1'))
  }

  return words
}

/** The Environment= lines of a unit file's [Service] section, applied onto env (an empty assignment clears it). */
export function applyUnitText(text: string, env: Record<string, string>): void {
  let section = ''
  // Continuation lines (a trailing backslash) join the next line.
  for (const raw of text.replaceAll(/\\\r?\n/g, ' ').split(/\r?\n/)) {
    const line = raw.trim()
    if (line.startsWith('#') || line.startsWith(';') || line === '') continue
    if (line.startsWith('[')) {
      section = line
      continue
    }

    const match = /^Environment\s*=\s*(.*)$/.exec(line)
    if (section !== '[Service]' || !match) continue
    if (match[1].trim() === '') {
      for (const key of Object.keys(env)) delete env[key]
      continue
    }

    for (const word of environmentWords(match[1])) {
      const eq = word.indexOf('=')
      if (eq > 0) env[word.slice(0, eq)] = word.slice(eq + 1)
    }
  }
}

async function readText(root: HostRoot, hostPath: string): Promise<string | undefined> {
  return readRegularFile(root.resolveFull(hostPath), UNIT_FILE_LIMIT).then(
    (r) => r.content.toString('utf8'),
    () => undefined,
  )
}

/** A service unit's environment under --root: its unit file (the first found) and every drop-in, by name. */
export async function readUnitEnvironment(root: HostRoot, unit: string): Promise<UnitEnvironment | undefined> {
  let main: {file: string; text: string} | undefined
  for (const dir of UNIT_DIRS) {
    const file = path.posix.join(dir, unit)
    const text = await readText(root, file)
    if (text !== undefined) {
      main = {file, text}
      break
    }
  }

  // A drop-in in a higher directory replaces the same-named one below; all apply in name order.
  const dropIns = new Map<string, string>()
  for (const dir of [...UNIT_DIRS].reverse()) {
    const dropInDir = path.posix.join(dir, `${unit}.d`)
    const names = await readdir(root.resolveFull(dropInDir)).catch(() => [] as string[])
    for (const name of names.filter((n) => n.endsWith('.conf'))) dropIns.set(name, path.posix.join(dropInDir, name))
  }

  if (!main && dropIns.size === 0) return undefined
  const env: Record<string, string> = {}
  const files: string[] = []
  if (main) {
    applyUnitText(main.text, env)
    files.push(main.file)
  }

  for (const name of [...dropIns.keys()].sort()) {
    const file = dropIns.get(name)!
    const text = await readText(root, file)
    if (text === undefined) continue
    applyUnitText(text, env)
    files.push(file)
  }

  return {unit, files, env}
}
