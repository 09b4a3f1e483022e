import {lstat, readdir, readlink} from 'node:fs/promises'
import path from 'node:path'

import {MiB, nameText, readRegularFile} from '../fs/read-bounded.js'
import {ImagetrustError} from '../lib/errors.js'
import {type KnownRegistries, parseRegistriesFile, type RegistriesFile} from '../registries-d/read.js'
import type {HostRoot} from './paths.js'

/**
 * Host files as found under --root, and registries.d directories as parsed:
 * apart from the host snapshot (snapshot.ts, which re-exports them), so that
 * a reader such as status loads no policy or state parser it does not need.
 */

/** A file on the host as found: content, mode, owner, and whether it is a link. */
export interface HostFile {
  hostPath: string
  /** Where it really is under --root. */
  realPath: string
  content: Buffer | null
  mode?: number
  uid?: number
  gid?: number
  symlinkTarget?: string
}

/** No policy, registries.d, key or state file is this large; a bigger one is refused rather than read. */
const HOST_FILE_LIMIT = 16 * MiB

export async function readHostFile(root: HostRoot, hostPath: string): Promise<HostFile> {
  const realPath = root.resolve(hostPath)
  const file: HostFile = {hostPath, realPath, content: null}
  try {
    const link = await lstat(realPath)
    if (link.isSymbolicLink()) file.symlinkTarget = await readlink(realPath)
    // A symlink is read where it points inside the root, never outside it.
    const {content, stats} = await readRegularFile(root.resolveFull(hostPath), HOST_FILE_LIMIT)
    file.content = content
    file.mode = stats.mode & 0o7777
    file.uid = stats.uid
    file.gid = stats.gid
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return file
    if (error instanceof ImagetrustError) throw error
    throw new ImagetrustError(`cannot read ${realPath}: ${code ?? (error as Error).message}`)
  }

  return file
}

/** A registries.d directory's *.yaml files, as parsed, and what is wrong with it. */
export interface RegistriesDirRead {
  dirHostPath: string
  files: RegistriesFile[]
  warnings: string[]
  broken?: Array<{path: string; detail: string}>
}

/**
 * A registries.d file whose name is not UTF-8, opened by its bytes. Its
 * host path carries the name with \xNN escapes, for messages: nothing is ever
 * written to it (plan refuses to edit it). A symlink is not followed.
 */
async function readUndecodable(realDir: string, dirHostPath: string, name: string, rawName: Buffer): Promise<HostFile> {
  const file = Buffer.concat([Buffer.from(`${realDir}/`), rawName])
  const hostFile: HostFile = {hostPath: path.posix.join(dirHostPath, name), realPath: path.join(realDir, name), content: null}
  const link = await lstat(file)
  if (link.isSymbolicLink()) return hostFile
  const {content, stats} = await readRegularFile(file, HOST_FILE_LIMIT)
  return {...hostFile, content, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid}
}

/** Every *.yaml file of a registries.d directory, parsed (one found in `known` unchanged is not parsed again). */
export async function readRegistriesDir(root: HostRoot, dirHostPath: string, known?: KnownRegistries): Promise<RegistriesDirRead> {
  const realDir = root.resolveFull(dirHostPath) // listed where a symlinked directory really is, in the root
  let raw: Buffer[]
  try {
    // As bytes: a name that is not UTF-8 is still a *.yaml file containers/image reads.
    raw = await readdir(realDir, {encoding: 'buffer'})
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {dirHostPath, files: [], warnings: []}
    throw new ImagetrustError(`cannot read ${realDir}: ${(error as Error).message}`)
  }

  const warnings: string[] = []
  const files: RegistriesFile[] = []
  const broken: Array<{path: string; detail: string}> = []
  // Sorted by bytes, as Go's os.ReadDir sorts them.
  for (const rawName of raw.sort(Buffer.compare)) {
    const {text: name, utf8} = nameText(rawName)
    if (name.endsWith('.yml')) warnings.push(`${path.join(realDir, name)}: containers/image reads only *.yaml; this .yml file is ignored`)
    if (!name.endsWith('.yaml')) continue
    const hostFile = utf8 ? await readHostFile(root, path.posix.join(dirHostPath, name)) : await readUndecodable(realDir, dirHostPath, name, rawName)
    if (!hostFile.content) {
      // Listed but unreadable (a dangling link): containers/image fails every pull on it.
      broken.push({path: hostFile.realPath, detail: `listed in registries.d but cannot be read${hostFile.symlinkTarget ? ` (a symlink to ${hostFile.symlinkTarget}, which does not exist)` : ''}: containers/image fails every pull`})
      continue
    }

    const parsed = await parseRegistriesFile(name, hostFile.hostPath, hostFile.content.toString('utf8'), hostFile.realPath, known)
    // Assigned, not spread: the file's Document is parsed only if something reads it.
    files.push(Object.assign(parsed.file, {mode: hostFile.mode, uid: hostFile.uid, gid: hostFile.gid}, utf8 ? {} : {undecodableName: true}))
    warnings.push(...parsed.warnings)
  }

  return {dirHostPath, files, warnings, broken}
}
