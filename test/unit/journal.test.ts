import assert from 'node:assert/strict'
import {readdir} from 'node:fs/promises'
import path from 'node:path'
import {afterEach, beforeEach, describe, it} from 'node:test'

import {TestHost} from '../support/hostroot.ts'

const POLICY = '/etc/containers/policy.json'
const JOURNAL = '/var/lib/imagetrust/apply-journal.json'

describe("apply's journal", () => {
  let host: TestHost
  let config: string

  beforeEach(async () => {
    host = await TestHost.create()
    await host.write(POLICY, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    config = await host.local('trust.yaml', 'version: 1\ndefault: reject\nscopes:\n  "registry.example.com/a":\n    policy: accept\n')
  })

  afterEach(async () => {
    await host?.remove()
  })

  it('is gone after an apply, and the one written before its backup (a run killed then) is cleared with the unfinished backup', async () => {
    await host.apply(config)
    await assert.rejects(host.read(JOURNAL), {code: 'ENOENT'})
    const first = await readdir(path.join(host.root, 'var/lib/imagetrust/backups'))
    await host.write(JOURNAL, JSON.stringify({version: 1, backup: '20260101T000000000Z-0a1b2c', pid: 1, startedAt: '2026-01-01T00:00:00.000Z'}))
    const result = await host.apply(await host.local('trust.yaml', 'version: 1\ndefault: accept\n'))
    assert.ok(result.changed)
    await assert.rejects(host.read(JOURNAL), {code: 'ENOENT'})
    assert.equal((await readdir(path.join(host.root, 'var/lib/imagetrust/backups'))).length, first.length + 1)
  })

  it('that is not one imagetrust wrote is refused, naming the file, line and field; nothing is written', async () => {
    await host.write(JOURNAL, '{\n  "version": 1,\n  "backup": "../../etc",\n  "pid": 1,\n  "startedAt": "x"\n}\n')
    await assert.rejects(host.apply(config), (error: Error) => {
      assert.match(error.message, /apply-journal\.json:3:\d+.*\$\.backup.*expected the id of a backup directory/s)
      return true
    })
    assert.equal(await host.read(POLICY), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
  })

  it('pending, makes plan warn that the next apply rolls it back', async () => {
    await host.write(JOURNAL, JSON.stringify({version: 1, backup: '20260101T000000000Z-0a1b2c', pid: 1, startedAt: '2026-01-01T00:00:00.000Z'}))
    const prepared = await host.plan(config)
    assert.ok(prepared.plan.warnings.some((w) => /an apply was interrupted before it finished .*apply-journal\.json.*the next apply rolls it back first/.test(w)), JSON.stringify(prepared.plan.warnings))
  })
})
