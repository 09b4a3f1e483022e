import type {RegistriesFile} from './read.js'

/**
 * registries.d as one engine reads it, across directories. Up to
 * containers/image 5.39 one directory is read: the user's when it exists,
 * else /etc's. From 5.40 (storage's configfile) every directory is merged by
 * file name, lowest precedence first: a file in a higher directory replaces a
 * same-named one below, and the files are then read in name order, a scope or
 * default-docker defined in two of them failing every pull.
 */

/** How one engine reads registries.d (from the engine view). */
export interface RegistriesView {
  /** Who reads it, for messages: "podman 6.0.0 (containers/image 5.40)". */
  label: string
  /** single: only the highest directory that exists is read; by-name: all merged by file name. */
  merge: 'single' | 'by-name'
  /** Host paths of the directories it consults, lowest precedence first. */
  dirs: string[]
}

/** The directories as found (a directory absent from the map does not exist). */
export type RegistriesDirs = ReadonlyMap<string, readonly RegistriesFile[]>

const byNameBytes = (a: RegistriesFile, b: RegistriesFile) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name))

/** The files a view loads, in the order it reads them. */
export function effectiveFiles(view: RegistriesView, dirs: RegistriesDirs): RegistriesFile[] {
  if (view.merge === 'single') {
    const used = [...view.dirs].reverse().find((d) => dirs.has(d))
    return used === undefined ? [] : [...dirs.get(used)!].sort(byNameBytes)
  }

  const byName = new Map<string, RegistriesFile>()
  for (const dir of view.dirs) for (const file of dirs.get(dir) ?? []) byName.set(file.name, file)
  return [...byName.values()].sort(byNameBytes)
}

/** The file a higher directory hides from a by-name view: same name, lower directory. */
export function hiddenFiles(view: RegistriesView, dirs: RegistriesDirs): RegistriesFile[] {
  const shown = new Set(effectiveFiles(view, dirs))
  return view.dirs.flatMap((d) => [...(dirs.get(d) ?? [])]).filter((f) => !shown.has(f))
}

/** A scope or default-docker that one view sees in two files: every pull by that engine fails. */
export interface ViewConflict {
  /** What is defined twice: a docker scope, or "default-docker". */
  what: string
  first: {path: string; line?: number}
  second: {path: string; line?: number}
  /** The views (labels) that load both files. */
  views: string[]
}

/** Conflicts per view, each reported once with every view that has it. */
export function viewConflicts(views: readonly RegistriesView[], dirs: RegistriesDirs): ViewConflict[] {
  const found = new Map<string, ViewConflict>()
  for (const view of views) {
    for (const conflict of fileConflicts(effectiveFiles(view, dirs))) {
      const key = JSON.stringify([conflict.what, conflict.first.path, conflict.second.path])
      const known = found.get(key)
      if (known) known.views.push(view.label)
      else found.set(key, {...conflict, views: [view.label]})
    }
  }

  return [...found.values()]
}

function fileConflicts(files: readonly RegistriesFile[]): Array<Omit<ViewConflict, 'views'>> {
  const conflicts: Array<Omit<ViewConflict, 'views'>> = []
  const firstScope = new Map<string, RegistriesFile>()
  let firstDefault: RegistriesFile | undefined
  const at = (file: RegistriesFile, line: number | undefined) => ({path: file.displayPath, ...(line === undefined ? {} : {line})})
  for (const file of files) {
    for (const [scope, line] of file.scopes) {
      const other = firstScope.get(scope)
      if (other) conflicts.push({what: `docker scope "${scope}"`, first: at(other, other.scopes.get(scope)), second: at(file, line)})
      else firstScope.set(scope, file)
    }

    if (file.defaultDocker === undefined) continue
    if (firstDefault) conflicts.push({what: 'default-docker', first: at(firstDefault, firstDefault.defaultDocker), second: at(file, file.defaultDocker)})
    else firstDefault = file
  }

  return conflicts
}

/** "docker scope "x" is defined both in A:3 and B:7". */
export function describeConflict(conflict: Omit<ViewConflict, 'views'>): string {
  const where = (p: {path: string; line?: number}) => (p.line === undefined ? p.path : `${p.path}:${p.line}`)
  return `${conflict.what} is defined both in ${where(conflict.first)} and ${where(conflict.second)}`
}
