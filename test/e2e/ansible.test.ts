/**
 * The Ansible role, run for real with ansible-playbook: the second run
 * changes nothing, and check mode reports drift without writing.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {makeGpgKey, type MadeGpgKey} from '../support/gpg.ts'
import {REPO_ROOT, imagetrust, runIsolated} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

describe('Ansible role', () => {
  let dir: string
  let root: string
  let key: MadeGpgKey
  let vars: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-ansible-'))
    root = path.join(dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    key = await makeGpgKey(dir, 'ansible')
    vars = path.join(dir, 'vars.json')
    await writeFile(
      vars,
      JSON.stringify({
        imagetrust_command: `${process.execPath} ${path.join(REPO_ROOT, 'bin/run.js')}`,
        imagetrust_root: root,
        imagetrust_keys: {'acme.asc': key.publicArmored},
        imagetrust_trust: {
          version: 1,
          default: 'reject',
          keys: {acme: {type: 'gpg', file: 'keys/acme.asc', fingerprint: key.fingerprint}},
          scopes: {'registry.example.com:5000/acme': {policy: 'signed', keys: ['acme'], lookaside: 'https://sigs.example.com'}},
        },
      }),
    )
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  async function play(...extra: string[]): Promise<{code: number; changed: number; output: string}> {
    const env = {
      ...process.env,
      HOME: dir,
      ANSIBLE_ROLES_PATH: path.join(REPO_ROOT, 'ansible/roles'),
      ANSIBLE_LOCAL_TEMP: path.join(dir, 'ansible-tmp'),
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
    }
    const result = await runIsolated('ansible-playbook', ['-i', 'localhost,', path.join(REPO_ROOT, 'ansible/tests/test.yml'), '-e', `@${vars}`, ...extra], {env})
    const recap = /localhost\s*:\s*ok=\d+\s+changed=(\d+)/.exec(result.stdout)
    return {code: result.code, changed: recap ? Number(recap[1]) : -1, output: result.stdout + result.stderr}
  }

  it('converges the host; the second run changes nothing', async () => {
    const first = await play()
    assert.equal(first.code, 0, first.output)
    assert.ok(first.changed >= 3, `first run: changed=${first.changed}`)
    const policy = JSON.parse(await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8'))
    assert.deepEqual(policy.transports.docker['registry.example.com:5000/acme'], [{type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/containers/acme.gpg'}])
    const snapshot = await hashTree(root)
    const second = await play()
    assert.equal(second.code, 0, second.output)
    assert.equal(second.changed, 0, second.output)
    assert.deepEqual(await hashTree(root), snapshot)
    assert.equal((await imagetrust(['check', '--root', root, '-c', path.join(root, 'etc/imagetrust/trust.yaml')])).code, 0)
  })

  it('check mode reports drift after a hand edit, and writes nothing', async () => {
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    const before = await hashTree(root)
    const checked = await play('--check')
    assert.equal(checked.code, 0, checked.output)
    assert.equal(checked.changed, 1, checked.output)
    assert.match(checked.output, /TASK \[imagetrust : Dry-run the candidate \(what apply would change\)\] \*+\nchanged: \[localhost\]/)
    assert.deepEqual(await hashTree(root), before)
    const repaired = await play()
    assert.equal(repaired.changed, 1, repaired.output)
  })

  it('a bad trust file fails the play with imagetrust\'s message, changing nothing', async () => {
    const bad = path.join(dir, 'bad-vars.json')
    const v = JSON.parse(await readFile(vars, 'utf8'))
    v.imagetrust_trust.scopes['registry.example.com:5000/acme'].keys = ['ghost']
    await writeFile(bad, JSON.stringify(v))
    const before = await hashTree(root)
    const result = await runIsolated('ansible-playbook', ['-i', 'localhost,', path.join(REPO_ROOT, 'ansible/tests/test.yml'), '-e', `@${bad}`], {
      env: {...process.env, HOME: dir, ANSIBLE_ROLES_PATH: path.join(REPO_ROOT, 'ansible/roles'), ANSIBLE_NOCOLOR: '1', ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3'},
    })
    assert.notEqual(result.code, 0)
    assert.match(result.stdout, /imagetrust apply failed \(exit 1\): .*trust\.yaml:\d+ .*key \\"ghost\\" is not defined/)
    // Not even the installed trust file changed: the candidate is checked before anything is written.
    assert.deepEqual(await hashTree(root), before)
  })
})
