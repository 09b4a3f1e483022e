import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import * as sea from 'node:sea'

/**
 * The files that ship beside the code (package.json, templates/, schema/), by their
 * path in the repository. The npm form reads them from the installed package; the
 * single executable (`npm run dist`) carries them as embedded assets, since no
 * package directory exists beside it.
 */
export function readAsset(name: string): string {
  if (sea.isSea()) return sea.getAsset(name, 'utf8')
  return readFileSync(new URL(`../../${name}`, import.meta.url), 'utf8')
}

/** Where a shipped file is on disk, to name it to people: the package's copy, or the one the .deb/.rpm install. */
export function assetPath(name: string): string {
  if (sea.isSea()) return `/usr/share/imagetrust/${name}`
  return fileURLToPath(new URL(`../../${name}`, import.meta.url))
}

/** imagetrust's version, from package.json. */
export function packageVersion(): string {
  return (JSON.parse(readAsset('package.json')) as {version: string}).version
}
