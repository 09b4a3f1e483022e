/**
 * The last step of npm run build: the npm form's bundle, dist/bundle/imagetrust.cjs (see
 * scripts/bundle.ts), and its V8 code cache, dist/bundle/imagetrust.cjs.cache, which
 * bin/run.js hands to V8. The cache is written at the end of a real `apply` and a real
 * `check` on a throw-away root, so it holds the functions they compiled on the way.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {bundleCli} from './bundle.ts'

const REPO = path.resolve(import.meta.dirname, '..')
const BUNDLE = path.join(REPO, 'dist/bundle/imagetrust.cjs')
const CLI = path.join(REPO, 'bin/run.js')

/** Runs the CLI; codeCache: 'write' writes the code cache as the run exits, 'report' says on stderr whether V8 took it. */
function cli(args: string[], codeCache = ''): string {
  const env = {...process.env, IMAGETRUST_CODE_CACHE: codeCache}
  const result = spawnSync(process.execPath, [CLI, ...args], {env, encoding: 'utf8'})
  // check exits 2 for drift; anything else but 0 means the bundle is broken.
  if (result.status !== 0 && result.status !== 2) throw new Error(`imagetrust ${args.join(' ')} exited ${result.status}: ${result.stderr}`)
  return result.stderr
}

/** A root with an empty /etc/containers and a trust file of an accept and a reject scope. */
function warmUpRoot(): {work: string; args: string[]} {
  const work = mkdtempSync(path.join(os.tmpdir(), 'imagetrust-build-'))
  mkdirSync(path.join(work, 'root/etc/containers'), {recursive: true})
  const trust = path.join(work, 'trust.yaml')
  writeFileSync(trust, 'version: 1\ndefault: reject\nscopes:\n  registry.example.com/team:\n    policy: accept\n  registry.example.com/other:\n    policy: reject\n')
  return {work, args: ['--root', path.join(work, 'root'), '-c', trust]}
}

mkdirSync(path.dirname(BUNDLE), {recursive: true})
rmSync(`${BUNDLE}.cache`, {force: true})
await bundleCli('npm', BUNDLE)
const {work, args} = warmUpRoot()
try {
  cli(['apply', ...args])
  cli(['check', ...args], 'write')
  const report = cli(['check', ...args], 'report')
  if (!report.includes('code cache accepted')) throw new Error(`V8 did not take the code cache just made: ${report}`)
} finally {
  rmSync(work, {recursive: true, force: true})
}
const size = (name: string) => `${(statSync(name).size / 1024).toFixed(0)} KiB`
console.log(`${path.relative(REPO, BUNDLE)}: ${size(BUNDLE)}, code cache ${size(`${BUNDLE}.cache`)}`)
