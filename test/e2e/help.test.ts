/** help, version, "did you mean" for mistyped commands, and bash/zsh completion, from the built CLI. */
import assert from 'node:assert/strict'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {REPO_ROOT, run} from '../support/lab.ts'

const cli = (args: string[]) => run(process.execPath, [path.join(REPO_ROOT, 'bin/run.js'), ...args])

describe('help, version, did you mean, completion', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-help-'))
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('help lists the commands, and help COMMAND shows its flags', async () => {
    const all = await cli(['help'])
    assert.equal(all.code, 0, all.stderr)
    for (const command of ['init', 'apply', 'plan', 'check', 'verify', 'key']) assert.match(all.stdout, new RegExp(`^  ${command} `, 'm'))
    const init = await cli(['help', 'init'])
    assert.equal(init.code, 0, init.stderr)
    assert.match(init.stdout, /--scope=SCOPE/)
    assert.match(init.stdout, /--default=<option>/)
    const sub = await cli(['help', 'key', 'add'])
    assert.match(sub.stdout, /\$ imagetrust key add NAME SOURCE/)
  })

  it('version and version --json', async () => {
    const {version} = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')))
    const plain = await cli(['version'])
    assert.equal(plain.code, 0)
    assert.match(plain.stdout, new RegExp(`^imagetrust/${version.replaceAll('.', '\\.')} `))
    const json = JSON.parse((await cli(['version', '--json'])).stdout)
    assert.equal(json.version, version)
    assert.equal((await cli(['--version'])).stdout, plain.stdout)
  })

  for (const [typed, meant] of [
    ['chekc', 'check'],
    ['aply', 'apply'],
    ['key ad', 'key add'],
    ['explian', 'explain'],
    ['int', 'init'],
  ]) {
    it(`"${typed}" suggests "${meant}" and exits 64 (a usage error)`, async () => {
      const result = await cli(typed.split(' '))
      assert.equal(result.code, 64)
      assert.match(result.stderr, new RegExp(`command ${typed} not found`))
      assert.match(result.stderr, new RegExp(`did you mean [^\\n]*'imagetrust ${meant}'`))
    })
  }

  it('an unknown command far from any suggests help', async () => {
    const result = await cli(['zzzzzzzz'])
    assert.equal(result.code, 64)
    assert.match(result.stderr, /see 'imagetrust --help' for the commands/)
  })

  const CASES: Array<[words: string[], expected: string[]]> = [
    [['imagetrust', ''], ['apply', 'check', 'init', 'key', 'plan', 'verify']],
    [['imagetrust', 'ke'], ['key']],
    [['imagetrust', 'key', ''], ['add', 'list', 'remove']],
    [['imagetrust', 'key', 'add', '--sc'], ['--scope']],
    [['imagetrust', 'init', '--default', ''], ['accept', 'reject', 'unset']],
    [['imagetrust', 'verify', '--engine', 'sk'], ['skopeo']],
    [['imagetrust', 'init', '--no-'], ['--no-apply', '--no-color', '--no-verify']],
  ]

  for (const shell of ['bash', 'zsh'] as const) {
    it(`${shell} completion completes commands, subcommands, flags and flag values`, async (t) => {
      if ((await run('sh', ['-c', `command -v ${shell}`])).code !== 0) return t.skip(`${shell} is not installed (scripts/setup.sh installs it)`)
      const script = await cli(['completion', shell])
      assert.equal(script.code, 0, script.stderr)
      const file = path.join(dir, `completion.${shell}`)
      await writeFile(file, script.stdout)
      // zsh runs the function through bashcompinit (ksharrays) and matches COMPREPLY against the typed word itself (compadd): the harness does the same.
      const harness =
        shell === 'bash'
          ? `source ${file}; t() { COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _imagetrust_complete; echo "\${COMPREPLY[*]}"; }`
          : `source ${file}; setopt ksharrays; t() { COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _imagetrust_complete; local c=\${COMP_WORDS[COMP_CWORD]}; echo "\${(M)COMPREPLY[@]:#\${c}*}"; }`
      const calls = CASES.map(([words]) => `t ${words.map((w) => `'${w}'`).join(' ')}`).join('\n')
      const result = await run(shell, shell === 'zsh' ? ['-f', '-c', `${harness}\n${calls}`] : ['-c', `${harness}\n${calls}`], {env: {...process.env, HOME: dir}})
      assert.equal(result.code, 0, result.stderr)
      const lines = result.stdout.split('\n')
      for (const [i, [words, expected]] of CASES.entries()) {
        const got = lines[i].split(' ').filter(Boolean)
        for (const word of expected) assert.ok(got.includes(word), `${shell}: ${words.join(' ')} → ${lines[i]} (missing ${word})`)
        if (words.at(-1) !== '') assert.ok(got.every((g) => g.startsWith(words.at(-1)!)), `${shell}: ${words.join(' ')} → ${lines[i]}`)
      }
    })
  }
})
