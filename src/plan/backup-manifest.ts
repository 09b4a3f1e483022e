import {describeManaged, isManagedFile, type ManagedPaths} from '../host/managed-paths.js'
import {type JsonNode, parseStrictJson, toValue} from '../policy/json.js'
import {JsonFields} from '../host/json-fields.js'

/** What a file was before an apply, and what the apply made it (to detect later edits). */
export interface BackupEntry {
  hostPath: string
  existed: boolean
  mode?: number
  uid?: number
  gid?: number
  symlinkTarget?: string
  /** File name of the saved content inside the backup directory. */
  blob?: string
  afterSha256: string | null
}

export interface BackupManifest {
  id: string
  createdAt: string
  rolledBack: boolean
  files: BackupEntry[]
}

/** A blob is a plain file name inside its backup directory: no `/`, no `..`, not hidden. */
const BLOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const SHA256 = /^[0-9a-f]{64}$/

/**
 * Reads a backup manifest field by field. Rollback writes each hostPath and
 * reads each blob, so a hostPath must be a file imagetrust manages and a blob
 * a file of this backup; anything else is a located error, nothing restored.
 */
export function parseManifest(text: string, file: string, id: string, managed: ManagedPaths): BackupManifest {
  const root = parseStrictJson(text, file)
  const fields = new JsonFields(file, 'This backup manifest was not written by imagetrust; move its directory out of the backups to roll back an older apply.')
  const top = fields.object(root, '$', ['id', 'createdAt', 'rolledBack', 'files'])
  const idNode = top.get('id')!
  if (fields.string(idNode, '$.id') !== id) fields.fail(idNode, '$.id', `the id ${JSON.stringify((idNode as {value: string}).value)} is not its directory's name ${JSON.stringify(id)}`)
  fields.string(top.get('createdAt')!, '$.createdAt')
  fields.boolean(top.get('rolledBack')!, '$.rolledBack')
  for (const [i, entry] of fields.array(top.get('files')!, '$.files').entries()) checkEntry(fields, entry, `$.files[${i}]`, managed)
  return toValue(root) as unknown as BackupManifest
}

function checkEntry(fields: JsonFields, node: JsonNode, path: string, managed: ManagedPaths): void {
  const members = fields.object(node, path, ['hostPath', 'existed', 'afterSha256'])
  const hostPath = members.get('hostPath')!
  const value = fields.string(hostPath, `${path}.hostPath`)
  if (!isManagedFile(managed, value)) fields.fail(hostPath, `${path}.hostPath`, `${JSON.stringify(value)} is not a file imagetrust manages (${describeManaged(managed)})`)
  const existed = fields.boolean(members.get('existed')!, `${path}.existed`)
  for (const key of ['mode', 'uid', 'gid']) {
    const member = fields.child(members, path, key)
    if (member) fields.count(member.node, member.path)
  }

  const mode = fields.child(members, path, 'mode')
  if (mode && (mode.node as {value: number}).value > 0o7777) fields.fail(mode.node, mode.path, 'a file mode is at most 07777')
  const symlink = fields.child(members, path, 'symlinkTarget')
  if (symlink) fields.string(symlink.node, symlink.path)
  const blob = fields.child(members, path, 'blob')
  if (blob && !BLOB_NAME.test(fields.string(blob.node, blob.path))) fields.fail(blob.node, blob.path, 'a blob is a file name inside the backup directory')
  // A file that existed is restored from its blob, or as the symlink it was.
  if (existed && !blob && !symlink) fields.fail(node, path, '"blob" is missing for a file that existed')
  const after = members.get('afterSha256')!
  if (after.kind !== 'null' && !SHA256.test(fields.string(after, `${path}.afterSha256`))) fields.fail(after, `${path}.afterSha256`, 'expected a SHA-256 in hex, or null')
}
