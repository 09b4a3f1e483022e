/**
 * npm run dist: imagetrust as one executable file, dist-bin/imagetrust-linux-x64, that
 * needs no Node.js on the host (Node 20's single executable applications).
 *   1. esbuild bundles packaging/sea/main.js and everything it imports from dist/
 *      (npm run build's output) into one CommonJS file. The commands are listed
 *      explicitly (oclif's explicit strategy) instead of found in dist/commands/, and each
 *      command module, like every module the code imports lazily (openpgp, inquirer, yaml,
 *      diff), is evaluated only when first used.
 *   2. node --experimental-sea-config makes the blob (with V8's code cache), with
 *      package.json, templates/ and schema/ as assets (src/lib/assets.ts reads them).
 *   3. postject injects it into a copy of this node binary. Nothing is stripped after:
 *      the blob is a section of the file.
 * scripts/dist-packages.sh then wraps the file in a .deb and an .rpm.
 */
import {execFileSync} from 'node:child_process'
import {chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import * as esbuild from 'esbuild'

const REPO = path.resolve(import.meta.dirname, '..')
const BUILD = path.join(REPO, 'build/sea')
const OUT = path.join(REPO, 'dist-bin')
const BINARY = path.join(OUT, 'imagetrust-linux-x64')
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
const EXPLICIT_TARGET = './dist/sea-commands.js'

interface Manifest {
  commands: Record<string, {relativePath?: string[]}>
}

function git(args: string[]): string {
  return execFileSync('git', ['-C', REPO, ...args], {encoding: 'utf8'}).trim()
}

/** The commit built, with "-dirty" when tracked files differ from it. */
function commit(): string {
  const head = git(['rev-parse', '--short=12', 'HEAD'])
  return git(['status', '--porcelain', '--untracked-files=no']) === '' ? head : `${head}-dirty`
}

/**
 * The generated module `imagetrust:sea-build`: package.json as oclif should see it (the
 * explicit command list, the version with its commit as semver build metadata, so
 * `imagetrust --version` names both), oclif.manifest.json, and the modules oclif would
 * import by path, each a getter that evaluates its module on first use.
 */
function seaBuildModule(): string {
  const pjson = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'))
  const manifest = JSON.parse(readFileSync(path.join(REPO, 'oclif.manifest.json'), 'utf8')) as Manifest
  pjson.version = `${pjson.version}+${commit()}`
  pjson.oclif.commands = {strategy: 'explicit', target: EXPLICIT_TARGET, identifier: 'COMMANDS'}
  const commands = Object.entries(manifest.commands).map(([id, c]) => {
    const file = c.relativePath?.join('/') ?? `dist/commands/${id.replaceAll(':', '/')}.js`
    return `  get ${JSON.stringify(id)}() { return require(${JSON.stringify(`./${file}`)}).default },`
  })
  const hooks = Object.values(pjson.oclif.hooks as Record<string, string>).map(
    (target) => `  ${JSON.stringify(target.replace(/^\.\//, '').replace(/\.js$/, ''))}: () => require(${JSON.stringify(target)}),`,
  )
  return [
    `export const pjson = ${JSON.stringify(pjson)}`,
    `export const manifest = ${JSON.stringify(manifest)}`,
    `const COMMANDS = {\n${commands.join('\n')}\n}`,
    `export const modules = {\n  ${JSON.stringify(EXPLICIT_TARGET.replace(/^\.\//, '').replace(/\.js$/, ''))}: () => ({COMMANDS}),\n${hooks.join('\n')}\n}`,
  ].join('\n')
}

/** Swaps what only works with files on disk for what works inside the bundle. */
const seaPlugin: esbuild.Plugin = {
  name: 'imagetrust-sea',
  setup(build) {
    build.onResolve({filter: /^imagetrust:sea-build$/}, () => ({path: 'sea-build', namespace: 'imagetrust'}))
    build.onLoad({filter: /.*/, namespace: 'imagetrust'}, () => ({contents: seaBuildModule(), resolveDir: REPO, loader: 'js'}))
    // oclif imports commands and hooks by path: packaging/sea/module-loader.cjs finds them in the bundle.
    build.onResolve({filter: /\/module-loader$/}, (args) =>
      args.importer.includes(`${path.sep}@oclif${path.sep}core${path.sep}`) ? {path: path.join(REPO, 'packaging/sea/module-loader.cjs')} : undefined,
    )
    // A single executable's main script has no import(): a built-in imported lazily
    // (`await import('node:http')`) becomes a require() esbuild bundles, still run only when reached.
    build.onResolve({filter: /^node:/}, (args) => (args.kind === 'dynamic-import' ? {path: args.path, namespace: 'imagetrust-builtin'} : undefined))
    build.onLoad({filter: /.*/, namespace: 'imagetrust-builtin'}, (args) => ({contents: `module.exports = require(${JSON.stringify(args.path)})`, loader: 'js'}))
    // yaml-source.ts requires yaml lazily through createRequire, which a bundler cannot follow:
    // a plain require() is one it bundles (and still evaluates only when called).
    build.onLoad({filter: /dist\/trustfile\/yaml-source\.js$/}, (args) => {
      const text = readFileSync(args.path, 'utf8')
      const local = 'const require = createRequire(import.meta.url);'
      if (!text.includes(local)) throw new Error(`${args.path}: no "${local}" to replace; update scripts/dist.ts`)
      return {contents: text.replace(local, ''), loader: 'js'}
    })
  },
}

async function bundle(file: string): Promise<void> {
  const result = await esbuild.build({
    entryPoints: [path.join(REPO, 'packaging/sea/main.js')],
    outfile: file,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // import.meta has no meaning in CommonJS; the code that reads import.meta.url asks
    // node:sea first (src/lib/assets.ts), so this URL is never resolved against.
    define: {'import.meta.url': '__imagetrust_bundle_url'},
    banner: {js: 'const __imagetrust_bundle_url = require("node:url").pathToFileURL(__filename).href;'},
    plugins: [seaPlugin],
    // oclif reads tsconfig.json with TypeScript only when developing a plugin (NODE_ENV=development):
    // 10 MB the single executable never runs; that require fails as if TypeScript were absent.
    external: ['typescript', 'ts-node'],
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  })
  writeFileSync(path.join(BUILD, 'meta.json'), JSON.stringify(result.metafile))
  // What is left would fail in the executable ("A dynamic import callback was not specified"):
  // only oclif's loaders of TypeScript and config files for plugin development may keep one.
  const left = readFileSync(file, 'utf8').match(/(?<![\w.$])import\(\s*(?:\/\*[^*]*\*\/\s*)?[^\s)]+/g) ?? []
  const unexpected = left.filter((call) => !/import\(\s*(?:\/\*[^*]*\*\/\s*)?(?:href|fileUrl)$/.test(call) && !call.includes("'node:crypto'"))
  if (unexpected.length > 0) throw new Error(`the bundle still calls import(): ${unexpected.join(', ')}`)
}

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
await bundle(main)
inject(blob(main))
const version = execFileSync(BINARY, ['--version'], {encoding: 'utf8'}).trim()
console.log(`${path.relative(REPO, BINARY)}: ${version}, ${(statSync(BINARY).size / 1024 / 1024).toFixed(1)} MiB`)
