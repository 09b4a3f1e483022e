/**
 * What the fleet installs: the files `npm run dist` makes in dist-bin/ (the
 * single executable and the .deb), built here when they are missing or older
 * than the last npm run build (oclif.manifest.json).
 */
import {readdir, stat} from 'node:fs/promises'
import path from 'node:path'

import {REPO_ROOT, mustRun} from './lab.ts'

export type FleetInstall = 'binary' | 'deb'

const DIST_BIN = path.join(REPO_ROOT, 'dist-bin')

async function mtime(file: string): Promise<number> {
  return (await stat(file).catch(() => undefined))?.mtimeMs ?? 0
}

async function find(): Promise<Partial<Record<FleetInstall, string>>> {
  const names = await readdir(DIST_BIN).catch(() => [] as string[])
  const deb = names.filter((n) => /^imagetrust_.*_amd64\.deb$/.test(n))
  return {
    binary: names.includes('imagetrust-linux-x64') ? path.join(DIST_BIN, 'imagetrust-linux-x64') : undefined,
    deb: deb.length === 1 ? path.join(DIST_BIN, deb[0]) : undefined,
  }
}

/** The files of these installs, from `npm run dist` (run when one is missing or older than the build). */
export async function fleetPackages(kinds: FleetInstall[] = ['binary', 'deb']): Promise<Record<FleetInstall, string>> {
  let found = await find()
  const built = await mtime(path.join(REPO_ROOT, 'oclif.manifest.json'))
  const stale = async (kind: FleetInstall): Promise<boolean> => !found[kind] || (await mtime(found[kind])) < built
  if ((await Promise.all(kinds.map(stale))).some(Boolean)) {
    await mustRun('npm', ['run', 'dist', '--silent'], {cwd: REPO_ROOT})
    found = await find()
  }

  const missing = kinds.filter((k) => !found[k])
  if (missing.length > 0) throw new Error(`npm run dist made no ${missing.join(', ')} in ${DIST_BIN}`)
  return found as Record<FleetInstall, string>
}
