// Stands in for @oclif/core's lib/module-loader.js in both bundles (scripts/bundle.ts
// swaps it in): the modules oclif would import from disk by path (the explicit command
// list, the hooks) are inside the bundle, keyed by their path in the package.
'use strict'

const path = require('node:path')

function builtIn(config, modulePath) {
  const root = config?.root ?? config?.options?.root ?? '/'
  const key = path.relative(root, path.resolve(root, modulePath)).replace(/\.(?:ts|js)$/, '')
  // Required here, not at the top: the built-in modules import @oclif/core, which imports this file.
  const {modules} = require('imagetrust:sea-build')
  const found = modules[key]
  if (!found) throw Object.assign(new Error(`no module ${key} in the single executable`), {code: 'MODULE_NOT_FOUND'})
  return found()
}

async function load(config, modulePath) {
  return builtIn(config, modulePath)
}

async function loadWithData(config, modulePath) {
  return {filePath: modulePath, isESM: false, module: await builtIn(config, modulePath)}
}

async function loadWithDataFromManifest(cached, modulePath) {
  const relative = cached.relativePath ?? []
  return {filePath: path.join(modulePath, ...relative), isESM: false, module: await builtIn({root: modulePath}, path.join(...relative))}
}

function isPathModule() {
  return true
}

module.exports = {isPathModule, load, loadWithData, loadWithDataFromManifest}
