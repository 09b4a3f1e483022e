/**
 * Every input is read through the bounded reader: a regular file, its size
 * checked before reading. A FIFO, a device or a huge sparse file put in place
 * of an input after apply (or given on the command line) makes check, status,
 * init and key add fail fast, never hang or fill the memory.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdir, mkdtemp, rm, symlink, truncate, unlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {REPO_ROOT, TIMED_OUT, imagetrust, runIsolated} from '../support/lab.ts'

const BIN = path.join(REPO_ROOT, 'bin/run.js')

describe('reads that could hang or blow up are bounded', () => {
  let dir: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-bounded-'))
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  /** A host after apply, with a foreign registries.d file and the user's own policy.json. */
  async function applied(name: string) {
    const ws = path.join(dir, name)
    const root = path.join(ws, 'root')
    // HOME as the host sees it; its files are read below --root.
    const home = '/home/bounded'
    await mkdir(path.join(root, 'etc/containers/registries.d'), {recursive: true})
    await mkdir(path.join(root, home, '.config/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await writeFile(path.join(root, 'etc/containers/registries.d/theirs.yaml'), 'docker:\n  other.example.com:\n    lookaside: https://other.example.com\n')
    const config = path.join(ws, 'trust.yaml')
    await writeFile(config, 'version: 1\ndefault: reject\nscopes:\n  "registry.example.com/x":\n    policy: accept\n')
    const env = {...process.env, HOME: home}
    const applyResult = await imagetrust(['apply', '--root', root, '-c', config], env)
    assert.equal(applyResult.code, 0, applyResult.stderr)
    assert.equal((await imagetrust(['check', '--root', root, '-c', config], env)).code, 0)
    return {ws, root, home, config, env}
  }

  const INPUTS: Array<[string, (h: Awaited<ReturnType<typeof applied>>) => string]> = [
    ['policy.json', (h) => path.join(h.root, 'etc/containers/policy.json')],
    ['a registries.d file', (h) => path.join(h.root, 'etc/containers/registries.d/theirs.yaml')],
    ["$HOME's policy.json", (h) => path.join(h.root, h.home, '.config/containers/policy.json')],
    ['the trust file', (h) => h.config],
  ]
  for (const [what, file] of INPUTS) {
    it(`${what} replaced by a FIFO after apply: check and status end at once`, async () => {
      const host = await applied(`fifo-${what.replaceAll(/\W/g, '')}`)
      await unlink(file(host)).catch(() => undefined)
      execFileSync('mkfifo', [file(host)])
      for (const command of ['check', 'status']) {
        const result = await imagetrust([command, '--root', host.root, '-c', host.config], host.env, {timeoutMs: 30_000})
        assert.notEqual(result.code, TIMED_OUT, `${command} hung on ${what}`)
        if (command === 'check') assert.notEqual(result.code, 0, result.stdout)
        assert.match(result.stdout + result.stderr, /is a FIFO, not a regular file|shadowed|takes precedence/, `${command}: ${result.stdout}${result.stderr}`)
      }
    })
  }

  it('a 1.9 GB sparse policy.json after apply: check fails on its size, without reading it', async () => {
    const host = await applied('sparse')
    const policy = path.join(host.root, 'etc/containers/policy.json')
    await truncate(policy, 1.9e9)
    const result = await runIsolated('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, BIN, 'check', '--root', host.root, '-c', host.config], {env: host.env, timeoutMs: 60_000})
    assert.notEqual(result.code, TIMED_OUT)
    assert.match(result.stderr, /policy\.json is larger than 16 MiB/)
    const kib = Number(/maxrss=(\d+)/.exec(result.stderr)?.[1])
    assert.ok(kib < 300 * 1024, `check used ${Math.round(kib / 1024)} MiB`)
  })

  for (const [what, make] of [
    ['a FIFO', (file: string) => execFileSync('mkfifo', [file])],
    ['/dev/zero', (file: string) => symlink('/dev/zero', file)],
    ['a 20 MB file', (file: string) => truncate(file, 20e6)],
  ] as const) {
    it(`--config ${what} is refused at once (check, plan, status)`, async () => {
      const ws = path.join(dir, `config-${what.replaceAll(/\W/g, '')}`)
      await mkdir(path.join(ws, 'root'), {recursive: true})
      const config = path.join(ws, 'trust.yaml')
      if (what === 'a 20 MB file') await writeFile(config, '')
      await make(config)
      for (const command of ['check', 'plan', 'status']) {
        const result = await imagetrust([command, '--root', path.join(ws, 'root'), '-c', config], undefined, {timeoutMs: 30_000})
        assert.notEqual(result.code, TIMED_OUT, `${command} hung`)
        assert.match(result.stdout + result.stderr, /trust file .*(is a FIFO|is a character device|is larger than 16 MiB)/, `${command}: ${result.stdout}${result.stderr}`)
      }
    })

    it(`init --key ${what} is refused at once`, async () => {
      const ws = path.join(dir, `initkey-${what.replaceAll(/\W/g, '')}`)
      await mkdir(path.join(ws, 'root'), {recursive: true})
      const key = path.join(ws, 'key.asc')
      if (what === 'a 20 MB file') await writeFile(key, '')
      await make(key)
      const result = await imagetrust(['init', '--root', path.join(ws, 'root'), '--yes', '--no-apply', '--scope', 'registry.example.com/x', '--key', key, '--lookaside', 'https://sigs.example.com', '--default', 'reject'], {...process.env, HOME: ws}, {timeoutMs: 30_000})
      assert.notEqual(result.code, TIMED_OUT, 'init hung')
      assert.equal(result.code, 1)
      assert.match(result.stderr, /key file .*(is a FIFO|is a character device|is larger than 1 MiB)/)
    })
  }

  it('key add NAME - < /dev/zero stops at 1 MiB', async () => {
    const ws = path.join(dir, 'stdin-zero')
    await mkdir(ws, {recursive: true})
    const config = path.join(ws, 'trust.yaml')
    await writeFile(config, 'version: 1\nscopes: {}\n')
    const result = await runIsolated('/usr/bin/time', ['-f', 'maxrss=%M', 'bash', '-c', 'exec "$0" "$@" < /dev/zero', process.execPath, BIN, 'key', 'add', 'zero', '-', '-c', config], {timeoutMs: 60_000})
    assert.notEqual(result.code, TIMED_OUT)
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, /standard input holds more than 1 MiB/)
    const kib = Number(/maxrss=(\d+)/.exec(result.stderr)?.[1])
    assert.ok(kib < 300 * 1024, `key add used ${Math.round(kib / 1024)} MiB`)
  })
})
