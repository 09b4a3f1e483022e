/**
 * `imagetrust publish`: new signatures copied, published ones left alone, a
 * different file of the same name never overwritten (a conflict, exit 1);
 * locally and through real rsync (its remote side run by a stand-in for ssh).
 */
import assert from 'node:assert/strict'
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {REPO_ROOT, run} from '../support/lab.ts'

describe('publish', () => {
  let dir: string
  let fakeSsh: string
  const cli = (args: string[]) => run(process.execPath, [path.join(REPO_ROOT, 'bin/run.js'), ...args], {env: {...process.env, RSYNC_RSH: fakeSsh}})

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-publish-'))
    // "ssh [-l user] host command...": runs the command here, as sshd would there.
    fakeSsh = path.join(dir, 'fake-ssh')
    await writeFile(fakeSsh, '#!/bin/sh\n[ "$1" = -l ] && shift 2\nshift\nexec "$@"\n')
    await chmod(fakeSsh, 0o755)
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  async function staging(name: string): Promise<string> {
    const stage = path.join(dir, name)
    await mkdir(path.join(stage, 'apps/app@sha256=aa'), {recursive: true})
    await writeFile(path.join(stage, 'apps/app@sha256=aa/signature-1'), 'first')
    await writeFile(path.join(stage, 'apps/app@sha256=aa/signature-2'), 'second')
    await writeFile(path.join(dir, `${name}-secret`), 'SECRET')
    await symlink(path.join(dir, `${name}-secret`), path.join(stage, 'apps/app@sha256=aa/signature-3'))
    return stage
  }

  for (const mode of ['local', 'rsync'] as const) {
    it(`${mode}: copies new signatures, leaves published ones, refuses to overwrite a different one`, async () => {
      const stage = await staging(`stage-${mode}`)
      const web = path.join(dir, `web-${mode}`)
      await mkdir(web)
      const to = mode === 'local' ? web : `www@lookaside.example:${web}`
      const first = await cli(['publish', '--from', stage, '--to', to, '--json'])
      assert.equal(first.code, 0, first.stderr)
      const report = JSON.parse(first.stdout)
      assert.deepEqual(report.copied, ['apps/app@sha256=aa/signature-1', 'apps/app@sha256=aa/signature-2'])
      assert.equal(report.remote, mode === 'rsync')
      assert.equal(await readFile(path.join(web, 'apps/app@sha256=aa/signature-2'), 'utf8'), 'second')
      await assert.rejects(readFile(path.join(web, 'apps/app@sha256=aa/signature-3')), 'a symlink was published')

      const again = JSON.parse((await cli(['publish', '--from', stage, '--to', to, '--json'])).stdout)
      assert.deepEqual([again.copied, again.unchanged, again.conflicts], [[], 2, []])

      // Another signer's signature-2 is already on the web root; ours is new as signature-4.
      await writeFile(path.join(web, 'apps/app@sha256=aa/signature-2'), 'someone else')
      await writeFile(path.join(stage, 'apps/app@sha256=aa/signature-4'), 'fourth')
      const conflict = await cli(['publish', '--from', stage, '--to', to, '--json'])
      assert.equal(conflict.code, 1)
      const conflictReport = JSON.parse(conflict.stdout)
      assert.deepEqual(conflictReport.conflicts.map((c: {file: string}) => c.file), ['apps/app@sha256=aa/signature-2'])
      assert.deepEqual(conflictReport.copied, ['apps/app@sha256=aa/signature-4'])
      assert.equal(await readFile(path.join(web, 'apps/app@sha256=aa/signature-2'), 'utf8'), 'someone else', 'overwritten')
      const human = await cli(['publish', '--from', stage, '--to', to])
      assert.equal(human.code, 1)
      assert.match(human.stderr, /CONFLICT apps\/app@sha256=aa\/signature-2: .*different content; not overwritten/)
    })
  }

  it('without --from, publishes from the trust file staging directory below --root', async () => {
    const root = path.join(dir, 'root')
    await mkdir(path.join(root, 'var/lib/sigs/x@sha256=bb'), {recursive: true})
    await writeFile(path.join(root, 'var/lib/sigs/x@sha256=bb/signature-1'), 'sig')
    const trust = path.join(dir, 'trust.yaml')
    await writeFile(trust, 'version: 1\nscopes:\n  "r.example.com/x":\n    policy: accept\n    lookasideStaging: file:///var/lib/sigs\n')
    const web = path.join(dir, 'web-root')
    await mkdir(web)
    const result = await cli(['publish', '--root', root, '-c', trust, '--to', web, '--json'])
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout).copied, ['x@sha256=bb/signature-1'])
  })

  for (const mode of ['local', 'rsync'] as const) {
    it(`${mode}: never writes through a symlinked directory inside the web root`, async () => {
      const stage = await staging(`stage-link-${mode}`)
      const web = path.join(dir, `web-link-${mode}`)
      const outside = path.join(dir, `outside-${mode}`)
      await mkdir(path.join(web, 'apps'), {recursive: true})
      await mkdir(outside)
      await symlink(outside, path.join(web, 'apps/app@sha256=aa'))
      const to = mode === 'local' ? web : `www@lookaside.example:${web}`
      const result = await cli(['publish', '--from', stage, '--to', to, '--json'])
      assert.notEqual(result.code, 0, result.stdout)
      assert.deepEqual(await readdir(outside), [], 'written through the symlink')
      if (mode === 'local') {
        const report = JSON.parse(result.stdout)
        assert.deepEqual(report.copied, [])
        assert.match(report.conflicts[0].reason, /symlink; publish never writes through one/)
      }
    })
  }

  for (const to of ['--rsh=x:y', '-e:x', '--rsh=touch${IFS}X:x', 'a@-oProxyCommand=touch${IFS}X:dir', '-oProxyCommand=x@h:dir', 'h:dir\nx', 'lookaside.example:']) {
    it(`refuses --to ${JSON.stringify(to)} (exit 64), running nothing`, async () => {
      const stage = await staging(`stage-opt-${Buffer.from(to).toString('hex')}`)
      const result = await run(process.execPath, [path.join(REPO_ROOT, 'bin/run.js'), 'publish', '--from', stage, `--to=${to}`, '--json'], {cwd: dir, env: {...process.env, RSYNC_RSH: fakeSsh}})
      assert.equal(result.code, 64, `${result.stdout}${result.stderr}`)
      assert.match(JSON.parse(result.stdout).error.message, /--to .*(looks like an option|not a plain|control character|give the web root's path)/)
      await assert.rejects(readFile(path.join(dir, 'X')), 'a command ran')
    })
  }

  it('rsync: a remote path that starts with "-" or holds spaces is a path, never an option', async () => {
    const stage = await staging('stage-dash')
    const web = path.join(dir, 'web-dash')
    await mkdir(path.join(web, '-e x'), {recursive: true})
    const result = await run(process.execPath, [path.join(REPO_ROOT, 'bin/run.js'), 'publish', '--from', stage, '--to=lookaside.example:-e x', '--json'], {cwd: web, env: {...process.env, RSYNC_RSH: fakeSsh}})
    assert.equal(result.code, 0, result.stderr)
    assert.equal(await readFile(path.join(web, '-e x/apps/app@sha256=aa/signature-1'), 'utf8'), 'first')
  })

  it('rsync: refuses a staged file name with a newline by name, sending nothing', async () => {
    const stage = await staging('stage-newline')
    await writeFile(path.join(stage, 'apps/app@sha256=aa/signature-9\nx'), 'bad')
    const web = path.join(dir, 'web-newline')
    await mkdir(web)
    const result = await cli(['publish', '--from', stage, '--to', `lookaside.example:${web}`, '--json'])
    assert.equal(result.code, 1)
    assert.match(JSON.parse(result.stdout).error.message, /signature-9\nx: a file name with a control character/)
    assert.deepEqual(await readdir(web), [])
  })

  it('local: compares a file larger than 2 GiB by streaming (already published, then a different one)', async () => {
    const stage = path.join(dir, 'stage-big')
    const web = path.join(dir, 'web-big')
    await mkdir(stage)
    await mkdir(web)
    const size = 2_400_000_000
    for (const d of [stage, web]) {
      await writeFile(path.join(d, 'signature-1'), '')
      await truncate(path.join(d, 'signature-1'), size)
    }

    const same = await cli(['publish', '--from', stage, '--to', web, '--json'])
    assert.equal(same.code, 0, same.stdout)
    assert.equal(JSON.parse(same.stdout).unchanged, 1)
    await writeFile(path.join(web, 'signature-1'), 'y', {flag: 'r+'})
    const different = await cli(['publish', '--from', stage, '--to', web, '--json'])
    assert.equal(different.code, 1, different.stdout)
    assert.match(JSON.parse(different.stdout).conflicts[0].reason, /different content/)
  })
})
