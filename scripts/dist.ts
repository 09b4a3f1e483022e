/**
 * npm run dist: imagetrust as one executable file, dist-bin/imagetrust-linux-x64, that
 * needs no Node.js on the host (Node 20's single executable applications).
 *   1. scripts/bundle.ts bundles packaging/main.js and everything it imports from dist/
 *      (npm run build's output) into one CommonJS file, the packages the code imports
 *      lazily (openpgp, inquirer, yaml, diff) too, each evaluated only when first used.
 *   2. node --experimental-sea-config makes the blob (with V8's code cache), with
 *      package.json, templates/ and schema/ as assets (src/lib/assets.ts reads them).
 *   3. postject injects it into a copy of this node binary. Nothing is stripped after:
 *      the blob is a section of the file.
 * scripts/dist-packages.sh then wraps the file in a .deb and an .rpm.
 */
import {execFileSync} from 'node:child_process'
import {chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {bundleCli, writeMeta} from './bundle.ts'

const REPO = path.resolve(import.meta.dirname, '..')
const BUILD = path.join(REPO, 'build/sea')
const OUT = path.join(REPO, 'dist-bin')
const BINARY = path.join(OUT, 'imagetrust-linux-x64')
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

/** Every file under dir, as repository-relative paths. */
function filesUnder(dir: string): string[] {
  return readdirSync(path.join(REPO, dir), {recursive: true, encoding: 'utf8'})
    .filter((f) => statSync(path.join(REPO, dir, f)).isFile())
    .map((f) => `${dir}/${f}`)
    .sort()
}

function blob(main: string): string {
  const output = path.join(BUILD, 'sea-prep.blob')
  const assets = Object.fromEntries(['package.json', ...filesUnder('templates'), ...filesUnder('schema')].map((name) => [name, path.join(REPO, name)]))
  const config = {main, output, disableExperimentalSEAWarning: true, useCodeCache: true, useSnapshot: false, assets}
  const configFile = path.join(BUILD, 'sea-config.json')
  writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n')
  execFileSync(process.execPath, ['--experimental-sea-config', configFile], {stdio: 'inherit'})
  return output
}

function inject(blobFile: string): void {
  rmSync(BINARY, {force: true})
  copyFileSync(process.execPath, BINARY)
  chmodSync(BINARY, 0o755)
  const postject = path.join(REPO, 'node_modules/postject/dist/cli.js')
  execFileSync(process.execPath, [postject, BINARY, 'NODE_SEA_BLOB', blobFile, '--sentinel-fuse', SENTINEL], {stdio: ['ignore', 'ignore', 'inherit']})
}

rmSync(BUILD, {recursive: true, force: true})
mkdirSync(BUILD, {recursive: true})
mkdirSync(OUT, {recursive: true})
const main = path.join(BUILD, 'imagetrust.cjs')
writeMeta(path.join(BUILD, 'meta.json'), await bundleCli('sea', main))
inject(blob(main))
const version = execFileSync(BINARY, ['--version'], {encoding: 'utf8'}).trim()
console.log(`${path.relative(REPO, BINARY)}: ${version}, ${(statSync(BINARY).size / 1024 / 1024).toFixed(1)} MiB`)
