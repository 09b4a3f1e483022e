/**
 * status reuses what apply recorded (the engines' versions, the keys, the
 * trust file's untils, the files as parsed) when their inputs are unchanged.
 * It must never change what status reports: after each kind of change, the
 * report equals the one made without those records (moved away). And with
 * nothing changed, no engine is asked its version.
 */
import assert from 'node:assert/strict'
import {appendFile, chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {makeGpgKey, type MadeGpgKey} from '../support/gpg.ts'
import {imagetrust, mustRun} from '../support/lab.ts'

/** What apply leaves for status to reuse, beside the state file. */
const RECORDS = ['fingerprint.json', 'parse-cache.json']

describe('status reuses what apply recorded, never changing its report', () => {
  let dir: string
  let a: MadeGpgKey
  let b: MadeGpgKey
  /** A podman that notes each run, ahead of the real engines on PATH. */
  let engines: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-status-reuse-'))
    ;[a, b] = [await makeGpgKey(dir, 'reusea'), await makeGpgKey(dir, 'reuseb')]
    engines = path.join(dir, 'bin')
    await mkdir(engines)
    await writeFile(path.join(engines, 'podman'), `#!/bin/sh\necho "$*" >> ${path.join(dir, 'podman-runs')}\necho "podman version 4.3.1"\n`)
    await chmod(path.join(engines, 'podman'), 0o755)
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  /** A host after apply (a foreign registries.d file and scope too), and how to run imagetrust on it. */
  async function applied(name: string) {
    const ws = path.join(dir, name)
    const root = path.join(ws, 'root')
    await mkdir(path.join(root, 'etc/containers/registries.d'), {recursive: true})
    const accept = [{type: 'insecureAcceptAnything'}]
    const foreign = [{type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/foreign.gpg'}]
    await writeFile(path.join(root, 'etc/containers/policy.json'), JSON.stringify({default: accept, transports: {docker: {'foreign.example.com': foreign}}}))
    await writeFile(path.join(root, 'etc/containers/registries.d/vendor.yaml'), 'default-docker:\n  lookaside: https://vendor.example.com\ndocker:\n  foreign.example.com:\n    lookaside: https://foreign.example.com\n    lookasid: typo\n')
    await writeFile(path.join(ws, 'a.asc'), a.publicArmored)
    const config = path.join(ws, 'trust.yaml')
    const scopes = Array.from({length: 5}, (_, i) => `  "registry.example.com/team${i}":\n    policy: signed\n    keys: [a]\n    lookaside: https://sigs${i}.example.com\n`)
    await writeFile(config, `version: 1\ndefault: reject\nkeys:\n  a: {file: a.asc, until: 2099-01-01, reason: rotation}\nscopes:\n${scopes.join('')}`)
    const env = {...process.env, HOME: '/home/reuse', PATH: `${engines}:${process.env.PATH}`}
    const run = (args: string[]) => imagetrust([...args, '--root', root, '-c', config], env)
    assert.equal((await run(['apply'])).code, 0)
    return {ws, root, config, env, run}
  }

  /** status --json (exit code, stdout, stderr), with apply's records and then without them. */
  async function bothWays(host: Awaited<ReturnType<typeof applied>>): Promise<[string, string]> {
    const withRecords = await host.run(['status', '--json'])
    const state = path.join(host.root, 'var/lib/imagetrust')
    const records = (await readdir(state)).filter((f) => RECORDS.includes(f))
    assert.ok(records.includes('fingerprint.json'), `apply left no record in ${state}`)
    for (const f of records) await rename(path.join(state, f), path.join(host.ws, f))
    try {
      const without = await host.run(['status', '--json'])
      return [`${withRecords.code}\n${withRecords.stdout}${withRecords.stderr}`, `${without.code}\n${without.stdout}${without.stderr}`]
    } finally {
      for (const f of records) await rename(path.join(host.ws, f), path.join(state, f))
    }
  }

  it('asks no engine its version when nothing changed, and reports the same', async () => {
    const host = await applied('unchanged')
    await rm(path.join(dir, 'podman-runs'), {force: true})
    const status = await host.run(['status', '--json'])
    assert.equal(status.code, 0, status.stderr)
    assert.equal(await readFile(path.join(dir, 'podman-runs'), 'utf8').catch(() => ''), '')
    const report = JSON.parse(status.stdout) as {engines: Array<{engine: string; version?: string}>; targets: Array<{scopes: Array<{scope: string; lookaside?: string}>}>}
    assert.ok(report.engines.some((e) => e.engine === 'podman' && e.version === '4.3.1'), JSON.stringify(report.engines))
    const scopes = report.targets[0].scopes
    assert.equal(scopes.find((s) => s.scope === 'registry.example.com/team3')?.lookaside, 'https://sigs3.example.com')
    assert.equal(scopes.find((s) => s.scope === 'foreign.example.com')?.lookaside, 'https://foreign.example.com')
    // It holds the registries.d files of every engine, users' own too: root's alone to read.
    assert.equal((await stat(path.join(host.root, 'var/lib/imagetrust/parse-cache.json'))).mode & 0o777, 0o600)
    const [withRecords, without] = await bothWays(host)
    assert.equal(withRecords, without)
    assert.match(withRecords, /^0\n/)
    assert.match(withRecords, /vendor\.yaml:6: docker "foreign\.example\.com": unknown key "lookasid"/)
  })

  const changes: Array<[string, (host: Awaited<ReturnType<typeof applied>>) => Promise<void>]> = [
    ['a hand-edited policy.json', async ({root}) => {
      const file = path.join(root, 'etc/containers/policy.json')
      const policy = JSON.parse(await readFile(file, 'utf8'))
      policy.transports.docker['registry.example.com/team1/app'] = [{type: 'insecureAcceptAnything'}]
      await writeFile(file, JSON.stringify(policy, null, 2))
    }],
    ['an installed key replaced', async ({root}) => writeFile(path.join(root, 'etc/pki/containers/a.gpg'), b.publicArmored)],
    ['a trust file edited', async ({config}) => writeFile(config, (await readFile(config, 'utf8')).replace('until: 2099-01-01, reason: rotation', 'until: 2098-06-01, reason: sooner'))],
    ['a registries.d file edited', async ({root}) => appendFile(path.join(root, 'etc/containers/registries.d/vendor.yaml'), '  registry.example.com:\n    use-sigstore-attachments: true\n')],
    ['a user policy that shadows the system one', async ({root}) => {
      await mkdir(path.join(root, 'home/reuse/.config/containers'), {recursive: true})
      await writeFile(path.join(root, 'home/reuse/.config/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}')
    }],
    ['a hand-edited state.json (a scope no longer owned)', async ({root}) => {
      const file = path.join(root, 'var/lib/imagetrust/state.json')
      const state = JSON.parse(await readFile(file, 'utf8'))
      state.policies['/etc/containers/policy.json'].scopes = state.policies['/etc/containers/policy.json'].scopes.filter((s: string) => s !== 'registry.example.com/team2')
      await writeFile(file, JSON.stringify(state, null, 2))
    }],
    ['a GPG key file named by a sigstore requirement in policy.json', async ({root}) => {
      const file = path.join(root, 'etc/containers/policy.json')
      const policy = JSON.parse(await readFile(file, 'utf8'))
      policy.transports.docker['registry.example.com/team0'] = [{type: 'sigstoreSigned', keyPath: '/etc/pki/containers/a.gpg'}]
      await writeFile(file, JSON.stringify(policy, null, 2))
    }],
    ['a hand-edited parse-cache.json (the policy parsed as accepting anything)', async ({root}) => {
      const file = path.join(root, 'var/lib/imagetrust/parse-cache.json')
      const cache = JSON.parse(await readFile(file, 'utf8'))
      for (const policy of Object.values(cache.policies) as Array<{default: unknown}>) policy.default = [{type: 'insecureAcceptAnything'}]
      await writeFile(file, JSON.stringify(cache))
    }],
    ['podman rewritten in place, same size, its mtime put back', async () => {
      const file = path.join(engines, 'podman')
      const reference = path.join(dir, 'podman-times')
      await mustRun('cp', ['--preserve=timestamps', file, reference])
      const text = await readFile(file, 'utf8')
      await writeFile(file, text.includes('4.3.1') ? text.replace('4.3.1', '4.9.4') : text.replace(/\d\.\d\.\d/, '4.3.1'))
      await mustRun('touch', ['-r', reference, file]) // to the nanosecond, as utimes() is not
    }],
    ['another podman', async () => writeFile(path.join(engines, 'podman'), `#!/bin/sh\necho "podman version 5.8.0"\n`)],
  ]

  for (const [what, change] of changes) {
    it(`reports the same with and without the records after ${what}`, async () => {
      const host = await applied(what.replaceAll(/\W+/g, '-'))
      await change(host)
      const [withRecords, without] = await bothWays(host)
      assert.equal(withRecords, without)
    })
  }

  it('refuses a state.json that names a key outside the key directory, with the records or without', async () => {
    const host = await applied('refused-state')
    const file = path.join(host.root, 'var/lib/imagetrust/state.json')
    const state = JSON.parse(await readFile(file, 'utf8'))
    state.keyFiles.push('/etc/passwd')
    await writeFile(file, JSON.stringify(state, null, 2))
    const [withRecords, without] = await bothWays(host)
    assert.equal(withRecords, without)
    assert.match(withRecords, /^1\n/)
    assert.match(withRecords, /not in the key directory/)
  })
})
