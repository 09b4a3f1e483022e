#!/usr/bin/env node
// The npm form runs one file, dist/bundle/imagetrust.cjs (made by npm run build, see
// scripts/bundle.ts), instead of resolving and reading some 900 modules, and compiles it
// with the V8 code cache made beside it at build time. A cache that this node's V8 cannot
// use is rejected by V8 itself and the file is compiled as usual.
import {readFileSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import vm from 'node:vm'

const file = fileURLToPath(new URL('../dist/bundle/imagetrust.cjs', import.meta.url))
const cacheFile = `${file}.cache`

function readOptional(name) {
  try {
    return readFileSync(name)
  } catch {
    return undefined
  }
}

let source
try {
  source = readFileSync(file, 'utf8')
} catch (error) {
  process.stderr.write(`imagetrust: error: cannot read ${file} (${error.code ?? error.message}): run npm run build\n`)
  process.exit(1)
}
// The bundle's import() of a package left in node_modules calls __imagetrust_import (see
// scripts/bundle.ts): code vm.Script compiles has no import() of its own in Node 20.
const wrapped = `(function (exports, require, module, __filename, __dirname, __imagetrust_import) {${source}\n})`
const script = new vm.Script(wrapped, {filename: file, cachedData: readOptional(cacheFile)})
// For npm run build (scripts/build-bundle.ts) and its tests only: write the cache at the end
// of a representative run (it then holds the functions V8 compiled lazily during it, not just
// the top level), or say whether V8 took it.
const codeCache = process.env.IMAGETRUST_CODE_CACHE
if (codeCache === 'write') process.once('exit', () => writeFileSync(cacheFile, script.createCachedData()))
if (codeCache === 'report') process.stderr.write(`imagetrust: code cache ${script.cachedDataRejected === false ? 'accepted' : 'not used'}\n`)
const module = {exports: {}, filename: file, id: file, loaded: false}
script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file), (name) => import(name))
