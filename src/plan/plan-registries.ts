import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import {ImagetrustError} from '../lib/errors.js'
import {broaderScopes} from '../policy/effective.js'
import {HOST_PATHS, OWNED_REGISTRIES_FILE, type Layout} from '../host/paths.js'
import type {HostSnapshot} from '../host/snapshot.js'
import type {LoadedKey} from '../keys/types.js'
import {describeConflict, effectiveFiles, type RegistriesDirs, type RegistriesView, viewConflicts} from '../registries-d/layers.js'
import {type DesiredSection, mergeRegistriesD} from '../registries-d/merge.js'
import {type OverridePlacement, overrideText} from '../registries-d/override.js'
import {parseRegistriesFile, type RegistriesFile} from '../registries-d/read.js'
import type {ScopeSpec, TrustFile} from '../trustfile/types.js'
import {type Ownership, ownershipOf} from './ownership.js'
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
  /** Files the plan leaves that imagetrust owns whole (imagetrust.yaml, vendor overrides), with their content. */
  ownedFiles: Array<{hostPath: string; text: string}>
  /** Files (real paths) that make containers/image fail every pull. */
  broken: Array<{path: string; detail: string}>
}

export interface RegistriesPlanInput {
  trust: TrustFile
  host: HostSnapshot
  keysByName: Map<string, LoadedKey>
  capabilities: Capabilities
  layout: Layout
  previous: OwnershipState
  owner?: {uid: number; gid: number}
  /**
   * How each engine that uses the managed files reads registries.d, and the
   * directories they consult as found. Absent: one directory, the layout's
   * (a user's replacing the system one), as containers/image up to 5.39 reads it.
   */
  registries?: {views: RegistriesView[]; dirs: RegistriesDirs}
}

/** registries.d as the engines see it: their views, the directories, and which views read the managed directory. */
interface Sight {
  views: RegistriesView[]
  /** Views that read the managed directory: the ones a plan can change. */
  served: RegistriesView[]
  dirs: RegistriesDirs
}

/** Before the engine view: one directory, the user's replacing the system's. */
function singleDirectorySight(host: HostSnapshot, layout: Layout): Pick<Sight, 'views' | 'dirs'> {
  const dirs = new Map<string, RegistriesFile[]>()
  // An empty managed directory counts as missing: a user's gets the system files carried over, as before.
  if (host.registriesD.files.length > 0) dirs.set(layout.registriesD, host.registriesD.files)
  if (layout.kind === 'user') {
    if (host.systemRegistriesD) dirs.set(HOST_PATHS.registriesD, host.systemRegistriesD.files)
    return {views: [{label: 'containers/image', merge: 'single', dirs: [HOST_PATHS.registriesD, layout.registriesD]}], dirs}
  }

  return {views: [{label: 'containers/image', merge: 'single', dirs: [layout.registriesD]}], dirs}
}

/** A view reads the managed directory when it merges it, or (one directory) when it is the highest one there, or will be once created. */
function serves(view: RegistriesView, dirs: RegistriesDirs, managed: string): boolean {
  if (!view.dirs.includes(managed)) return false
  if (view.merge === 'by-name') return true
  return [...view.dirs].reverse().find((d) => dirs.has(d) || d === managed) === managed
}

function withDir(dirs: RegistriesDirs, dir: string, files: RegistriesFile[]): RegistriesDirs {
  return new Map([...dirs, [dir, files]])
}

/** The trust file's registries.d sections. */
function desiredSections(input: RegistriesPlanInput): DesiredSection[] {
  const desired: DesiredSection[] = []
  for (const spec of input.trust.scopes) {
    const values = registriesValues(spec, input.keysByName, input.capabilities)
    if (Object.keys(values).length === 0) continue
    desired.push({
      scope: spec.scope,
      values,
      get line() {
        return spec.line
      },
    })
  }

  return desired
}

/** Files every served view loads, each once, in view order: what scope lookups and warnings consider. */
function visibleFiles(sight: Sight): RegistriesFile[] {
  return [...new Set(sight.served.flatMap((v) => effectiveFiles(v, sight.dirs)))]
}

/** A registries.d that containers/image cannot load fails every pull: drift, not just a warning. */
function loadProblems(host: HostSnapshot, sight: Pick<Sight, 'views' | 'dirs'>): {broken: RegistriesPlan['broken']; warnings: string[]} {
  const broken = [...(host.registriesD.broken ?? [])]
  const warnings: string[] = []
  const several = sight.views.length > 1
  for (const conflict of viewConflicts(sight.views, sight.dirs)) {
    const who = several ? ` (${conflict.views.join(', ')})` : ''
    warnings.push(`registries.d is broken, containers/image fails every pull${who}: ${describeConflict(conflict)}`)
    broken.push({path: conflict.second.path, detail: `${describeConflict(conflict)}: containers/image fails every pull${who}`})
  }

  return {broken, warnings}
}

