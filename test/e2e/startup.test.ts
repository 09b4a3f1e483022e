/**
 * The npm form starts from one bundle (dist/bundle/imagetrust.cjs) with the V8 code cache
 * npm run build made for it, and `check` in sync evaluates none of the heavy packages
 * (openpgp, inquirer, yaml, diff), which stay in node_modules until a command needs them.
 * How fast it starts is npm run bench's business; this proves the mechanism is in force.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {REPO_ROOT, run} from '../support/lab.ts'

const CLI = path.join(REPO_ROOT, 'bin/run.js')
const HEAVY = ['openpgp', '@inquirer', 'yaml', 'diff', 'js-yaml', 'smol-toml', 'execa']

describe('start-up of the npm form', () => {
  let dir: string
  let args: string[]

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-startup-'))
    await mkdir(path.join(dir, 'root/etc/containers'), {recursive: true})
    await writeFile(path.join(dir, 'trust.yaml'), 'version: 1\ndefault: reject\nscopes:\n  registry.example.com/a:\n    policy: accept\n')
    args = ['--root', path.join(dir, 'root'), '-c', path.join(dir, 'trust.yaml')]
    const applied = await run(process.execPath, [CLI, 'apply', ...args])
    assert.equal(applied.code, 0, applied.stderr)
  })

  after(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('runs the bundle with the code cache V8 takes', async () => {
    const result = await run(process.execPath, [CLI, 'check', ...args], {env: {...process.env, IMAGETRUST_CODE_CACHE: 'report'}})
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /^imagetrust: code cache accepted$/m)
  })

  it('check, in sync, loads no heavy package (V8 coverage lists every script run)', async () => {
    const coverage = path.join(dir, 'coverage')
    const checked = await run(process.execPath, [CLI, 'check', ...args], {env: {...process.env, NODE_V8_COVERAGE: coverage}})
    assert.equal(checked.code, 0, checked.stderr)
    const urls = new Set<string>()
    for (const file of await readdir(coverage)) {
      const {result} = JSON.parse(await readFile(path.join(coverage, file), 'utf8')) as {result: Array<{url: string}>}
      for (const script of result) urls.add(script.url)
    }

    assert.ok([...urls].some((url) => url.endsWith('/dist/bundle/imagetrust.cjs')), `the bundle did not run: ${[...urls].filter((u) => !u.startsWith('node:')).join(', ')}`)
    const ours = [...urls].filter((url) => url.includes(`${REPO_ROOT}/dist/`) && !url.endsWith('/dist/bundle/imagetrust.cjs'))
    assert.deepEqual(ours, [], 'modules of dist/ loaded beside the bundle')
    const heavy = [...urls].filter((url) => HEAVY.some((name) => url.includes(`/node_modules/${name}/`)))
    assert.deepEqual(heavy, [], 'heavy packages loaded by check')

    // And they are loaded when needed: apply's plan reads the trust file with yaml.
    const applied = await run(process.execPath, [CLI, 'plan', ...args, '--json'], {env: {...process.env, NODE_V8_COVERAGE: path.join(dir, 'coverage-plan')}})
    assert.equal(applied.code, 0, applied.stderr)
    const planUrls: string[] = []
    for (const file of await readdir(path.join(dir, 'coverage-plan'))) {
      planUrls.push(...(JSON.parse(await readFile(path.join(dir, 'coverage-plan', file), 'utf8')) as {result: Array<{url: string}>}).result.map((s) => s.url))
    }

    assert.ok(planUrls.some((url) => url.includes('/node_modules/yaml/')), 'plan did not load yaml from node_modules: the test would not see a heavy package')
  })
})
