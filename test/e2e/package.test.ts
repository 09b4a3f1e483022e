/**
 * The package as users get it: `npm pack` from a clean copy of the sources
 * (no dist/: prepack builds it), installed with `npm install -g --prefix` and
 * no dev dependencies, then run. And the systemd units, checked by
 * systemd-analyze and run as systemd would.
 */
import assert from 'node:assert/strict'
import {cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {REPO_ROOT, mustRun, run, runIsolated} from '../support/lab.ts'

describe('the npm package and the systemd units', () => {
  let dir: string
  let tarball: string
  let bin: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-package-'))
    // A clean clone: the files git knows (committed or not ignored), no dist/, no manifest.
    const clone = path.join(dir, 'clone')
    const files = (await mustRun('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {cwd: REPO_ROOT})).stdout.split('\0').filter(Boolean)
    for (const file of files) {
      if (file.startsWith('node_modules')) continue
      await mkdir(path.dirname(path.join(clone, file)), {recursive: true})
      await cp(path.join(REPO_ROOT, file), path.join(clone, file), {verbatimSymlinks: true}).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error // deleted but not yet committed
      })
    }

    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(clone, 'node_modules'))
    await mustRun('npm', ['pack', '--silent', '--pack-destination', dir], {cwd: clone})
    tarball = path.join(dir, (await readdir(dir)).find((n) => n.endsWith('.tgz'))!)
    const prefix = path.join(dir, 'prefix')
    await mustRun('npm', ['install', '--global', '--prefix', prefix, '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', tarball], {
      env: {...process.env, npm_config_cache: path.join(os.homedir(), '.npm')},
    })
    bin = path.join(prefix, 'bin/imagetrust')
  })

  after(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('the tarball holds dist/, the manifest, schema/, templates/ and a LICENSE, and no dev-only entry point', async () => {
    const listing = (await mustRun('tar', ['-tzf', tarball])).stdout.split('\n')
    for (const file of ['package/dist/commands/apply.js', 'package/dist/bundle/imagetrust.cjs', 'package/dist/bundle/imagetrust.cjs.cache', 'package/oclif.manifest.json', 'package/schema/error.schema.json', 'package/templates/imagetrust-check.service', 'package/templates/imagetrust-check.timer', 'package/LICENSE', 'package/bin/run.js']) {
      assert.ok(listing.includes(file), `${file} missing from the tarball`)
    }

    assert.ok(!listing.includes('package/bin/dev.js'), 'bin/dev.js is shipped')
    assert.ok(!listing.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/')), 'sources or tests are shipped')
    const license = (await mustRun('tar', ['-xzOf', tarball, 'package/LICENSE'])).stdout
    assert.match(license, /Apache License\s+Version 2\.0/)
  })

  it('installs without dev dependencies, and runs --version, apply and check against a sandbox root', async () => {
    const version = await run(bin, ['--version'])
    assert.equal(version.code, 0, version.stderr)
    assert.match(version.stdout, /^imagetrust\/0\.\d+\.\d+ /)
    const devOnly = await readdir(path.join(dir, 'prefix/lib/node_modules/imagetrust/node_modules')).catch(() => [] as string[])
    assert.ok(!devOnly.includes('typescript') && !devOnly.includes('tsx'), `dev dependencies installed: ${devOnly.join(' ')}`)

    const root = path.join(dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    const trust = path.join(dir, 'trust.yaml')
    await writeFile(trust, 'version: 1\ndefault: reject\nscopes:\n  "registry.example.com:5000/app":\n    policy: reject\n')
    const applied = await runIsolated(bin, ['apply', '--root', root, '-c', trust, '--json'])
    assert.equal(applied.code, 0, applied.stdout + applied.stderr)
    assert.equal(JSON.parse(applied.stdout).changed, true)
    const checked = await runIsolated(bin, ['check', '--root', root, '-c', trust])
    assert.equal(checked.code, 0, checked.stdout + checked.stderr)
    assert.match(checked.stdout, /In sync/)
  })

  it('the shipped units pass systemd-analyze verify, and the service fails on drift with one journal line per file', async (t) => {
    const units = path.join(dir, 'units')
    await mkdir(units)
    const root = path.join(dir, 'root')
    const trust = path.join(dir, 'trust.yaml')
    // The unit as README.md says to install it, with this prefix's CLI and the sandbox root.
    const service = (await readFile(path.join(REPO_ROOT, 'templates/imagetrust-check.service'), 'utf8')).replace(
      /^ExecStart=\/usr\/local\/bin\/imagetrust check$/m,
      `ExecStart=${bin} check --root ${root} --config ${trust}`,
    )
    assert.match(service, new RegExp(`ExecStart=${bin} `), 'the template\'s ExecStart is not /usr/local/bin/imagetrust check')
    await writeFile(path.join(units, 'imagetrust-check.service'), service)
    await cp(path.join(REPO_ROOT, 'templates/imagetrust-check.timer'), path.join(units, 'imagetrust-check.timer'))

    const policy = path.join(root, 'etc/containers/policy.json')
    const hand = JSON.parse(await readFile(policy, 'utf8'))
    hand.transports.docker['registry.example.com:5000/app'] = [{type: 'insecureAcceptAnything'}]
    await writeFile(policy, JSON.stringify(hand))
    const argv = /^ExecStart=(.*)$/m.exec(service)![1].split(' ')
    const checked = await runIsolated(argv[0], argv.slice(1))
    assert.equal(checked.code, 2, checked.stdout + checked.stderr)
    const lines = checked.stdout.split('\n').filter((l) => l.includes(policy))
    assert.equal(lines.length, 1, checked.stdout)
    assert.match(lines[0], /scope docker:registry\.example\.com:5000\/app changed: host has accept, trust file wants reject/)

    if ((await run('systemd-analyze', ['--version']).catch(() => ({code: 127}))).code !== 0) {
      t.skip('systemd-analyze is not installed in this container: the units were not verified')
      return
    }

    const verified = await run('systemd-analyze', ['verify', '--man=no', path.join(units, 'imagetrust-check.service'), path.join(units, 'imagetrust-check.timer')])
    assert.equal(verified.code, 0, verified.stdout + verified.stderr)
    assert.equal(verified.stderr.trim(), '', verified.stderr)
  })
})
