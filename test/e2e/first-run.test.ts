/**
 * First-run friendliness across the CLI: the missing trust file hint, the
 * template found inside the package, the warnings for an unset default and an
 * unused key, and colour only on a terminal (NO_COLOR and --no-color honoured).
 */
import assert from 'node:assert/strict'
import {access, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {makeGpgKey, type MadeGpgKey} from '../support/gpg.ts'
import {imagetrust, REPO_ROOT, run} from '../support/lab.ts'
import {isolatedCli, Tmux} from '../support/tmux.ts'

describe('first run', () => {
  let dir: string
  let root: string
  let key: MadeGpgKey
  const sessions: Tmux[] = []

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-first-'))
    root = path.join(dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    key = await makeGpgKey(dir, 'first')
    await writeFile(path.join(dir, 'first.asc'), key.publicArmored)
  })

  after(async () => {
    for (const s of sessions) await s.kill()
    await rm(dir, {recursive: true, force: true})
  })

  it('a missing trust file points to imagetrust init and to the template inside the package, from any directory', async () => {
    const result = await run(process.execPath, [path.join(REPO_ROOT, 'bin/run.js'), 'plan', '--root', root], {cwd: os.tmpdir()})
    assert.equal(result.code, 1)
    assert.match(result.stderr, /hint: Run `imagetrust init`/)
    const template = /An annotated example: (\S+)/.exec(result.stderr)?.[1]
    assert.ok(template, result.stderr)
    assert.equal(template, path.join(REPO_ROOT, 'templates/trust.yaml'))
    await access(template)
  })

  it('key add without a scope on a new trust file warns: unset default and a key no scope uses; apply warns about the key too', async () => {
    const config = path.join(dir, 'new', 'trust.yaml')
    const added = await imagetrust(['key', 'add', 'first', path.join(dir, 'first.asc'), '-c', config, '--root', root])
    assert.equal(added.code, 0, added.stderr)
    assert.match(added.stderr, /sets no default: registries that no scope lists stay .*usually accepted unsigned.*default: reject/)
    assert.match(added.stderr, /key "first" is used by no scope, so it is installed and enforces nothing/)
    const applied = await imagetrust(['apply', '--dry-run', '-c', config, '--root', root])
    assert.equal(applied.code, 0, applied.stderr)
    assert.match(applied.stderr, /key "first" is used by no scope/)
  })

  it('key add with a scope into a trust file with default: reject warns about neither', async () => {
    const config = path.join(dir, 'set', 'trust.yaml')
    await mkdir(path.dirname(config), {recursive: true})
    await writeFile(config, 'version: 1\ndefault: reject\n')
    const added = await imagetrust(['key', 'add', 'first', path.join(dir, 'first.asc'), '-c', config, '--root', root, '--scope', 'registry.example.com/team'])
    assert.equal(added.code, 0, added.stderr)
    assert.doesNotMatch(added.stderr, /sets no default|used by no scope/)
  })

  for (const [name, extra, envExtra, coloured] of [
    ['on a terminal', [], {}, true],
    ['with NO_COLOR', [], {NO_COLOR: '1'}, false],
    ['with --no-color', ['--no-color'], {}, false],
  ] as const) {
    it(`plan colours its diff ${coloured ? '' : 'not '}${name}`, async () => {
      const config = path.join(dir, 'plan.yaml')
      await writeFile(config, 'version: 1\ndefault: reject\n')
      const label = `plan-${name.replaceAll(/\W+/g, '-')}`
      const session = await Tmux.start(dir, label, await isolatedCli(dir, label, ['plan', '--root', root, '-c', config, ...extra], REPO_ROOT), {TERM: 'xterm-256color', ...envExtra})
      sessions.push(session)
      assert.equal(await session.waitExit(30_000), 0, await session.screen())
      const screen = await session.screen({escapes: true})
      assert.match(screen, /"reject"/)
      if (coloured) assert.match(screen, /\u001B\[3[12]m/)
      else assert.doesNotMatch(screen, /\u001B\[3[12]m/)
    })
  }

  it('plan does not colour when its output is not a terminal', async () => {
    const config = path.join(dir, 'plan.yaml')
    const result = await imagetrust(['plan', '--root', root, '-c', config])
    assert.equal(result.code, 0, result.stderr)
    assert.doesNotMatch(result.stdout, /\u001B\[/)
    assert.match(result.stdout, /"reject"/)
  })
})
