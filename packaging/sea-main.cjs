// The single executable's main script (scripts/dist.ts). It runs the bundle, an asset of the
// executable, with a V8 code cache made by running the executable itself at build time: the
// npm form's way (bin/run.js). Node's own useCodeCache holds only the main script's top level;
// this cache also holds the functions a real check compiled lazily. A cache that V8 cannot use
// is rejected by V8 itself and the bundle is compiled as usual.
'use strict'

const fs = require('node:fs')
const sea = require('node:sea')
const vm = require('node:vm')

// Where the .deb would put the bundle: only names it, in stack traces (nothing is read from it).
const filename = '/usr/lib/imagetrust/imagetrust.cjs'

function cachedData() {
  try {
    return Buffer.from(sea.getAsset('imagetrust.cjs.cache'))
  } catch {
    return undefined // the first build pass, which makes the cache, has none
  }
}

const source = sea.getAsset('imagetrust.cjs', 'utf8')
const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`
const script = new vm.Script(wrapped, {filename, cachedData: cachedData()})
// For scripts/dist.ts only: write the cache to IMAGETRUST_CODE_CACHE_FILE at the end of a
// representative run, or say on stderr whether V8 took the built-in one.
const codeCache = process.env.IMAGETRUST_CODE_CACHE
const cacheFile = process.env.IMAGETRUST_CODE_CACHE_FILE
if (codeCache === 'write' && cacheFile) process.once('exit', () => fs.writeFileSync(cacheFile, script.createCachedData()))
if (codeCache === 'report') process.stderr.write(`imagetrust: code cache ${script.cachedDataRejected === false ? 'accepted' : 'not used'}\n`)
const bundleModule = {exports: {}, filename, id: filename, loaded: false}
script.runInThisContext()(bundleModule.exports, require, bundleModule, filename, '/usr/lib/imagetrust')
