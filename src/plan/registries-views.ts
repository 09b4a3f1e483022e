import {stat} from 'node:fs/promises'

import {type EngineView, registriesDirs} from '../host/engine-view.js'
import type {HostRoot} from '../host/paths.js'
import {readRegistriesDir} from '../host/snapshot.js'
import {describeConflict, type RegistriesDirs, type RegistriesView, viewConflicts} from '../registries-d/layers.js'
import type {RegistriesFile} from '../registries-d/read.js'

/**
 * The engine view's registries.d, as the registries.d plan needs it: for each
 * distinct way the engines here read it (one label for engines that read it
 * alike), every directory it may consult, lowest precedence first; and the
 * files of each of those directories that exists.
 */

function parseMinor(version: string): readonly [number, number] {
  const [major, minor] = version.split('.').map(Number)
  return [major, minor]
}

function who(view: EngineView): string {
  return view.engine === 'assumed' ? 'containers/image (assumed)' : `${view.engine}${view.version ? ` ${view.version}` : ''}${view.service ? ` (${view.service})` : ''}`
}

/** One RegistriesView per distinct reading: engines that read the same directories the same way share it. */
export function registriesViews(views: readonly EngineView[]): RegistriesView[] {
  const byReading = new Map<string, {merge: RegistriesView['merge']; dirs: string[]; engines: string[]; cimage: Set<string>}>()
  for (const view of views) {
    const dirs = registriesDirs({engine: view.engine, containersImage: parseMinor(view.containersImage), runner: view.runner}).map((d) => d.path)
    const merge = view.registriesD.merge
    const key = JSON.stringify([merge, dirs])
    const entry = byReading.get(key) ?? {merge, dirs, engines: [], cimage: new Set<string>()}
    entry.engines.push(who(view))
    entry.cimage.add(view.containersImage)
    byReading.set(key, entry)
  }

  return [...byReading.values()].map((e) => ({label: `${e.engines.join(', ')} (containers/image ${[...e.cimage].join(', ')})`, merge: e.merge, dirs: e.dirs}))
}

/** The files of every directory the views consult that exists under --root (a missing one is left out). */
export async function readRegistriesDirs(root: HostRoot, views: readonly RegistriesView[]): Promise<RegistriesDirs> {
  const dirs = new Map<string, RegistriesFile[]>()
  for (const dir of new Set(views.flatMap((v) => v.dirs))) {
    const info = await stat(root.resolveFull(dir)).catch(() => undefined)
    if (info?.isDirectory()) dirs.set(dir, (await readRegistriesDir(root, dir)).files)
  }

  return dirs
}

/** Scopes and default-docker defined twice in what some engine here loads: each one fails every pull of that engine. */
export async function registriesConflicts(root: HostRoot, views: readonly EngineView[]): Promise<string[]> {
  const reading = registriesViews(views)
  const conflicts = viewConflicts(reading, await readRegistriesDirs(root, reading))
  return conflicts.map((c) => `${describeConflict(c)}: containers/image fails every pull${reading.length > 1 ? ` (${c.views.join(', ')})` : ''}`)
}
