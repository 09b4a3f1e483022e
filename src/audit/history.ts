import {readFile} from 'node:fs/promises'

import {runTool} from '../exec/run-tool.js'
import {findOnPath} from '../host/detect.js'
import type {StorageOptions} from './storage.js'
import type {Window} from './since.js'

/**
 * What this host pulled in a window, read (never changed) from the engines'
 * own records: Podman's events, from whichever backend containers.conf sets
 * (podman events reads the journal or the events file itself; a rootless user
 * running imagetrust --user reads their own), and CRI-O's "Pulled image" log
 * lines, from its journal or a log file.
 */
export interface Pull {
  source: 'podman' | 'crio'
  /** The name the pull used. */
  reference: string
  /** The image ID or repo digest the engine recorded, when it did. */
  image?: string
  time: Date
}

export interface PullHistoryOptions extends StorageOptions {
  /** A CRI-O log file to read instead of its journal. */
  crioLog?: string
}

function podmanGlobal(options: StorageOptions): string[] {
  return [
    ...(options.storageRoot ? ['--root', options.storageRoot] : []),
    ...(options.runroot ? ['--runroot', options.runroot] : []),
    ...(options.storageDriver ? ['--storage-driver', options.storageDriver] : []),
  ]
}

/** podman events --format json: one object per line (Podman 4), or one array (Podman 5 with some backends). */
export function parsePodmanEvents(stdout: string): Pull[] {
  const text = stdout.trim()
  if (text === '') return []
  const objects: unknown[] = text.startsWith('[') ? (JSON.parse(text) as unknown[]) : text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown)
  const pulls: Pull[] = []
  for (const object of objects) {
    const event = object as {Name?: string; ID?: string; Status?: string; Time?: string; time?: number; timeNano?: number}
    if (event.Status !== 'pull' || !event.Name) continue
    const time = event.Time ? new Date(event.Time) : new Date((event.timeNano ?? 0) / 1e6)
    pulls.push({source: 'podman', reference: event.Name, image: event.ID || undefined, time})
  }

  return pulls
}

/**
 * Podman 4.3's file backend stops reading when --until passes, on a timer
 * started as it opens the file: an --until already past races the read and
 * returns some, or none, of the events (seen here with podman 4.3.1). So
 * --until is a little ahead of the moment podman starts (it waits for it),
 * and the window is applied here.
 */
const UNTIL_AHEAD_MS = 2000

async function podmanPulls(window: Window, options: StorageOptions): Promise<Pull[]> {
  const until = new Date(Math.max(window.until.getTime(), Date.now()) + UNTIL_AHEAD_MS).toISOString()
  const args = [...podmanGlobal(options), 'events', '--since', window.since.toISOString(), '--until', until, '--filter', 'event=pull', '--format', 'json']
  const result = await runTool('podman', args, {timeoutMs: 60_000})
  return parsePodmanEvents(result.stdout).filter((p) => p.time >= window.since && p.time <= window.until)
}

const FIELD = (name: string) => new RegExp(`(?:^|\\s)${name}=(?:"((?:[^"\\\\]|\\\\.)*)"|(\\S+))`)

function field(line: string, name: string): string | undefined {
  const m = FIELD(name).exec(line)
  return m ? (m[1] === undefined ? m[2] : m[1].replaceAll(/\\(.)/g, '$1')) : undefined
}

/**
 * CRI-O logs `Pulling image: NAME` and then `Pulled image: REF` with the same
 * request id (logrus text: time="…" level=info msg="…" id=…). The name comes
 * from the first, the time and the pulled image from the second.
 */
export function parseCrioLog(text: string, window: Window): Pull[] {
  const requested = new Map<string, string>()
  const pulls: Pull[] = []
  for (const line of text.split('\n')) {
    const msg = field(line, 'msg')
    if (!msg) continue
    const id = field(line, 'id') ?? ''
    const pulling = /^Pulling image: (\S+)$/.exec(msg)
    if (pulling) requested.set(id, pulling[1])
    const pulled = /^Pulled image: (\S+)$/.exec(msg)
    if (!pulled) continue
    const stamp = field(line, 'time')
    const time = stamp ? new Date(stamp.replace(' ', 'T')) : new Date(Number.NaN)
    const reference = requested.get(id) ?? pulled[1]
    requested.delete(id)
    if (Number.isNaN(time.getTime()) || time < window.since || time > window.until) continue
    pulls.push({source: 'crio', reference, image: pulled[1], time})
  }

  return pulls
}

async function crioPulls(window: Window, options: PullHistoryOptions): Promise<Pull[] | null> {
  if (options.crioLog) return parseCrioLog(await readFile(options.crioLog, 'utf8'), window)
  if (!(await findOnPath('crio')) || !(await findOnPath('journalctl'))) return null
  const args = ['-u', 'crio', '--since', `@${Math.floor(window.since.getTime() / 1000)}`, '--until', `@${Math.ceil(window.until.getTime() / 1000)}`, '-o', 'cat', '--no-pager']
  return parseCrioLog((await runTool('journalctl', args, {timeoutMs: 60_000})).stdout, window)
}

export async function readPullHistory(window: Window, options: PullHistoryOptions): Promise<{pulls: Pull[]; warnings: string[]}> {
  const pulls: Pull[] = []
  const warnings: string[] = []
  const readers: Array<[string, () => Promise<Pull[] | null>]> = [['CRI-O', () => crioPulls(window, options)]]
  if (await findOnPath('podman')) readers.unshift(['podman', () => podmanPulls(window, options)])
  for (const [name, read] of readers) {
    try {
      pulls.push(...((await read()) ?? []))
    } catch (error) {
      warnings.push(`${name}: cannot read what was pulled: ${(error as Error).message.split('\n')[0]}`)
    }
  }

  return {pulls, warnings}
}
