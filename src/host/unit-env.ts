import {readdir} from 'node:fs/promises'
import path from 'node:path'

import {MiB, readRegularFile} from '../fs/read-bounded.js'
import {allInOrder, upToFirst} from '../lib/in-order.js'
import type {HostRoot} from './paths.js'

/** Where systemd looks for system units, highest precedence first. */
export const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system'] as const

export interface UnitEnvironment {
  unit: string
  /** The unit file and its drop-ins, in the order systemd applies them (host paths). */
  files: string[]
  /** Environment= assignments, then the EnvironmentFile= files' (which systemd lets override them), the last one of a name winning. */
  env: Record<string, string>
  /** The EnvironmentFile= files it names (host paths, found or not): their content decides env too. */
  environmentFiles: string[]
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

/**
 * The Environment= lines of a unit file's [Service] section, applied onto env
 * (an empty assignment clears it); its EnvironmentFile= entries are added to
 * environmentFiles (an empty one clears the list), "-" marking an optional file.
 */
export function applyUnitText(text: string, env: Record<string, string>, environmentFiles: string[] = []): void {
  let section = ''
  // Continuation lines (a trailing backslash) join the next line.
  for (const raw of text.replaceAll(/\\\r?\n/g, ' ').split(/\r?\n/)) {
    const line = raw.trim()
    if (line.startsWith('#') || line.startsWith(';') || line === '') continue
    if (line.startsWith('[')) {
      section = line
      continue
    }

    const file = /^EnvironmentFile\s*=\s*(.*)$/.exec(line)
    if (section === '[Service]' && file) {
      if (file[1].trim() === '') environmentFiles.length = 0
      else environmentFiles.push(...environmentWords(file[1]))
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

/** KEY=VALUE lines of an EnvironmentFile, applied onto env: # and ; comments, "double" or 'single' quoted values. */
export function applyEnvironmentFile(text: string, env: Record<string, string>): void {
  for (const raw of text.replaceAll(/\\\r?\n/g, '').split(/\r?\n/)) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(raw)
    if (!match) continue
    const value = match[2]
    const quoted = /^"((?:[^"\\]|\\.)*)"$/.exec(value) ?? /^'([^']*)'$/.exec(value)
    env[match[1]] = quoted ? (value.startsWith('"') ? quoted[1].replaceAll(/\\(.)/g, '$1') : quoted[1]) : value
  }
}

async function readText(root: HostRoot, hostPath: string): Promise<string | undefined> {
  return readRegularFile(root.resolveFull(hostPath), UNIT_FILE_LIMIT).then(
    (r) => r.content.toString('utf8'),
    () => undefined,
  )
}

/**
 * A service unit's environment under --root: its unit file (the first found)
 * and every drop-in, by name. The candidates are read at once (most do not
 * exist), and used in systemd's order.
 */
export async function readUnitEnvironment(root: HostRoot, unit: string): Promise<UnitEnvironment | undefined> {
  const mainFiles = UNIT_DIRS.map((dir) => path.posix.join(dir, unit))
  const dropInDirs = [...UNIT_DIRS].reverse().map((dir) => path.posix.join(dir, `${unit}.d`))
  const [texts, listings] = await allInOrder([
    upToFirst(
      mainFiles.map((file) => readText(root, file)),
      (text) => text !== undefined,
    ),
    allInOrder(dropInDirs.map(async (dir) => readdir(root.resolveFull(dir)).catch(() => [] as string[]))),
  ])
  const main = texts.at(-1) === undefined ? undefined : {file: mainFiles[texts.length - 1], text: texts.at(-1)!}
  // A drop-in in a higher directory replaces the same-named one below; all apply in name order.
  const dropIns = new Map<string, string>()
  for (const [i, names] of listings.entries()) for (const name of names.filter((n) => n.endsWith('.conf'))) dropIns.set(name, path.posix.join(dropInDirs[i], name))
  if (!main && dropIns.size === 0) return undefined
  const env: Record<string, string> = {}
  const named: string[] = []
  const files: string[] = []
  if (main) {
    applyUnitText(main.text, env, named)
    files.push(main.file)
  }

  const dropInFiles = [...dropIns.keys()].sort().map((name) => dropIns.get(name)!)
  for (const [i, text] of (await allInOrder(dropInFiles.map((file) => readText(root, file)))).entries()) {
    if (text === undefined) continue
    applyUnitText(text, env, named)
    files.push(dropInFiles[i])
  }

  // Read when the unit starts, in order, overriding Environment= (a missing "-" file is skipped, as systemd does).
  const environmentFiles = named.map((entry) => entry.replace(/^-/, '')).filter((file) => path.posix.isAbsolute(file))
  for (const text of await allInOrder(environmentFiles.map((file) => readText(root, file)))) {
    if (text !== undefined) applyEnvironmentFile(text, env)
  }

  return {unit, files, env, environmentFiles}
}
