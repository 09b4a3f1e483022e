/**
 * A reader that leaves early (`| head -c1`): the command ends quietly with
 * its own exit code, never Node's 13 (an unsettled top-level await).
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {REPO_ROOT, runIsolated} from '../support/lab.ts'

describe('EPIPE on stdout', () => {
  let dir: string
  let root: string
  let config: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-epipe-'))
    root = path.join(dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    config = path.join(dir, 'trust.yaml')
    // Output far beyond a pipe's 64 KiB, so the writer meets the closed pipe.
    const scopes = Array.from({length: 3000}, (_, i) => `  "r${i}.example.com/apps/team/x":\n    policy: reject\n`).join('')
    await writeFile(config, `version: 1\ndefault: reject\nscopes:\n${scopes}`)
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  for (const [args, code] of [
    [['plan', '--json'], 0],
    [['plan'], 0],
    [['check', '--json'], 2],
  ] as const) {
    it(`${args.join(' ')} | head -c1 exits ${code}, as without the pipe, and prints no error`, async () => {
      const command = `"$0" "$@" 2>"${dir}/stderr" | head -c1 >/dev/null; echo "status=\${PIPESTATUS[0]}"; cat "${dir}/stderr"`
      const result = await runIsolated('bash', ['-c', command, process.execPath, path.join(REPO_ROOT, 'bin/run.js'), ...args, '--root', root, '-c', config], {timeoutMs: 120_000})
      assert.match(result.stdout, new RegExp(`^status=${code}\\n$`), result.stdout)
    })
  }

  it('warnings on stderr | head -c1: check still exits 2, its drift code', async () => {
    // Foreign accept-anything scopes under default: reject make one warning each.
    const policy = {default: [{type: 'insecureAcceptAnything'}], transports: {docker: Object.fromEntries(Array.from({length: 3000}, (_, i) => [`f${i}.example.com/team/x`, [{type: 'insecureAcceptAnything'}]]))}}
    const root2 = path.join(dir, 'root-warnings')
    await mkdir(path.join(root2, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root2, 'etc/containers/policy.json'), JSON.stringify(policy))
    const command = `"$0" "$@" 2>&1 >/dev/null | head -c1 >/dev/null; echo "status=\${PIPESTATUS[0]}"`
    const result = await runIsolated('bash', ['-c', command, process.execPath, path.join(REPO_ROOT, 'bin/run.js'), 'check', '--root', root2, '-c', config], {timeoutMs: 120_000})
    assert.match(result.stdout, /^status=2\n$/, result.stdout)
  })
})
