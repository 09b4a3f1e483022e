/**
 * One CommonJS file of imagetrust, made by esbuild from packaging/main.js and what it imports
 * from dist/ (tsc's output), for both forms:
 *   - 'npm': dist/bundle/imagetrust.cjs, which bin/run.js runs with a V8 code cache. Start-up
 *     then resolves and reads one file instead of some 900 (oclif alone is 200 modules): the
 *     check of 100 scopes went from 3× `node -e 0` to about 2×. Packages the code imports
 *     lazily (openpgp, inquirer, yaml, diff) stay in node_modules, loaded only when used.
 *   - 'sea': the single executable's main script (scripts/dist.ts), with everything inside.
 * In both, the commands are listed explicitly (oclif's explicit strategy) with the manifest
 * built in, and each command module is evaluated only when first used.
 */
import {execFileSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import * as esbuild from 'esbuild'

export type BundleForm = 'npm' | 'sea'

const REPO = path.resolve(import.meta.dirname, '..')
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

/** Where oclif's root is: the package directory (npm form, the bundle is in its dist/bundle/), or where the .deb would put it (nothing is read from it). */
function rootExpression(form: BundleForm): string {
  return form === 'npm' ? 'require("node:path").resolve(__dirname, "../..")' : '"/usr/lib/imagetrust"'
}

/**
 * The generated module `imagetrust:sea-build`: package.json as oclif should see it (the
 * explicit command list; in the single executable, the version with its commit as semver
 * build metadata, so `imagetrust --version` names both), oclif.manifest.json, oclif's root,
 * and the modules oclif would import by path, each a getter that evaluates its module on first use.
 */
function buildModule(form: BundleForm): string {
  const pjson = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'))
  const manifest = JSON.parse(readFileSync(path.join(REPO, 'oclif.manifest.json'), 'utf8')) as Manifest
  if (form === 'sea') pjson.version = `${pjson.version}+${commit()}`
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
    `export const root = ${rootExpression(form)}`,
    `const COMMANDS = {\n${commands.join('\n')}\n}`,
    `export const modules = {\n  ${JSON.stringify(EXPLICIT_TARGET.replace(/^\.\//, '').replace(/\.js$/, ''))}: () => ({COMMANDS}),\n${hooks.join('\n')}\n}`,
  ].join('\n')
}

/** Swaps what only works with files on disk for what works inside the bundle. */
function bundlePlugin(form: BundleForm, lazy: Set<string>): esbuild.Plugin {
  return {
    name: 'imagetrust-bundle',
    setup(build) {
      build.onResolve({filter: /^imagetrust:sea-build$/}, () => ({path: 'sea-build', namespace: 'imagetrust'}))
      build.onLoad({filter: /.*/, namespace: 'imagetrust'}, () => ({contents: buildModule(form), resolveDir: REPO, loader: 'js'}))
      // oclif imports commands and hooks by path: packaging/module-loader.cjs finds them in the bundle.
      build.onResolve({filter: /\/module-loader$/}, (args) =>
        args.importer.includes(`${path.sep}@oclif${path.sep}core${path.sep}`) ? {path: path.join(REPO, 'packaging/module-loader.cjs')} : undefined,
      )
      // A single executable's main script has no import(): a built-in imported lazily
      // (`await import('node:http')`) becomes a require() esbuild bundles, still run only when reached.
      build.onResolve({filter: /^node:/}, (args) => (args.kind === 'dynamic-import' ? {path: args.path, namespace: 'imagetrust-builtin'} : undefined))
      build.onLoad({filter: /.*/, namespace: 'imagetrust-builtin'}, (args) => ({contents: `module.exports = require(${JSON.stringify(args.path)})`, loader: 'js'}))
      if (form === 'npm') npmOnly(build, lazy)
      else seaOnly(build)
    },
  }
}

