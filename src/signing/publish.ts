import {randomBytes} from 'node:crypto'
import {copyFile, link, lstat, mkdir, readdir, readFile, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import {runTool} from '../exec/run-tool.js'
import type {HostRoot} from '../host/paths.js'
import {ImagetrustError} from '../lib/errors.js'
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

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([readFile(a), readFile(b)])
  return x.equals(y)
}

/** Copies without ever replacing: a temp file, then link(2), which fails if the name exists. */
async function copyNew(source: string, dest: string): Promise<'copied' | 'exists'> {
  await mkdir(path.dirname(dest), {recursive: true, mode: 0o755})
  const temp = path.join(path.dirname(dest), `.${path.basename(dest)}.imagetrust-${randomBytes(4).toString('hex')}`)
  await copyFile(source, temp)
  try {
    await link(temp, dest)
    return 'copied'
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'exists'
    throw new ImagetrustError(`cannot publish ${dest}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  } finally {
    await rm(temp, {force: true})
  }
}

async function publishLocal(from: string, to: string, result: PublishResult): Promise<void> {
  const web = path.resolve(to)
  if (!(await stat(web).then((s) => s.isDirectory(), () => false))) throw new ImagetrustError(`--to ${to} is not a directory`)
  const {files, skipped} = await walk(from)
  result.skipped.push(...skipped)
  for (const rel of files) {
    const source = path.join(from, rel)
    const dest = path.join(web, rel)
    const there = await lstat(dest).catch(() => undefined)
    if (there) {
      if (!there.isFile()) result.conflicts.push({file: rel, reason: `${dest} exists and is not a regular file`})
      else if (await sameBytes(source, dest)) result.unchanged++
      else result.conflicts.push({file: rel, reason: `${dest} exists with different content`})
      continue
    }

    if ((await copyNew(source, dest)) === 'copied') result.copied.push(rel)
    else if (await sameBytes(source, dest)) result.unchanged++
    else result.conflicts.push({file: rel, reason: `${dest} appeared with different content`})
  }
}

/** rsync: a checksum dry run finds new and differing files; only the new ones are sent, with --ignore-existing. */
async function publishRemote(from: string, to: string, result: PublishResult): Promise<void> {
  const {skipped} = await walk(from)
  result.skipped.push(...skipped)
  const target = to.endsWith('/') ? to : `${to}/`
  const base = ['--recursive', '--checksum', '--chmod=D755,F644', '--omit-dir-times']
  const dry = await runTool('rsync', [...base, '--dry-run', '--itemize-changes', '--out-format=%i %n', `${from}/`, target], {timeoutMs: 300_000})
  const fresh: string[] = []
  const conflictsBefore = result.conflicts.length
  for (const line of dry.stdout.split('\n')) {
    const match = /^(\S{11}) (.+)$/.exec(line)
    if (!match || match[1][1] !== 'f') continue
    if (match[1].slice(2, 5) === '+++') fresh.push(match[2])
    else if (match[1][2] === 'c') result.conflicts.push({file: match[2], reason: `${target}${match[2]} exists with different content`})
  }

  const {files} = await walk(from)
  result.unchanged += files.length - fresh.length - (result.conflicts.length - conflictsBefore)
  if (fresh.length === 0) return
  await runTool('rsync', [...base, '--ignore-existing', '--files-from=-', `${from}/`, target], {input: `${fresh.join('\n')}\n`, timeoutMs: 300_000})
  result.copied.push(...fresh)
}

export async function publishSignatures(options: {from: string[]; to: string}): Promise<PublishResult> {
  const remote = isRemoteTarget(options.to)
  const result: PublishResult = {from: options.from, to: options.to, remote, copied: [], unchanged: 0, conflicts: [], skipped: []}
  for (const from of options.from) {
    if (remote) await publishRemote(from, options.to, result)
    else await publishLocal(from, options.to, result)
  }

  return result
}
