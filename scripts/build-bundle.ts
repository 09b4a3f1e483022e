/**
 * The last step of npm run build: the npm form's bundle, dist/bundle/imagetrust.cjs (see
 * scripts/bundle.ts), and its V8 code cache, dist/bundle/imagetrust.cjs.cache, which
 * bin/run.js hands to V8. The cache is written at the end of a real `apply` and a real
 * `check` on a throw-away root, so it holds the functions they compiled on the way.
 */
import {mkdirSync, rmSync, statSync} from 'node:fs'
import path from 'node:path'

import {bundleCli} from './bundle.ts'
import {assertCodeCacheTaken, type CliForm, writeCodeCache} from './code-cache.ts'

const REPO = path.resolve(import.meta.dirname, '..')
const BUNDLE = path.join(REPO, 'dist/bundle/imagetrust.cjs')
// bin/run.js writes the cache beside the bundle.
const NPM_FORM: CliForm = {command: [process.execPath, path.join(REPO, 'bin/run.js')], writeEnv: {}}

mkdirSync(path.dirname(BUNDLE), {recursive: true})
rmSync(`${BUNDLE}.cache`, {force: true})
await bundleCli('npm', BUNDLE)
writeCodeCache(NPM_FORM)
assertCodeCacheTaken(NPM_FORM)
const size = (name: string) => `${(statSync(name).size / 1024).toFixed(0)} KiB`
console.log(`${path.relative(REPO, BUNDLE)}: ${size(BUNDLE)}, code cache ${size(`${BUNDLE}.cache`)}`)