/**
 * The npm form leaves a package imported lazily (openpgp, inquirer, yaml, diff) in node_modules:
 * imported from there when first used, never parsed at start-up. bin/run.js compiles the bundle
 * with vm.Script, whose import() has no loader in Node 20 without an experimental flag (and loses
 * it with a code cache), so each such import() becomes a call of the loader bin/run.js passes in.
 */
function npmOnly(build: esbuild.PluginBuild, lazy: Set<string>): void {
  build.onResolve({filter: /^[@\w]/}, (args) => {
    // oclif's own (wsl-utils, read at every start) are small: they stay in the bundle.
    if (args.kind !== 'dynamic-import' || !args.importer.startsWith(path.join(REPO, 'dist') + path.sep)) return undefined
    lazy.add(args.path)
    return {path: args.path, external: true}
  })
}

/** import("openpgp") → __imagetrust_import("openpgp"), for exactly the packages left lazy. */
function useLoader(file: string, lazy: Set<string>): void {
  let text = readFileSync(file, 'utf8')
  for (const name of lazy) text = text.replaceAll(`import(${JSON.stringify(name)})`, `__imagetrust_import(${JSON.stringify(name)})`)
  writeFileSync(file, text)
}

function seaOnly(build: esbuild.PluginBuild): void {
  // yaml-source.ts requires yaml lazily through createRequire, which a bundler cannot follow:
  // a plain require() is one it bundles (and still evaluates only when called).
  build.onLoad({filter: /dist\/trustfile\/yaml-source\.js$/}, (args) => {
    const text = readFileSync(args.path, 'utf8')
    const local = 'const require = createRequire(import.meta.url);'
    if (!text.includes(local)) throw new Error(`${args.path}: no "${local}" to replace; update scripts/bundle.ts`)
    return {contents: text.replace(local, ''), loader: 'js'}
  })
}

/** Bundles the CLI into file; returns esbuild's metafile (what went in). */
export async function bundleCli(form: BundleForm, file: string): Promise<esbuild.Metafile> {
  const lazy = new Set<string>()
  const result = await esbuild.build({
    entryPoints: [path.join(REPO, 'packaging/main.js')],
    outfile: file,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // import.meta has no meaning in CommonJS. The bundle's own URL stands in: src/lib/assets.ts
    // reads ../../templates from it (dist/bundle/ in the npm form; the single executable asks node:sea).
    define: {'import.meta.url': '__imagetrust_bundle_url'},
    banner: {js: 'const __imagetrust_bundle_url = require("node:url").pathToFileURL(__filename).href;'},
    plugins: [bundlePlugin(form, lazy)],
    // oclif reads tsconfig.json with TypeScript only when developing a plugin (NODE_ENV=development):
    // 10 MB never run; that require fails as if TypeScript were absent.
    external: ['typescript', 'ts-node'],
    legalComments: 'none',
    // The single executable reads its bundle from an asset, as a string: without the comments
    // esbuild keeps, it is a third smaller and all ASCII (a comment's “quote” made all 3.7 MB
    // a two-byte string, slower to decode, compile and hold).
    minifyWhitespace: form === 'sea',
    logLevel: 'warning',
    metafile: true,
  })
  if (form === 'npm') useLoader(file, lazy)
  refuseLeftImports(file)
  return result.metafile
}

/**
 * What is left would fail ("A dynamic import callback was not specified"): only oclif's
 * loaders of TypeScript and config files for plugin development may keep one.
 */
function refuseLeftImports(file: string): void {
  const left = readFileSync(file, 'utf8').match(/(?<![\w.$])import\(\s*(?:\/\*[^*]*\*\/\s*)?[^\s)]+/g) ?? []
  const unexpected = left.filter((call) => !/import\(\s*(?:\/\*[^*]*\*\/\s*)?(?:href|fileUrl)$/.test(call) && !call.includes("'node:crypto'"))
  if (unexpected.length > 0) throw new Error(`the bundle still calls import(): ${unexpected.join(', ')}`)
}

export function writeMeta(file: string, meta: esbuild.Metafile): void {
  writeFileSync(file, JSON.stringify(meta))
}
