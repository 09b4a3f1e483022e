import {runTool} from '../exec/run-tool.js'
import {findOnPath} from '../host/detect.js'
import {MiB, readBoundedText} from '../fs/read-bounded.js'
import {ImagetrustError} from '../lib/errors.js'
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

/** A name as an engine logged it, fit to show on a terminal and to judge: no control characters. */
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
const PRINTABLE = /^[^\u0000-\u001F\u007F]+$/

/** The JSON values of podman events --format json: one object per line (Podman 4), or one array (Podman 5 with some backends). */
function eventObjects(text: string, problems: string[]): unknown[] {
  if (text.startsWith('[')) {
    try {
      return JSON.parse(text) as unknown[]
    } catch (error) {
      problems.push(`podman events: not JSON: ${(error as Error).message}`)
      return []
    }
  }

  const objects: unknown[] = []
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    try {
      objects.push(JSON.parse(line) as unknown)
    } catch {
      problems.push(`podman events: line ${i + 1} is not JSON, skipped`)
    }
  }

  return objects
}

/** podman events --format json: the pulls, each line on its own (a broken line is named in problems and skipped, not the rest). */
export function parsePodmanEvents(stdout: string, problems: string[] = []): Pull[] {
  const text = stdout.trim()
  if (text === '') return []
  const pulls: Pull[] = []
  for (const object of eventObjects(text, problems)) {
    if (typeof object !== 'object' || object === null) continue
    const event = object as {Name?: unknown; ID?: unknown; Status?: unknown; Time?: unknown; timeNano?: unknown}
    if (event.Status !== 'pull' || typeof event.Name !== 'string' || event.Name === '') continue
    if (!PRINTABLE.test(event.Name)) {
      problems.push(`podman events: a pull of a name with control characters, skipped: ${JSON.stringify(event.Name)}`)
      continue
    }

    const time = typeof event.Time === 'string' ? new Date(event.Time) : new Date((typeof event.timeNano === 'number' ? event.timeNano : 0) / 1e6)
    pulls.push({source: 'podman', reference: event.Name, image: typeof event.ID === 'string' && event.ID !== '' ? event.ID : undefined, time})
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

async function podmanPulls(window: Window, options: StorageOptions, problems: string[]): Promise<Pull[]> {
  const until = new Date(Math.max(window.until.getTime(), Date.now()) + UNTIL_AHEAD_MS).toISOString()
  const args = [...podmanGlobal(options), 'events', '--since', window.since.toISOString(), '--until', until, '--filter', 'event=pull', '--format', 'json']
  const result = await runTool('podman', args, {timeoutMs: 60_000})
  return parsePodmanEvents(result.stdout, problems).filter((p) => p.time >= window.since && p.time <= window.until)
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
export function parseCrioLog(text: string, window: Window, problems: string[] = []): Pull[] {
  const requested = new Map<string, string>()
  const pulls: Pull[] = []
  for (const line of text.split('\n')) {
    const msg = field(line, 'msg')
    if (!msg) continue
    // Only a request id pairs the two lines: without one, a Pulling line could lend its name to another pull.
    const id = field(line, 'id')
    const pulling = /^Pulling image: (\S+)$/.exec(msg)
    if (pulling && id) requested.set(id, pulling[1])
    const pulled = /^Pulled image: (\S+)$/.exec(msg)
    if (!pulled) continue
    const stamp = field(line, 'time')
    const time = stamp ? new Date(stamp.replace(' ', 'T')) : new Date(Number.NaN)
    const reference = (id ? requested.get(id) : undefined) ?? pulled[1]
    if (id) requested.delete(id)
    if (Number.isNaN(time.getTime()) || time < window.since || time > window.until) continue
    if (!PRINTABLE.test(reference)) {
      problems.push(`CRI-O: a pull of a name with control characters, skipped: ${JSON.stringify(reference)}`)
      continue
    }

    pulls.push({source: 'crio', reference, image: pulled[1], time})
  }

  return pulls
}

/** The largest --crio-log read: CRI-O's log for a window, never a device or an unbounded file. */
const CRIO_LOG_LIMIT = 256 * MiB

/** The --crio-log the user named: a regular file within the limit, or a clear error (never a warning: it was asked for). */
async function readCrioLog(file: string): Promise<string> {
  try {
    return await readBoundedText(file, CRIO_LOG_LIMIT)
  } catch (error) {
    const reason = error instanceof ImagetrustError ? error.message : ((error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message)
    throw new ImagetrustError(`--crio-log ${file}: ${reason}`)
  }
}

async function crioPulls(window: Window, options: PullHistoryOptions, problems: string[]): Promise<Pull[] | null> {
  if (!(await findOnPath('crio')) || !(await findOnPath('journalctl'))) return null
  const args = ['-u', 'crio', '--since', `@${Math.floor(window.since.getTime() / 1000)}`, '--until', `@${Math.ceil(window.until.getTime() / 1000)}`, '-o', 'cat', '--no-pager']
  return parseCrioLog((await runTool('journalctl', args, {timeoutMs: 60_000})).stdout, window, problems)
}

export async function readPullHistory(window: Window, options: PullHistoryOptions): Promise<{pulls: Pull[]; warnings: string[]}> {
  const pulls: Pull[] = []
  const warnings: string[] = []
  if (options.crioLog) pulls.push(...parseCrioLog(await readCrioLog(options.crioLog), window, warnings))
  const readers: Array<[string, () => Promise<Pull[] | null>]> = options.crioLog ? [] : [['CRI-O', () => crioPulls(window, options, warnings)]]
  if (await findOnPath('podman')) readers.unshift(['podman', () => podmanPulls(window, options, warnings)])
  for (const [name, read] of readers) {
    try {
      pulls.push(...((await read()) ?? []))
    } catch (error) {
      warnings.push(`${name}: cannot read what was pulled: ${(error as Error).message.split('\n')[0]}`)
    }
  }

  return {pulls, warnings}
}
