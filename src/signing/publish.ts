import {randomBytes} from 'node:crypto'
import {constants} from 'node:fs'
import {copyFile, type FileHandle, link, lstat, mkdir, open, readdir, realpath, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import {runTool} from '../exec/run-tool.js'
import type {HostRoot} from '../host/paths.js'
import {EXIT, ImagetrustError} from '../lib/errors.js'
import {stagingHostPath} from '../plan/staging.js'
import type {TrustFile} from '../trustfile/types.js'

/**
 * `publish`: copies new signatures from the signing host's staging
 * directories to the lookaside web root, a local directory or (rsync)
 * user@host:DIR. A file already there with the same bytes is left alone; one
 * with different bytes is a conflict, never overwritten.
 */
export interface PublishResult {
  from: string[]
  to: string
  remote: boolean
  /** Paths relative to the staging directory, as published. */
  copied: string[]
  /** Already published, same bytes. */
  unchanged: number
  conflicts: Array<{file: string; reason: string}>
  /** Not regular files (symlinks, devices): never published. */
  skipped: string[]
}

/** host:DIR or user@host:DIR, as rsync and scp write them (a local path has no colon before its first slash). */
export function isRemoteTarget(to: string): boolean {
  return /^(?:[^/@:\s]+@)?[^/:\s]+:/.test(to) && !/^[a-z]+:\/\//i.test(to)
}

/** The staging directories to publish from: --from, else the trust file's lookasideStaging (below --root). */
export function stagingSources(root: HostRoot, trust: TrustFile | undefined, from: string[] | undefined): string[] {
  if (from && from.length > 0) return from.map((f) => path.resolve(f))
  const dirs = (trust?.scopes ?? []).filter((s) => s.lookasideStaging).map((s) => root.resolve(stagingHostPath(s.lookasideStaging!)))
  if (dirs.length === 0) throw new ImagetrustError('no scope of the trust file has lookasideStaging, so there is nothing to publish from', {hint: 'Pass --from DIR.'})
  return [...new Set(dirs)]
}

async function walk(dir: string, prefix = ''): Promise<{files: string[]; skipped: string[]}> {
  const out = {files: [] as string[], skipped: [] as string[]}
  const entries = await readdir(path.join(dir, prefix), {withFileTypes: true}).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' && prefix === '') return []
    throw new ImagetrustError(`cannot read ${path.join(dir, prefix)}: ${error.code ?? error.message}`)
  })
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name
    if (entry.isDirectory()) {
      const sub = await walk(dir, rel)
      out.files.push(...sub.files)
      out.skipped.push(...sub.skipped)
    } else if (entry.isFile()) out.files.push(rel)
    else out.skipped.push(rel)
  }

  return out
}

/**
 * `--to` as rsync will read it: never an option (a leading '-'), and as
 * [user@]host:path with a plain user and host, so neither rsync nor ssh can
 * take a part of it for an option. Returns the target to pass, ending in '/'.
 */
export function remoteTarget(to: string): string {
  const match = /^(?:([^@]*)@)?(\[[0-9A-Fa-f:.]+\]|[^:[]*):(.*)$/s.exec(to)
  const [user, host, dir] = match ? [match[1], match[2], match[3]] : [undefined, '', '']
  if (user !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(user)) throw new ImagetrustError(`--to ${JSON.stringify(to)}: the user ${JSON.stringify(user)} is not a plain user name`, {exitCode: EXIT.usage})
  if (!/^(?:[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])$/.test(host)) throw new ImagetrustError(`--to ${JSON.stringify(to)}: ${JSON.stringify(host)} is not a plain host name`, {exitCode: EXIT.usage})
  // host: alone is the remote home directory; with a '/' added it would be the remote's root.
  if (dir === '') throw new ImagetrustError(`--to ${JSON.stringify(to)}: give the web root's path after the colon (user@host:/srv/sigstore)`, {exitCode: EXIT.usage})
  return `${user === undefined ? '' : `${user}@`}${host}:${dir.endsWith('/') ? dir : `${dir}/`}`
}

/** Refuses a --to that rsync or a shell could read as an option or split. */
export function checkTarget(to: string): void {
  if (to.startsWith('-')) throw new ImagetrustError(`--to ${JSON.stringify(to)} looks like an option, not a directory or user@host:DIR`, {exitCode: EXIT.usage, hint: `For a local directory whose name starts with "-", write ./${to}`})
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(to)) throw new ImagetrustError(`--to ${JSON.stringify(to)} has a control character`, {exitCode: EXIT.usage})
}

const CHUNK = 1 << 20

async function readFull(handle: FileHandle, buffer: Buffer): Promise<number> {
  let filled = 0
  while (filled < buffer.length) {
    const {bytesRead} = await handle.read(buffer, filled, buffer.length - filled, null)
    if (bytesRead === 0) break
    filled += bytesRead
  }

  return filled
}

/** Compares two files a chunk at a time: memory stays at two chunks whatever their size. */
export async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([open(a, 'r'), open(b, 'r')])
  try {
    const [sx, sy] = await Promise.all([x.stat(), y.stat()])
    if (sx.size !== sy.size) return false
    const [bx, by] = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)]
    for (;;) {
      const [nx, ny] = await Promise.all([readFull(x, bx), readFull(y, by)])
      if (nx !== ny || !bx.subarray(0, nx).equals(by.subarray(0, ny))) return false
      if (nx === 0) return true
    }
  } finally {
    await Promise.all([x.close(), y.close()])
  }
}

/**
 * Makes sure every directory from the web root down to DIR is a real
 * directory, creating the missing ones: publish never writes through a
 * symlink inside the web root. Returns why not, or undefined.
 */
