import assert from 'node:assert/strict'
import {mkdtemp, open, rm, symlink} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {describe, it} from 'node:test'

import {EXIT, ImagetrustError, errorJson, toImagetrustError, wantsJson} from '../../src/lib/errors.ts'

/** A system error as Node builds it. */
function systemError(code: string, syscall: string, file?: string, dest?: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: something, ${syscall} '${file}'`)
  Object.assign(error, {code, syscall, errno: -1, ...(file ? {path: file} : {}), ...(dest ? {dest} : {})})
  return error
}

describe('toImagetrustError', () => {
  const ROWS: Array<[error: NodeJS.ErrnoException, message: string, hint: RegExp | undefined]> = [
    [systemError('EACCES', 'open', '/etc/containers/policy.json'), 'permission denied: /etc/containers/policy.json', /^run as root, or use --user/],
    [systemError('EPERM', 'rename', '/a/.tmp', '/a/b'), 'permission denied: /a/.tmp (to /a/b)', /^run as root/],
    [systemError('EROFS', 'open', '/etc/containers/policy.json'), 'read-only file system: /etc/containers/policy.json', /read-only/],
    [systemError('ENOSPC', 'write', '/var/lib/imagetrust/state.json'), 'no space left on device: /var/lib/imagetrust/state.json', /free some space/],
    [systemError('EACCES', 'mkdir'), 'permission denied (mkdir)', /^run as root/],
    [systemError('ENOENT', 'spawn podman', 'podman'), 'program not found: podman', /install it/],
    [systemError('EWHATEVER', 'open', '/x'), 'EWHATEVER: something, open \'/x\'', undefined],
  ]
  for (const [error, message, hint] of ROWS) {
    it(`${error.code} ${error.syscall}`, () => {
      const converted = toImagetrustError(error)
      assert.equal(converted.message, message)
      assert.equal(converted.exitCode, EXIT.error)
      if (hint) assert.match(converted.hint ?? '', hint)
      else assert.equal(converted.hint, undefined)
    })
  }

  it('a real ELOOP names the path', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-eloop-'))
    try {
      await symlink('loop', path.join(dir, 'loop'))
      const error = await open(path.join(dir, 'loop')).then(
        () => assert.fail('opened a symlink loop'),
        (error: unknown) => error,
      )
      assert.equal(toImagetrustError(error).message, `too many levels of symbolic links: ${path.join(dir, 'loop')}`)
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })

  it('our errors pass through; anything else keeps its message, exit 1', () => {
    const ours = new ImagetrustError('bad', {hint: 'fix it'})
    assert.equal(toImagetrustError(ours), ours)
    assert.equal(toImagetrustError(new TypeError('x is undefined')).message, 'x is undefined')
    const wrapped = toImagetrustError(new ImagetrustError('cannot write /etc/containers/policy.json: EROFS', {cause: systemError('EROFS', 'open', '/etc/containers/.x')}))
    assert.equal(wrapped.message, 'cannot write /etc/containers/policy.json: EROFS')
    assert.match(wrapped.hint ?? '', /read-only/)
    assert.equal(toImagetrustError('thrown string').message, 'thrown string')
    assert.equal(toImagetrustError(new TypeError('x')).exitCode, 1)
  })

  it('oclif usage errors exit 64 with a one-line message', () => {
    const parse = Object.assign(new Error('Nonexistent flag: --bogus\nSee more help with --help'), {oclif: {exit: 2}, parse: {}})
    assert.deepEqual(errorJson(toImagetrustError(parse, {commandId: 'key:add'})), {
      error: {message: 'Nonexistent flag: --bogus', hint: "see 'imagetrust key add --help'", exitCode: 64},
    })
    const flag = new Error('Parsing --lock-timeout \n\tExpected an integer but received: abc\nSee more help with --help')
    assert.equal(toImagetrustError(flag).message, 'Parsing --lock-timeout: Expected an integer but received: abc')
    assert.equal(toImagetrustError(flag).exitCode, EXIT.usage)
    const unknown = () => Object.assign(new Error('command chek not found'), {oclif: {exit: 2}})
    assert.match(toImagetrustError(unknown(), {commands: ['apply', 'check', 'key:add']}).hint ?? '', /^did you mean 'imagetrust check'\?/)
    assert.equal(toImagetrustError(unknown(), {commands: ['apply']}).hint, "see 'imagetrust --help' for the commands")
    const exit = Object.assign(new Error('EEXIT: 2'), {code: 'EEXIT', oclif: {exit: 2}})
    assert.notEqual(toImagetrustError(exit).exitCode, EXIT.usage)
  })

  it('wantsJson ignores --json after --', () => {
    assert.equal(wantsJson(['check', '--json']), true)
    assert.equal(wantsJson(['check', '--', '--json']), false)
  })
})