/** Copies of the system files, placed in the user's registries.d (which replaces the system one). */
async function carryOver(systemFiles: readonly RegistriesFile[], userDir: string): Promise<RegistriesFile[]> {
  const out: RegistriesFile[] = []
  for (const file of systemFiles) {
    if (file.name === OWNED_REGISTRIES_FILE) continue
    const hostPath = path.posix.join(userDir, file.name)
    out.push((await parseRegistriesFile(file.name, hostPath, file.text, hostPath)).file)
  }

  return out
}

/**
 * A user's registries.d, once it exists, replaces the system directory for
 * engines up to 5.39: the system files are carried along when it is created.
 * Engines from 5.40 keep reading the system directories, so when every one
 * of the user's engines merges, nothing is copied.
 */
async function carriedFiles(sight: Sight, layout: Layout, desired: DesiredSection[]): Promise<RegistriesFile[]> {
  // An empty directory counts as missing: the engine would read nothing of the system's.
  if (layout.kind !== 'user' || desired.length === 0 || (sight.dirs.get(layout.registriesD)?.length ?? 0) > 0) return []
  const single = sight.served.filter((v) => v.merge === 'single')
  const replaced = [...new Set(single.map((v) => [...v.dirs].reverse().find((d) => d !== layout.registriesD && sight.dirs.has(d))))]
  const files = replaced.flatMap((d) => (d === undefined ? [] : [...sight.dirs.get(d)!]))
  return carryOver(files, layout.registriesD)
}

/** Overrides an earlier apply wrote, still at their place: ours (or changed by hand since), by host path. */
function earlierOverrides(input: RegistriesPlanInput, dirs: RegistriesDirs): Map<string, {file: RegistriesFile; ownership: Ownership}> {
  const found = new Map<string, {file: RegistriesFile; ownership: Ownership}>()
  for (const record of input.previous.registriesD.overrides ?? []) {
    const file = dirs.get(path.posix.dirname(record.file))?.find((f) => f.hostPath === record.file)
    const ownership = ownershipOf(input.host.state.value, record.file, file?.text ?? null, false)
    if (file && (ownership === 'ours' || ownership === 'modified')) found.set(record.file, {file, ownership})
  }

  return found
}

function withoutFiles(dirs: RegistriesDirs, hostPaths: ReadonlySet<string>): RegistriesDirs {
  return new Map([...dirs].map(([dir, files]) => [dir, files.filter((f) => !hostPaths.has(f.hostPath))]))
}

function sightOf(found: Pick<Sight, 'views' | 'dirs'>, dirs: RegistriesDirs, managed: string): Sight {
  return {views: found.views, dirs, served: found.views.filter((v) => serves(v, dirs, managed))}
}

const twoDefinitions = (scope: string, a: RegistriesFile, b: RegistriesFile) =>
  `registries.d scope "${scope}" is already defined in two files, ${a.displayPath}:${a.scopes.get(scope)} and ${b.displayPath}:${b.scopes.get(scope)}; containers/image fails every pull like this. Remove one definition, then apply again.`

/**
 * Where each section goes: a scope no file defines into imagetrust.yaml and
 * one the managed directory defines edited there (both by mergeRegistriesD);
 * one a lower directory defines into a same-named override. A definition
 * that no file here can replace is refused, never doubled.
 */
