/**
 * The role's module run directly (as Ansible runs it, with an args file):
 * the inputs that must be refused before it writes anything, in check mode too.
 * Fast: no ansible-playbook, no tarball.
 */
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {mkdir, mkdtemp, readdir, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {REPO_ROOT, run} from '../support/lab.ts'

const MODULE = path.join(REPO_ROOT, 'ansible/roles/imagetrust/library/imagetrust.py')

describe('the Ansible module', () => {
  let dir: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-module-'))
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  const escapee = `imagetrust-escape-${randomBytes(4).toString('hex')}.asc`
  const NAMES = [path.join(os.tmpdir(), escapee), `../../${escapee}`, `../${escapee}`, 'sub/dir.asc', '..', '.hidden', 'a\nb.asc']
  for (const checkMode of [true, false]) {
    for (const name of NAMES) {
      it(`refuses key_files name ${JSON.stringify(name)}${checkMode ? ' in check mode' : ''}, writing nothing`, async () => {
        const work = path.join(dir, randomBytes(4).toString('hex'))
        const configDir = path.join(work, 'etc/imagetrust')
        await mkdir(configDir, {recursive: true})
        const args = path.join(work, 'args.json')
        const trust = {version: 1, keys: {}, scopes: {'r.example.com/apps': {policy: 'accept'}}}
        const moduleArgs = {command: [process.execPath, path.join(REPO_ROOT, 'bin/run.js')], root: path.join(work, 'root'), trust, config_dir: configDir, key_files: {[name]: 'KEY', 'good.asc': 'KEY'}, _ansible_check_mode: checkMode}
        await writeFile(args, JSON.stringify({ANSIBLE_MODULE_ARGS: moduleArgs}))
        const result = await run('/usr/bin/python3', [MODULE, args], {env: {...process.env, TMPDIR: work}})
        const out = JSON.parse(result.stdout)
        assert.equal(out.failed, true, result.stdout)
        assert.match(out.msg, /key_files: .*only plain file names are allowed/)
        assert.deepEqual(await readdir(configDir), [], 'something was written to the config directory')
        for (const place of [path.join(os.tmpdir(), escapee), path.join(work, escapee), path.join(work, 'etc', escapee), path.join(dir, escapee)]) {
          await assert.rejects(stat(place), `written outside: ${place}`)
        }

        assert.deepEqual((await readdir(work)).sort(), ['args.json', 'etc'], 'no scratch copy left behind')
      })
    }
  }
})
