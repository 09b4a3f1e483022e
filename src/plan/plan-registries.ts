import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import {ImagetrustError} from '../lib/errors.js'
import {broaderScopes} from '../policy/effective.js'
import {OWNED_REGISTRIES_FILE, type Layout} from '../host/paths.js'
import type {HostSnapshot} from '../host/snapshot.js'
import type {LoadedKey} from '../keys/types.js'
import {type DesiredSection, mergeRegistriesD} from '../registries-d/merge.js'
import {findConflicts, parseRegistriesFile, type RegistriesFile} from '../registries-d/read.js'
import type {ScopeSpec, TrustFile} from '../trustfile/types.js'
import {ownershipOf} from './ownership.js'
import type {OwnershipState} from '../host/state.js'
import type {FileChange} from './types.js'

/** The registries.d settings a scope needs, with the key names the installed containers/image reads. */
export function registriesValues(spec: ScopeSpec, keysByName: Map<string, LoadedKey>, capabilities: Capabilities): Record<string, string | boolean> {
  const names = capabilities.lookasideKeys === 'lookaside' ? ['lookaside', 'lookaside-staging'] : ['sigstore', 'sigstore-staging']
  const values: Record<string, string | boolean> = {}
  if (spec.lookaside) values[names[0]] = spec.lookaside
  if (spec.lookasideStaging) values[names[1]] = spec.lookasideStaging
  const usesSigstore = spec.policy === 'signed' && keysByName.get(spec.keys[0])?.type === 'sigstore'
  const attachments = spec.sigstoreAttachments ?? (usesSigstore ? true : undefined)
  if (attachments !== undefined) values['use-sigstore-attachments'] = attachments
  return values
}

export interface RegistriesPlan {
  changes: FileChange[]
  warnings: string[]
  notes: string[]
  state: OwnershipState['registriesD']
  /** imagetrust.yaml as the plan leaves it, when it is ours. */
  owned?: {hostPath: string; text: string}
  /** Files (real paths) that make containers/image fail every pull. */
  broken: Array<{path: string; detail: string}>
}

/** Copies of the system files, placed in the user's registries.d (which replaces the system one). */
async function carryOver(systemFiles: RegistriesFile[], userDir: string): Promise<RegistriesFile[]> {
  const out: RegistriesFile[] = []
  for (const file of systemFiles) {
    if (file.name === OWNED_REGISTRIES_FILE) continue
    const hostPath = path.posix.join(userDir, file.name)
    out.push((await parseRegistriesFile(file.name, hostPath, file.text, hostPath)).file)
  }

  return out
}

/**
 * registries.d is read per key from the most specific section that sets it:
 * a foreign section below one of our scopes that sets the same key to
 * something else decides for the images it covers (a lookaside that may not
 * serve our signatures). Warned about, naming both.
 */
function sectionOverrides(files: RegistriesFile[], desired: DesiredSection[]): string[] {
  const ours = new Map(desired.map((d) => [d.scope, d.values]))
  const warnings: string[] = []
  for (const file of files) {
    if (file.name === OWNED_REGISTRIES_FILE) continue
    for (const [scope, line] of file.scopes) {
      if (ours.has(scope)) continue
      const owner = broaderScopes(scope)?.find((s) => ours.has(s))
      if (!owner) continue
      const section = file.doc.getIn(['docker', scope]) as {toJSON?: () => unknown} | null
      const values = (section && typeof section.toJSON === 'function' ? section.toJSON() : section) as Record<string, unknown> | null
      for (const [key, value] of Object.entries(ours.get(owner)!)) {
        if (values && key in values && values[key] !== value) {
          warnings.push(`${file.displayPath}:${line}: section "${scope}" sets ${key}: ${String(values[key])} for the images it covers, not the trust file's ${String(value)} for "${owner}"`)
        }
      }
    }
  }

  return warnings
}

/** imagetrust.yaml: 0644 or stricter, never writable by group or others, owned as the other managed files. */
function ownedAttributes(file: RegistriesFile | undefined, owner: {uid: number; gid: number} | undefined): {mode: number; reasons: FileChange['reasons']} {
  const mode = file?.mode === undefined ? 0o644 : file.mode & ~0o022
  const reasons: FileChange['reasons'] = []
  if (file?.mode !== undefined && file.mode !== mode) reasons.push('mode')
  if (file && owner && (file.uid !== owner.uid || file.gid !== owner.gid)) reasons.push('owner')
  return {mode, reasons}
}

