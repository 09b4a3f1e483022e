/**
 * Exit codes and error output as a contract (docs/json-output.md), against the
 * built CLI: every failure exits 1 or 64 (never 2, which means drift), prints
 * `imagetrust: error:` without a stack trace, and with --json exactly one small
 * object that validates against schema/error.schema.json.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Ajv2020} from 'ajv/dist/2020.js'

import {REPO_ROOT, type RunResult, etcContainersDigest, imagetrust, run, runIsolated} from '../support/lab.ts'

const schema = JSON.parse(readFileSync(path.join(REPO_ROOT, 'schema/error.schema.json'), 'utf8'))
const validateError = new Ajv2020({allErrors: true, strict: true}).compile(schema)

/** A stack frame (`    at fn (file:1:2)`) or Node's own internals in the output. */
const STACK = /^\s+at .*(:\d+:\d+\)?|<anonymous>\)?)$|node:internal|\bError: .*\n\s+at /m
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups']

interface Case {
  name: string
  args: () => string[]
  code: number
  message: RegExp
  hint?: RegExp
  location?: boolean
  asNobody?: boolean
}

function assertContract(c: Case, result: RunResult, json: boolean): void {
  const shown = `exit ${result.code}\nstdout: ${result.stdout.slice(0, 600)}\nstderr: ${result.stderr.slice(0, 600)}`
  assert.equal(result.code, c.code, shown)
  assert.ok(result.stdout.length < 2048, `stdout is ${result.stdout.length} bytes\n${shown}`)
  assert.doesNotMatch(result.stderr, STACK, shown)
  assert.doesNotMatch(result.stdout, STACK, shown)
  if (json) {
    let parsed: {error: {message: string; hint?: string; exitCode: number; location?: unknown}}
    try {
      parsed = JSON.parse(result.stdout)
    } catch (error) {
      assert.fail(`stdout is not one JSON value (${(error as Error).message})\n${shown}`)
    }

    assert.ok(validateError(parsed), `${JSON.stringify(validateError.errors)}\n${shown}`)
    assert.equal(parsed.error.exitCode, c.code)
    assert.match(parsed.error.message, c.message)
    if (c.hint) assert.match(parsed.error.hint ?? '', c.hint)
    if (c.location !== undefined) assert.equal(parsed.error.location !== undefined, c.location, shown)
  } else {
    assert.equal(result.stdout, '', shown)
    const line = /^imagetrust: error: (.*)$/m.exec(result.stderr)
    assert.ok(line, `no "imagetrust: error:" line\n${shown}`)
    const message = result.stderr.slice(line.index + 'imagetrust: error: '.length).split(/\nhint: /)[0].replace(/\n$/, '')
    assert.match(message, c.message, shown)
    if (c.hint) {
      const hint = /^hint: (.*)$/m.exec(result.stderr)
      assert.ok(hint, `no "hint:" line\n${shown}`)
      assert.match(hint[1], c.hint)
    }
  }
}