function placeSections(desired: DesiredSection[], sight: Sight, managed: string, trust: {file: string; ownedHostPath?: string}): {inPlace: DesiredSection[]; overrides: OverridePlacement[]} {
  // Our own imagetrust.yaml defines nothing that is not ours: its sections move wherever they now belong.
  const visible = visibleFiles(sight).filter((f) => f.hostPath !== trust.ownedHostPath)
  const inPlace: DesiredSection[] = []
  const byVendor = new Map<RegistriesFile, DesiredSection[]>()
  for (const section of desired) {
    const defining = visible.filter((f) => f.scopes.has(section.scope))
    // Located only for an error: reading a scope's line parses the trust file again, the slow way.
    const location = () => ({file: trust.file, line: section.line})
    if (defining.length > 1) throw new ImagetrustError(twoDefinitions(section.scope, defining[0], defining[1]), {location: location()})
    const vendor = defining.find((f) => path.posix.dirname(f.hostPath) !== managed)
    if (!vendor) {
      inPlace.push(section)
      continue
    }

    const blocker = sight.served.find((v) => effectiveFiles(v, sight.dirs).includes(vendor) && !(v.merge === 'by-name' && v.dirs.indexOf(path.posix.dirname(vendor.hostPath)) < v.dirs.indexOf(managed)))
    if (blocker || vendor.name === OWNED_REGISTRIES_FILE) {
      throw new ImagetrustError(`registries.d scope "${section.scope}" is defined in ${vendor.displayPath}:${vendor.scopes.get(section.scope)}, which imagetrust does not manage and cannot replace from ${managed}${blocker ? ` (${blocker.label} reads it after ${managed})` : ''}; a second definition would fail every pull`, {
        location: location(),
        hint: `move that entry into ${managed}, or remove it, then apply again`,
      })
    }

    byVendor.set(vendor, [...(byVendor.get(vendor) ?? []), section])
  }

  const overrides = [...byVendor].map(([vendor, sections]) => ({hostPath: path.posix.join(managed, vendor.name), vendor, sections}))
  return {inPlace, overrides}
}

/** imagetrust.yaml and overrides: 0644 or stricter, never writable by group or others, owned as the other managed files. */
function ownedAttributes(file: RegistriesFile | undefined, owner: {uid: number; gid: number} | undefined): {mode: number; reasons: FileChange['reasons']} {
  const mode = file?.mode === undefined ? 0o644 : file.mode & ~0o022
  const reasons: FileChange['reasons'] = []
  if (file?.mode !== undefined && file.mode !== mode) reasons.push('mode')
  if (file && owner && (file.uid !== owner.uid || file.gid !== owner.gid)) reasons.push('owner')
  return {mode, reasons}
}

/** A file imagetrust owns whole, written when its content, mode or owner differs. */
function ownedFileChange(hostPath: string, found: RegistriesFile | undefined, after: string, owner: RegistriesPlanInput['owner']): FileChange | undefined {
  const attributes = ownedAttributes(found, owner)
  const before = found?.text ?? null
  const reasons: FileChange['reasons'] = before === after ? attributes.reasons : [before === null ? 'missing' : 'content', ...attributes.reasons]
  if (reasons.length === 0) return undefined
  return {hostPath, kind: 'registries.d', action: before === null ? 'create' : 'update', before, after, mode: attributes.mode, owner, reasons}
}

/** The overrides this plan writes, and the earlier ones it no longer needs: deleted (the vendor file is read again) unless changed by hand. */
async function planOverrides(
  placements: OverridePlacement[],
  earlier: Map<string, {file: RegistriesFile; ownership: Ownership}>,
  owner: RegistriesPlanInput['owner'],
): Promise<{changes: FileChange[]; owned: RegistriesPlan['ownedFiles']; records: NonNullable<OwnershipState['registriesD']['overrides']>; warnings: string[]}> {
  const result = {changes: [] as FileChange[], owned: [] as RegistriesPlan['ownedFiles'], records: [] as NonNullable<OwnershipState['registriesD']['overrides']>, warnings: [] as string[]}
  for (const placement of placements) {
    const text = await overrideText(placement)
    const change = ownedFileChange(placement.hostPath, earlier.get(placement.hostPath)?.file, text, owner)
    if (change) result.changes.push(change)
    result.owned.push({hostPath: placement.hostPath, text})
    result.records.push({file: placement.hostPath, vendor: placement.vendor.hostPath})
  }

  for (const [hostPath, {file, ownership}] of earlier) {
    if (placements.some((p) => p.hostPath === hostPath)) continue
    if (ownership === 'ours') result.changes.push({hostPath, kind: 'registries.d', action: 'delete', before: file.text, after: null, mode: 0o644, reasons: ['extra']})
    else result.warnings.push(`${file.displayPath} is no longer needed, but it changed since imagetrust wrote it: left in place, and no longer managed`)
  }

  return result
}

/**
 * registries.d is read per key from the most specific section that sets it:
 * a foreign section below one of our scopes that sets the same key to
 * something else decides for the images it covers (a lookaside that may not
 * serve our signatures). Warned about, naming both.
 */
