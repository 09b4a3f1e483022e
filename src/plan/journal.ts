import {lstat, rm} from 'node:fs/promises'
import path from 'node:path'

import {JsonFields} from '../host/json-fields.js'
import {managedPaths} from '../host/managed-paths.js'
import type {HostRoot} from '../host/paths.js'
import {removeFile, writeFileAtomic} from '../fs/atomic.js'
import {readRegularFile} from '../fs/read-bounded.js'
import {parseStrictJson} from '../policy/json.js'
import {parseManifest} from './backup-manifest.js'
import {markRolledBack, restoreIfUnchanged} from './backup.js'

/**
 * The intent record of an apply. The files one apply writes (keys,
 * registries.d, policy files, state.json) are renamed into place one by
 * one; state.json, which says which scopes and files are ours, comes last.
 * A run killed in between would leave files whose ownership state.json does
 * not record, and the next run would take our own rules for foreign ones.
 * So before the first rename, the journal names the apply's backup (written
 * and fsynced); after the last one it is removed. A journal found under the
 * lock is an apply that died mid-way: its backup is put back first, and the
 * host is again exactly what it was before that apply.
 */
export interface Journal {
  version: 1
  /** The backup directory (its id) that holds every file as it was before the apply. */
  backup: string
  pid: number
  startedAt: string
}

const BACKUP_ID = /^[0-9TZ]+-[0-9a-f]{6}$/

export function journalHostPath(root: HostRoot): string {
  return root.journalPath
}

/** Written and fsynced (file and directory) before the apply renames anything. */
export async function beginJournal(root: HostRoot, backupId: string): Promise<void> {
  const journal: Journal = {version: 1, backup: backupId, pid: process.pid, startedAt: new Date().toISOString()}
  await writeFileAtomic(root.resolve(journalHostPath(root)), JSON.stringify(journal, null, 2) + '\n', {mode: 0o600})
}

/** The apply is complete (or was rolled back): the next run has nothing to recover. */
export async function endJournal(root: HostRoot): Promise<void> {
  await removeFile(root.resolve(journalHostPath(root)))
}

/** Whether an interrupted apply left its journal (read-only: plan and check only report it). */
export async function interruptedApply(root: HostRoot): Promise<boolean> {
  return lstat(root.resolveFull(journalHostPath(root))).then(
    () => true,
    () => false,
  )
}

export function readJournal(text: string, file: string): Journal {
  const fields = new JsonFields(file, 'This is not a journal imagetrust wrote; move it away if no apply was interrupted.')
  const top = fields.object(parseStrictJson(text, file), '$', ['version', 'backup', 'pid', 'startedAt'])
  const version = top.get('version')!
  if (fields.count(version, '$.version') !== 1) fields.fail(version, '$.version', 'version must be 1')
  const backup = top.get('backup')!
  if (!BACKUP_ID.test(fields.string(backup, '$.backup'))) fields.fail(backup, '$.backup', 'expected the id of a backup directory (such as 20260101T000000000Z-0a1b2c)')
  return {version: 1, backup: fields.string(backup, '$.backup'), pid: fields.count(top.get('pid')!, '$.pid'), startedAt: fields.string(top.get('startedAt')!, '$.startedAt')}
}

/**
 * Under the lock, before planning: rolls back an apply that died mid-way.
 * Each file it lists is put back when it holds what it held before that
 * apply or what that apply wrote; a file changed since by someone else is
 * left alone (and said so). Safe to run again if this run dies too.
 * Returns what to tell the user.
 */
export async function recoverInterrupted(root: HostRoot): Promise<string[]> {
  const file = root.resolveFull(journalHostPath(root))
  const text = await readRegularFile(file, 64 * 1024).then(
    (read) => read.content.toString('utf8'),
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null
      throw error
    },
  )
  if (text === null) return []
  const journal = readJournal(text, file)
  const backupDir = path.posix.join(root.backupDir, journal.backup)
  const manifestFile = root.resolveFull(path.posix.join(backupDir, 'manifest.json'))
  const manifestText = await readRegularFile(manifestFile, 16 * 1024 * 1024).then(
    (read) => read.content.toString('utf8'),
    () => null,
  )
  const messages: string[] = []
  if (manifestText === null) {
    // Killed while backing up: nothing was renamed yet.
    await rm(root.resolveFull(backupDir), {recursive: true, force: true})
  } else {
    const manifest = parseManifest(manifestText, manifestFile, journal.backup, await managedPaths(root))
    let restored = 0
    for (const entry of manifest.files) {
      const outcome = await restoreIfUnchanged(root, manifest, entry)
      if (outcome === 'restored') restored++
      if (outcome === 'changed') messages.push(`${root.resolve(entry.hostPath)} changed after apply ${journal.backup} was interrupted: left as it is now`)
    }

    await markRolledBack(root, manifest)
    messages.unshift(`an earlier apply (pid ${journal.pid}, started ${journal.startedAt}) was interrupted before it finished: its backup ${journal.backup} was put back first (${restored} of ${manifest.files.length} file(s))`)
  }

  await endJournal(root)
  return messages
}