async function realDirs(web: string, relDir: string): Promise<string | undefined> {
  let current = web
  for (const part of relDir === '.' ? [] : relDir.split('/')) {
    current = path.join(current, part)
    let info = await lstat(current).catch(() => undefined)
    if (!info) {
      await mkdir(current, {mode: 0o755}).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw new ImagetrustError(`cannot create ${current}: ${error.code ?? error.message}`)
      })
      info = await lstat(current)
    }

    if (info.isSymbolicLink()) return `${current} is a symlink; publish never writes through one`
    if (!info.isDirectory()) return `${current} exists and is not a directory`
  }

  return undefined
}

/**
 * Copies without ever replacing: a temp file made with O_EXCL, then link(2),
 * which fails if the name exists. The directory is checked again once the
 * temp file is in it, in case a symlink was swapped in meanwhile.
 */
async function copyNew(source: string, web: string, rel: string): Promise<'copied' | 'exists' | {refused: string}> {
  const dest = path.join(web, rel)
  const temp = path.join(path.dirname(dest), `.${path.basename(dest)}.imagetrust-${randomBytes(4).toString('hex')}`)
  await copyFile(source, temp, constants.COPYFILE_EXCL)
  try {
    if ((await realpath(path.dirname(temp))) !== path.dirname(dest)) return {refused: `${path.dirname(dest)} changed into a symlink while publishing`}
    await link(temp, dest)
    return 'copied'
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'exists'
    throw new ImagetrustError(`cannot publish ${dest}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  } finally {
    await rm(temp, {force: true})
  }
}

async function publishOne(source: string, web: string, rel: string, result: PublishResult): Promise<void> {
  const dest = path.join(web, rel)
  const refused = await realDirs(web, path.dirname(rel))
  if (refused) {
    result.conflicts.push({file: rel, reason: refused})
    return
  }

  const there = await lstat(dest).catch(() => undefined)
  if (there) {
    if (!there.isFile()) result.conflicts.push({file: rel, reason: `${dest} exists and is not a regular file`})
    else if (await sameBytes(source, dest)) result.unchanged++
    else result.conflicts.push({file: rel, reason: `${dest} exists with different content`})
    return
  }

  const outcome = await copyNew(source, web, rel)
  if (outcome === 'copied') result.copied.push(rel)
  else if (outcome !== 'exists') result.conflicts.push({file: rel, reason: outcome.refused})
  else if (await sameBytes(source, dest)) result.unchanged++
  else result.conflicts.push({file: rel, reason: `${dest} appeared with different content`})
}

async function publishLocal(from: string, to: string, result: PublishResult): Promise<void> {
  if (!(await stat(to).then((s) => s.isDirectory(), () => false))) throw new ImagetrustError(`--to ${to} is not a directory`)
  // The web root itself may be a link (given by the user); nothing below it may.
  const web = await realpath(to)
  const {files, skipped} = await walk(from)
  result.skipped.push(...skipped)
  for (const rel of files) await publishOne(path.join(from, rel), web, rel, result)
}

/**
 * A name rsync would print escaped (a control character, a backslash) cannot
 * be matched with its --itemize-changes line: such files are refused by name.
 */
function refuseUnsafeNames(from: string, files: string[]): void {
  // eslint-disable-next-line no-control-regex
  const bad = files.find((f) => /[\u0000-\u001f\u007f\\]/.test(f))
  if (bad) throw new ImagetrustError(`${path.join(from, bad)}: a file name with a control character (such as a newline) or a backslash cannot be published with rsync; nothing was sent`, {hint: 'Rename or remove it; signature files are named signature-N.'})
}

/** rsync: a checksum dry run finds new and differing files; only the new ones are sent, with --ignore-existing. */
async function publishRemote(from: string, to: string, result: PublishResult): Promise<void> {
  const {files, skipped} = await walk(from)
  refuseUnsafeNames(from, files)
  result.skipped.push(...skipped)
  const target = remoteTarget(to)
  // -s: paths go through rsync's protocol, not the remote shell; '--': no
  // path is ever read as an option; no --keep-dirlinks: the receiver never
  // writes through a symlinked directory.
  const base = ['--recursive', '--checksum', '--chmod=D755,F644', '--omit-dir-times', '--8-bit-output', '--secluded-args']
  const dry = await runTool('rsync', [...base, '--dry-run', '--itemize-changes', '--out-format=%i %n', '--', `${from}/`, target], {timeoutMs: 300_000})
  const known = new Set(files)
  const fresh: string[] = []
  const conflictsBefore = result.conflicts.length
  for (const line of dry.stdout.split('\n')) {
    const match = /^(\S{11}) (.+)$/.exec(line)
    if (!match || match[1][1] !== 'f' || !known.has(match[2])) continue
    if (match[1].slice(2, 5) === '+++') fresh.push(match[2])
    else if (match[1][2] === 'c') result.conflicts.push({file: match[2], reason: `${target}${match[2]} exists with different content`})
  }

  result.unchanged += files.length - fresh.length - (result.conflicts.length - conflictsBefore)
  if (fresh.length === 0) return
  const list = fresh.map((f) => `${f}\0`).join('')
  await runTool('rsync', [...base, '--ignore-existing', '--from0', '--files-from=-', '--', `${from}/`, target], {input: list, timeoutMs: 300_000})
  result.copied.push(...fresh)
}

export async function publishSignatures(options: {from: string[]; to: string}): Promise<PublishResult> {
  checkTarget(options.to)
  const remote = isRemoteTarget(options.to)
  const result: PublishResult = {from: options.from, to: options.to, remote, copied: [], unchanged: 0, conflicts: [], skipped: []}
  for (const from of options.from) {
    if (remote) await publishRemote(from, options.to, result)
    else await publishLocal(from, options.to, result)
  }

  return result
}