function sectionOverrides(files: RegistriesFile[], desired: DesiredSection[], managed: string): string[] {
  const ours = new Map(desired.map((d) => [d.scope, d.values]))
  const warnings: string[] = []
  for (const file of files) {
    if (file.hostPath === path.posix.join(managed, OWNED_REGISTRIES_FILE)) continue
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

/** A signed scope with no lookaside of its own and none in registries.d reads signatures from the default. */
function lookasideWarnings(trust: TrustFile, visible: RegistriesFile[]): string[] {
  return trust.scopes
    .filter((spec) => spec.policy === 'signed' && !spec.lookaside && !visible.some((f) => f.scopes.has(spec.scope)))
    .map((spec) => `scope "${spec.scope}" is signed but has no lookaside: pulls read signatures from registries.d's default-docker or the built-in local directory`)
}

/** mergeRegistriesD's edits as file changes: imagetrust.yaml with its mode and owner, foreign files with theirs, carried copies created. */
function mergedChanges(
  merged: Awaited<ReturnType<typeof mergeRegistriesD>>,
  files: readonly RegistriesFile[],
  carried: RegistriesFile[],
  ownedHostPath: string,
  owner: RegistriesPlanInput['owner'],
): FileChange[] {
  const ownedFound = files.find((f) => f.hostPath === ownedHostPath)
  const changes: FileChange[] = []
  const carriedPaths = new Set(carried.map((f) => f.hostPath))
  for (const change of merged.changes) {
    const before = carriedPaths.has(change.hostPath) ? null : change.before
    const action = before === null ? 'create' : change.after === null ? 'delete' : 'update'
    const reasons: FileChange['reasons'] = [action === 'create' ? 'missing' : action === 'delete' ? 'extra' : 'content']
    if (change.hostPath === ownedHostPath) {
      // Our own file: its mode and owner are ours to set too.
      const attributes = ownedAttributes(ownedFound, owner)
      if (action === 'update') reasons.push(...attributes.reasons)
      changes.push({hostPath: change.hostPath, kind: 'registries.d', action, before, after: change.after, mode: attributes.mode, owner, reasons})
    } else {
      // A foreign file we edit keeps its owner's mode.
      const found = files.find((f) => f.hostPath === change.hostPath)
      if (found?.undecodableName) throw new ImagetrustError(`${found.displayPath}: this registries.d file must change, but its name is not UTF-8, so imagetrust reads it (as containers/image does) and never writes it`, {hint: 'Rename it to a UTF-8 name and run again.'})
      changes.push({hostPath: change.hostPath, kind: 'registries.d', action, before, after: change.after, mode: found?.mode ?? 0o644, reasons})
    }

    carriedPaths.delete(change.hostPath)
  }

  // Our file with the right content but a loose mode or another owner: repaired too.
  const attributes = ownedAttributes(ownedFound, owner)
  if (merged.owned && ownedFound && attributes.reasons.length > 0 && !changes.some((c) => c.hostPath === ownedHostPath)) {
    changes.push({hostPath: ownedHostPath, kind: 'registries.d', action: 'update', before: ownedFound.text, after: ownedFound.text, mode: attributes.mode, owner, reasons: attributes.reasons})
  }

  for (const file of carried.filter((f) => carriedPaths.has(f.hostPath))) {
    changes.push({hostPath: file.hostPath, kind: 'registries.d', action: 'create', before: null, after: file.text, mode: 0o644, reasons: ['missing']})
  }

  return changes
}

/** An existing user directory that replaces the system one (up to 5.39): say which system entries this user does not see. */
function unseenSystemEntries(sight: Sight, layout: Layout, desired: DesiredSection[], carried: RegistriesFile[]): string[] {
  const files = sight.dirs.get(layout.registriesD) ?? []
  if (layout.kind !== 'user' || carried.length > 0 || files.length + desired.length === 0) return []
  const replaced = new Set(sight.served.filter((v) => v.merge === 'single').flatMap((v) => v.dirs.filter((d) => d !== layout.registriesD)))
  const userScopes = new Set([...files.flatMap((f) => [...f.scopes.keys()]), ...desired.map((d) => d.scope)])
  const warnings: string[] = []
  for (const file of [...replaced].flatMap((d) => [...(sight.dirs.get(d) ?? [])])) {
    for (const scope of file.scopes.keys()) {
      if (!userScopes.has(scope)) warnings.push(`${file.displayPath}: "${scope}" does not apply to this user: ${layout.registriesD} replaces the system registries.d`)
    }
  }

  return warnings
}

/** The directories as the plan leaves them. */
async function afterChanges(dirs: RegistriesDirs, changes: FileChange[]): Promise<RegistriesDirs> {
  const after = new Map([...dirs].map(([dir, files]) => [dir, [...files]]))
  for (const change of changes) {
    const dir = path.posix.dirname(change.hostPath)
    const name = path.posix.basename(change.hostPath)
    const files = (after.get(dir) ?? []).filter((f) => f.hostPath !== change.hostPath)
    if (change.after !== null) files.push((await parseRegistriesFile(name, change.hostPath, change.after)).file)
    after.set(dir, files)
  }

  return after
}

/** The last guard: no engine may load a scope twice after this apply that it did not before. */
async function refuseNewConflicts(views: RegistriesView[], dirs: RegistriesDirs, changes: FileChange[]): Promise<void> {
  if (changes.length === 0) return
  const key = (what: string, view: string) => `${view}\0${what}`
  const before = new Set(viewConflicts(views, dirs).flatMap((c) => c.views.map((v) => key(c.what, v))))
  for (const conflict of viewConflicts(views, await afterChanges(dirs, changes))) {
    const view = conflict.views.find((v) => !before.has(key(conflict.what, v)))
    if (view) throw new ImagetrustError(`refusing to write registries.d: afterwards ${view} would fail every pull, because ${describeConflict(conflict)}`, {hint: 'remove one of the definitions by hand, then apply again'})
  }
}

/**
 * registries.d for the trust file, across every directory the engines read:
 * conflicts found are reported broken; each section is edited where it is
 * defined, overridden by name where a lower directory defines it, or put in
 * imagetrust.yaml; and no engine may load a scope twice afterwards.
 */
export async function planRegistries(input: RegistriesPlanInput): Promise<RegistriesPlan> {
  const {host, layout} = input
  const managed = layout.registriesD
  const found = input.registries ?? singleDirectorySight(host, layout)
  const desired = desiredSections(input)
  const problems = loadProblems(host, found)
  const earlier = earlierOverrides(input, found.dirs)
  let sight = sightOf(found, withoutFiles(found.dirs, new Set(earlier.keys())), managed)
  const carried = await carriedFiles(sight, layout, desired)
  if (carried.length > 0) sight = sightOf(found, withDir(sight.dirs, managed, carried), managed)
  const files = sight.dirs.get(managed) ?? []
  const ownedHostPath = path.posix.join(managed, OWNED_REGISTRIES_FILE)
  const ownedFound = files.find((f) => f.hostPath === ownedHostPath)
  const ownedFile = ownershipOf(host.state.value, ownedHostPath, ownedFound?.text ?? null, input.previous.registriesD.ownedScopes.length > 0)
  const placed = placeSections(desired, sight, managed, {file: input.trust.file, ...(ownedFile === 'foreign' ? {} : {ownedHostPath})})
  const visible = visibleFiles(sight)
  const warnings = [...host.registriesD.warnings, ...problems.warnings, ...lookasideWarnings(input.trust, visible), ...sectionOverrides(visible, desired, managed)]
  const merged = await mergeRegistriesD({
    dirHostPath: managed,
    files: [...files],
    desired: placed.inPlace,
    previousEdits: input.previous.registriesD.foreignEdits,
    trustFile: input.trust.file,
    ownedFile,
  })
  const overrides = await planOverrides(placed.overrides, earlier, input.owner)
  const changes = [...mergedChanges(merged, files, carried, ownedHostPath, input.owner), ...overrides.changes]
  await refuseNewConflicts(found.views, found.dirs, changes)
  warnings.push(...merged.warnings, ...overrides.warnings, ...unseenSystemEntries(sight, layout, desired, carried))
  const notes = carried.map((file) => `carried ${file.name} over from the system registries.d: ${managed} replaces it for this user`)
  const created = placed.overrides.filter((o) => overrides.changes.some((c) => c.hostPath === o.hostPath && c.action === 'create'))
  notes.push(...created.map((o) => `${o.hostPath} now replaces ${o.vendor.hostPath} (containers/image 5.40 reads a same-named file in a higher directory instead): a copy carrying its other entries, with the trust file's ${o.sections.map((s) => s.scope).join(', ')}`))
  return {
    changes,
    warnings,
    notes,
    ownedFiles: [...(merged.owned ? [merged.owned] : []), ...overrides.owned],
    broken: problems.broken,
    state: {
      ownedScopes: merged.ownedScopes,
      foreignEdits: merged.foreignEdits,
      carriedOver: [...new Set([...input.previous.registriesD.carriedOver, ...carried.map((f) => f.hostPath)])],
      ...(overrides.records.length > 0 ? {overrides: overrides.records} : {}),
    },
  }
}
