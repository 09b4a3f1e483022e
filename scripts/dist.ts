/**
 * npm run dist: imagetrust as one executable file, dist-bin/imagetrust-linux-x64, that
 * needs no Node.js on the host (Node 20's single executable applications).
 *   1. scripts/bundle.ts bundles packaging/main.js and everything it imports from dist/
 *      (npm run build's output) into one CommonJS file, the packages the code imports
 *      lazily (openpgp, inquirer, yaml, diff) too, each evaluated only when first used.
 *   2. node --experimental-sea-config makes the blob: packaging/sea-main.cjs as the main
 *      script, and as assets the bundle, package.json, templates/ and schema/
 *      (src/lib/assets.ts reads them).
 *   3. postject injects it into a copy of this node binary. Nothing is stripped after:
 *      the blob is a section of the file.
 *   4. The executable runs an apply and a check (scripts/code-cache.ts), writing V8's code
 *      cache of the bundle at the end; steps 2 and 3 are done again with the cache as one
 *      more asset, which sea-main.cjs hands to V8, and a last check must say V8 took it.
 * scripts/dist-packages.sh then wraps the file in a .deb and an .rpm.
 */
import {execFileSync} from 'node:child_process'
import {chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {bundleCli, writeMeta} from './bundle.ts'
import {assertCodeCacheTaken, type CliForm, writeCodeCache} from './code-cache.ts'

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

/** The blob: sea-main.cjs, which runs the bundle (an asset) with the code cache (another, once made). */
function blob(bundle: string, codeCache?: string): string {
  const output = path.join(BUILD, 'sea-prep.blob')
  const files = Object.fromEntries(['package.json', ...filesUnder('templates'), ...filesUnder('schema')].map((name) => [name, path.join(REPO, name)]))
  const assets = {...files, 'imagetrust.cjs': bundle, ...(codeCache ? {'imagetrust.cjs.cache': codeCache} : {})}
  const main = path.join(REPO, 'packaging/sea-main.cjs')
  const config = {main, output, disableExperimentalSEAWarning: true, useCodeCache: false, useSnapshot: false, assets}
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
const bundle = path.join(BUILD, 'imagetrust.cjs')
const codeCache = path.join(BUILD, 'imagetrust.cjs.cache')
const SEA_FORM: CliForm = {command: [BINARY], writeEnv: {IMAGETRUST_CODE_CACHE_FILE: codeCache}}
writeMeta(path.join(BUILD, 'meta.json'), await bundleCli('sea', bundle))
inject(blob(bundle))
writeCodeCache(SEA_FORM)
inject(blob(bundle, codeCache))
assertCodeCacheTaken(SEA_FORM)
const version = execFileSync(BINARY, ['--version'], {encoding: 'utf8'}).trim()
console.log(`${path.relative(REPO, BINARY)}: ${version}, ${(statSync(BINARY).size / 1024 / 1024).toFixed(1)} MiB`)
