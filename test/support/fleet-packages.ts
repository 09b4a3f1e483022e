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

export async function fleetPackages(): Promise<Record<FleetInstall, string>> {
  let found = await find()
  const built = await mtime(path.join(REPO_ROOT, 'oclif.manifest.json'))
  const stale = async (file?: string): Promise<boolean> => !file || (await mtime(file)) < built
  if ((await stale(found.binary)) || (await stale(found.deb))) {
    await mustRun('npm', ['run', 'dist', '--silent'], {cwd: REPO_ROOT})
    found = await find()
  }

  if (!found.binary || !found.deb) throw new Error(`npm run dist made no single executable and .deb in ${DIST_BIN}`)
  return found as Record<FleetInstall, string>
}