export async function planRegistries(input: {
  trust: TrustFile
  host: HostSnapshot
  keysByName: Map<string, LoadedKey>
  capabilities: Capabilities
  layout: Layout
  previous: OwnershipState
  owner?: {uid: number; gid: number}
}): Promise<RegistriesPlan> {
  const {host, layout} = input
  const warnings: string[] = [...host.registriesD.warnings]
  const notes: string[] = []
  // A registries.d that containers/image cannot load fails every pull: drift, not just a warning.
  const broken = [...(host.registriesD.broken ?? [])]
  for (const conflict of findConflicts(host.registriesD.files)) {
    warnings.push(`registries.d is broken, containers/image fails every pull: ${conflict}`)
    // The directory as this run sees it (a conflict involves two of its files).
    broken.push({path: path.posix.dirname(host.registriesD.files[0].displayPath), detail: `${conflict}: containers/image fails every pull`})
  }

  const desired: DesiredSection[] = []
  for (const spec of input.trust.scopes) {
    const values = registriesValues(spec, input.keysByName, input.capabilities)
    if (Object.keys(values).length > 0) {
      desired.push({
        scope: spec.scope,
        values,
        get line() {
          return spec.line
        },
      })
    }
    if (spec.policy === 'signed' && !spec.lookaside && !host.registriesD.files.some((f) => f.scopes.has(spec.scope))) {
      warnings.push(`scope "${spec.scope}" is signed but has no lookaside: pulls read signatures from registries.d's default-docker or the built-in local directory`)
    }
  }

  warnings.push(...sectionOverrides(host.registriesD.files, desired))

  // A user's registries.d, once it exists, replaces the system directory: bring the system files along when creating it.
  let files = host.registriesD.files
  let carried: RegistriesFile[] = []
  const creatingUserDir = layout.kind === 'user' && files.length === 0 && desired.length > 0
  if (creatingUserDir && host.systemRegistriesD) {
    carried = await carryOver(host.systemRegistriesD.files, layout.registriesD)
    files = carried
    for (const file of carried) notes.push(`carried ${file.name} over from the system registries.d: ${layout.registriesD} replaces it for this user`)
  }

  const ownedHostPath = path.posix.join(layout.registriesD, OWNED_REGISTRIES_FILE)
  const ownedFound = files.find((f) => f.hostPath === ownedHostPath)
  const merged = await mergeRegistriesD({
    dirHostPath: layout.registriesD,
    files,
    desired,
    previousEdits: input.previous.registriesD.foreignEdits,
    trustFile: input.trust.file,
    ownedFile: ownershipOf(host.state.value, ownedHostPath, ownedFound?.text ?? null, input.previous.registriesD.ownedScopes.length > 0),
  })
  warnings.push(...merged.warnings)
  const changes: FileChange[] = []
  const carriedPaths = new Set(carried.map((f) => f.hostPath))
  for (const change of merged.changes) {
    const before = carriedPaths.has(change.hostPath) ? null : change.before
    const action = before === null ? 'create' : change.after === null ? 'delete' : 'update'
    const reasons: FileChange['reasons'] = [action === 'create' ? 'missing' : action === 'delete' ? 'extra' : 'content']
    if (change.hostPath === ownedHostPath) {
      // Our own file: its mode and owner are ours to set too.
      const attributes = ownedAttributes(ownedFound, input.owner)
      if (action === 'update') reasons.push(...attributes.reasons)
      changes.push({hostPath: change.hostPath, kind: 'registries.d', action, before, after: change.after, mode: attributes.mode, owner: input.owner, reasons})
    } else {
      // A foreign file we edit keeps its owner's mode.
      const found = files.find((f) => f.hostPath === change.hostPath)
      if (found?.undecodableName) throw new ImagetrustError(`${found.displayPath}: this registries.d file must change, but its name is not UTF-8, so imagetrust reads it (as containers/image does) and never writes it`, {hint: 'Rename it to a UTF-8 name and run again.'})
      const mode = found?.mode ?? 0o644
      changes.push({hostPath: change.hostPath, kind: 'registries.d', action, before, after: change.after, mode, reasons})
    }

    carriedPaths.delete(change.hostPath)
  }

  // Our file with the right content but a loose mode or another owner: repaired too.
  const attributes = ownedAttributes(ownedFound, input.owner)
  if (merged.owned && ownedFound && attributes.reasons.length > 0 && !changes.some((c) => c.hostPath === ownedHostPath)) {
    changes.push({hostPath: ownedHostPath, kind: 'registries.d', action: 'update', before: ownedFound.text, after: ownedFound.text, mode: attributes.mode, owner: input.owner, reasons: attributes.reasons})
  }

  for (const file of carried.filter((f) => carriedPaths.has(f.hostPath))) {
    changes.push({hostPath: file.hostPath, kind: 'registries.d', action: 'create', before: null, after: file.text, mode: 0o644, reasons: ['missing']})
  }

  // An existing user directory: say which system entries this user does not see.
  if (layout.kind === 'user' && !creatingUserDir && files.length + desired.length > 0 && host.systemRegistriesD) {
    const userScopes = new Set([...files.flatMap((f) => [...f.scopes.keys()]), ...desired.map((d) => d.scope)])
    for (const file of host.systemRegistriesD.files) {
      for (const scope of file.scopes.keys()) {
        if (!userScopes.has(scope)) warnings.push(`${file.displayPath}: "${scope}" does not apply to this user: ${layout.registriesD} replaces the system registries.d`)
      }
    }
  }

  return {
    changes,
    warnings,
    notes,
    owned: merged.owned,
    broken,
    state: {
      ownedScopes: merged.ownedScopes,
      foreignEdits: merged.foreignEdits,
      carriedOver: [...new Set([...input.previous.registriesD.carriedOver, ...carried.map((f) => f.hostPath)])],
    },
  }
}
