import {createHash, randomBytes} from 'node:crypto'
import {mkdir, readdir, readFile} from 'node:fs/promises'
import path from 'node:path'

import {managedPaths} from '../host/managed-paths.js'
import type {HostRoot} from '../host/paths.js'
import {type HostFile, readHostFile} from '../host/snapshot.js'
import {MiB, readRegularFile} from '../fs/read-bounded.js'
import {ImagetrustError} from '../lib/errors.js'
import {type BackupEntry, type BackupManifest, parseManifest} from './backup-manifest.js'

export type {BackupEntry, BackupManifest} from './backup-manifest.js'
import {removeFile, restoreSymlink, writeFileAtomic} from '../fs/atomic.js'
import {removeFingerprint} from './fingerprint.js'
import type {FileChange} from './types.js'


export function sha256(content: string | Uint8Array): string {
  return createHash('sha256').update(content).digest('hex')
}

export function newBackupId(now = new Date()): string {
  return `${now.toISOString().replaceAll(/[-:]/g, '').replace('.', '')}-${randomBytes(3).toString('hex')}`
}

/** Saves every file the plan touches before anything is written. */
export async function createBackup(root: HostRoot, changes: FileChange[], id = newBackupId()): Promise<BackupManifest> {
  const dir = root.resolve(path.posix.join(root.backupDir, id))
  await mkdir(dir, {recursive: true, mode: 0o700})
  const files: BackupEntry[] = []
  for (const [index, change] of changes.entries()) {
    const file = await readHostFile(root, change.hostPath)
    const entry: BackupEntry = {hostPath: change.hostPath, existed: file.content !== null, afterSha256: change.after === null ? null : sha256(change.after)}
    if (file.content) {
      entry.blob = `file-${index}`
      entry.mode = file.mode
      entry.uid = file.uid
      entry.gid = file.gid
      entry.symlinkTarget = file.symlinkTarget
      await writeFileAtomic(path.join(dir, entry.blob), file.content, {mode: 0o600})
    }

    files.push(entry)
  }

  const manifest: BackupManifest = {id, createdAt: new Date().toISOString(), rolledBack: false, files}
  await writeFileAtomic(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n', {mode: 0o600})
  return manifest
}

/** Manifests and blobs are read in the root and bounded like any input. */
const BACKUP_FILE_LIMIT = 16 * MiB

export async function listBackups(root: HostRoot): Promise<BackupManifest[]> {
  const dir = root.resolveFull(root.backupDir)
  const ids = await readdir(dir).catch(() => [] as string[])
  const managed = await managedPaths(root)
  const manifests: BackupManifest[] = []
  for (const id of ids.sort()) {
    const file = root.resolveFull(path.posix.join(root.backupDir, id, 'manifest.json'))
    const text = await readBackupFile(file, {missingOk: true})
    if (text === null) continue // an apply killed before its manifest landed wrote nothing else
    manifests.push(parseManifest(text.toString('utf8'), file, id, managed))
  }

  return manifests
}

async function readBackupFile(file: string, options: {missingOk: true}): Promise<Buffer | null>
async function readBackupFile(file: string): Promise<Buffer>
async function readBackupFile(file: string, options: {missingOk?: boolean} = {}): Promise<Buffer | null> {
  try {
    return (await readRegularFile(file, BACKUP_FILE_LIMIT)).content
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (options.missingOk && (code === 'ENOENT' || code === 'ENOTDIR')) return null
    if (error instanceof ImagetrustError) throw error
    throw new ImagetrustError(`cannot read ${file}: ${code ?? (error as Error).message}`)
  }
}

export interface RollbackResult {
  backup: string
  files: Array<{path: string; action: 'restore' | 'delete'}>
}

/** Restores the files of the newest apply not yet rolled back. Refuses if they changed since, unless forced. */
export async function rollbackLatest(root: HostRoot, options: {force?: boolean; dryRun?: boolean}): Promise<RollbackResult> {
  const manifest = (await listBackups(root)).reverse().find((m) => !m.rolledBack)
  if (!manifest) throw new ImagetrustError(`no backup to roll back to under ${root.resolve(root.backupDir)}`)
  if (!options.force) {
    for (const entry of manifest.files) {
      const current = await readHostFile(root, entry.hostPath)
      const currentSha = current.content ? sha256(current.content) : null
      if (currentSha !== entry.afterSha256) {
        throw new ImagetrustError(`${current.realPath} changed after apply ${manifest.id}; rollback would lose that change`, {
          hint: 'Run rollback --force to restore anyway.',
        })
      }
    }
  }

  const files = manifest.files.map((entry) => ({path: root.resolve(entry.hostPath), action: entry.existed ? ('restore' as const) : ('delete' as const)}))
  if (!options.dryRun) {
    await restoreBackup(root, manifest)
    await removeFingerprint(root)
    await markRolledBack(root, manifest)
  }

  return {backup: manifest.id, files}
}

/** A backup already put back is not the one the next rollback should restore. */
export async function markRolledBack(root: HostRoot, manifest: BackupManifest): Promise<void> {
  manifest.rolledBack = true
  const file = root.resolve(path.posix.join(root.backupDir, manifest.id, 'manifest.json'))
  await writeFileAtomic(file, JSON.stringify(manifest, null, 2) + '\n', {mode: 0o600})
}

/** Puts every file of a backup back as it was; returns how many files differed and were restored. */
export async function restoreBackup(root: HostRoot, manifest: BackupManifest): Promise<number> {
  let restored = 0
  for (const entry of manifest.files) if (await restoreEntry(root, manifest, entry, await readHostFile(root, entry.hostPath))) restored++
  return restored
}

/** Puts one file back as it was before the apply; false when it already is. */
async function restoreEntry(root: HostRoot, manifest: BackupManifest, entry: BackupEntry, current: HostFile): Promise<boolean> {
  const realPath = root.resolve(entry.hostPath)
  // Only what differs is touched: on a read-only file system the rest could not be written anyway.
  if (!entry.existed) {
    if (current.content === null) return false
    await removeFile(realPath)
  } else if (entry.symlinkTarget) {
    if (current.symlinkTarget === entry.symlinkTarget) return false
    await restoreSymlink(realPath, entry.symlinkTarget)
  } else {
    const content = await readBackupFile(root.resolveFull(path.posix.join(root.backupDir, manifest.id, entry.blob!)))
    if (current.symlinkTarget === undefined && current.content?.equals(content) && current.mode === entry.mode) return false
    await writeFileAtomic(realPath, content, {mode: entry.mode ?? 0o644, uid: entry.uid, gid: entry.gid})
  }

  return true
}

/**
 * Rolling back an interrupted apply: a file is put back when it holds what
 * it held before that apply, or what that apply wrote to it; anything else
 * was changed since, by someone else, and is left as it is ('changed').
 */
export async function restoreIfUnchanged(root: HostRoot, manifest: BackupManifest, entry: BackupEntry): Promise<'restored' | 'as before' | 'changed'> {
  const current = await readHostFile(root, entry.hostPath)
  const currentSha = current.content === null ? null : sha256(current.content)
  const blob = entry.blob && (await readBackupFile(root.resolveFull(path.posix.join(root.backupDir, manifest.id, entry.blob))))
  const beforeSha = blob ? sha256(blob) : entry.existed ? undefined : null
  const ours = currentSha === entry.afterSha256 || currentSha === beforeSha || (entry.symlinkTarget !== undefined && current.symlinkTarget === entry.symlinkTarget)
  if (!ours) return 'changed'
  return (await restoreEntry(root, manifest, entry, current)) ? 'restored' : 'as before'
}

/** Backup directories without a manifest were left by a run killed while backing up; nothing refers to them. */
export async function removeIncompleteBackups(root: HostRoot): Promise<void> {
  // A directory is listed where it really is in the root: a symlinked one must not lead the sweep outside.
  const dir = root.resolveFull(root.backupDir)
  const {rm} = await import('node:fs/promises')
  for (const id of await readdir(dir).catch(() => [] as string[])) {
    const hasManifest = await readFile(path.join(dir, id, 'manifest.json')).then(
      () => true,
      () => false,
    )
    if (!hasManifest) await rm(path.join(dir, id), {recursive: true, force: true})
  }
}