describe('exit codes and error output (docs/json-output.md)', () => {
  let dir: string
  let root: string
  let broken: string
  let locked: string
  let config: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-errors-'))
    await chmod(dir, 0o755)
    root = path.join(dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    broken = path.join(dir, 'broken')
    await mkdir(path.join(broken, 'etc/containers'), {recursive: true})
    await writeFile(path.join(broken, 'etc/containers/policy.json'), '{"default": [\n')
    // Owned by root, mode 0755: readable by nobody, not writable.
    locked = path.join(dir, 'locked')
    await mkdir(path.join(locked, 'etc/containers'), {recursive: true})
    await writeFile(path.join(locked, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    config = path.join(dir, 'trust.yaml')
    await writeFile(config, 'version: 1\ndefault: reject\nscopes:\n  "r.example.com":\n    policy: accept\n', {mode: 0o644})
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  const CASES: Case[] = [
    {name: 'unknown flag', args: () => ['check', '--bogus', '--root', root], code: 64, message: /^Nonexistent flag: --bogus$/, hint: /imagetrust check --help/},
    {name: 'missing required argument', args: () => ['explain', '--root', root], code: 64, message: /^Missing 1 required arg: image$/, hint: /imagetrust explain --help/},
    {name: 'bad flag value', args: () => ['apply', '--lock-timeout', 'abc', '--root', root, '-c', config], code: 64, message: /--lock-timeout.*Expected an integer but received: abc/},
    {name: 'unknown command', args: () => ['nosuchcommand'], code: 64, message: /^command nosuchcommand not found$/, hint: /imagetrust --help/},
    {name: 'mistyped command', args: () => ['chek', '--root', root], code: 64, message: /^command chek not found$/, hint: /^did you mean 'imagetrust check'\?/},
    {name: 'unknown subcommand', args: () => ['key', 'nosuch'], code: 64, message: /^command key nosuch not found$/},
    {name: 'missing trust file', args: () => ['check', '--root', root], code: 1, message: /trust file .*\/etc\/imagetrust\/trust\.yaml does not exist/, hint: /--config/},
    {name: 'broken policy.json', args: () => ['check', '--root', broken, '-c', config], code: 1, message: /policy\.json:2:\d+.*unexpected end of JSON input/, location: true},
    {
      name: 'permission denied (EACCES, as nobody)',
      args: () => ['apply', '--root', locked, '-c', config],
      code: 1,
      message: /^permission denied: .*\/locked\//,
      hint: /^run as root, or use --user to manage your own files$/,
      asNobody: true,
    },
  ]

  async function nobodyCanRun(): Promise<string | undefined> {
    if (process.getuid?.() !== 0) return 'not root: cannot switch to nobody'
    if ((await run('sh', ['-c', 'command -v setpriv'])).code !== 0) return 'setpriv is not installed'
    const files = [process.execPath, path.join(REPO_ROOT, 'bin/run.js'), path.join(REPO_ROOT, 'dist/bundle/imagetrust.cjs'), path.join(REPO_ROOT, 'node_modules/openpgp/package.json'), config]
    const probe = await run('setpriv', [...NOBODY, 'sh', '-c', 'for f in "$@"; do test -r "$f" || { echo "$f"; exit 1; }; done', 'probe', ...files])
    if (probe.code !== 0) return `user nobody cannot read ${probe.stdout.trim() || 'the checkout'} (checkout not world-readable)`
    return undefined
  }

  for (const c of CASES) {
    for (const json of [false, true]) {
      it(`${c.name}${json ? ' --json' : ''}: exit ${c.code}`, async (t) => {
        const args = [...c.args(), ...(json ? ['--json'] : [])]
        let result: RunResult
        if (c.asNobody) {
          const why = await nobodyCanRun()
          if (why) return t.skip(`EACCES case skipped: ${why}`)
          // HOME: oclif looks for user plugins there; /root is not nobody's to read.
          result = await runIsolated('setpriv', [...NOBODY, process.execPath, path.join(REPO_ROOT, 'bin/run.js'), ...args], {env: {...process.env, HOME: '/nonexistent'}})
        } else {
          result = await imagetrust(args)
        }

        assertContract(c, result, json)
      })
    }
  }

  it('--json after -- is an argument, not the flag', async () => {
    const result = await imagetrust(['check', '--root', root, '--', '--json'])
    assertContract({name: '', args: () => [], code: 64, message: /^Unexpected argument: --json$/}, result, false)
  })

  it('the Ansible role says so when the CLI is missing', async (t) => {
    if ((await run('sh', ['-c', 'command -v ansible-playbook'])).code !== 0) return t.skip('ansible-playbook is not installed')
    const vars = path.join(dir, 'vars.json')
    await writeFile(vars, JSON.stringify({imagetrust_hosts: 'all', imagetrust_become: false, imagetrust_install: false, imagetrust_command: path.join(dir, 'no/such/imagetrust'), imagetrust_root: root, imagetrust_trust: {version: 1}}))
    const env = {
      ...process.env,
      HOME: dir,
      ANSIBLE_ROLES_PATH: path.join(REPO_ROOT, 'ansible/roles'),
      ANSIBLE_LOCAL_TEMP: path.join(dir, 'ansible-tmp'),
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
    }
    const before = await etcContainersDigest()
    const result = await runIsolated('ansible-playbook', ['-i', 'localhost,', '-c', 'local', path.join(REPO_ROOT, 'ansible/site.yml'), '-e', `@${vars}`], {env})
    // Once, with the role's default install and a .deb in dist-bin/, this installed imagetrust in this machine's /usr.
    assert.equal(await etcContainersDigest(), before, 'the role changed this machine')
    assert.notEqual(result.code, 0)
    assert.match(result.stdout, new RegExp(`"msg": "imagetrust not found at ${path.join(dir, 'no/such/imagetrust')}"`), result.stdout)
  })

  it('DEBUG shows the stack trace', async () => {
    const result = await imagetrust(['check', '--bogus'], {...process.env, DEBUG: '1'})
    assert.equal(result.code, 64)
    assert.match(result.stderr, /^imagetrust: error: Nonexistent flag: --bogus$/m)
    assert.match(result.stderr, /^\s+at /m)
  })
})
