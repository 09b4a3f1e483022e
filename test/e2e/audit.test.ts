/**
 * imagetrust audit against real podman storage (a throw-away store under
 * /tmp, vfs), real running containers (runc, started from images built with
 * podman import), a real registry and lookaside on 127.0.0.1, and real GPG
 * signatures made by podman push --sign-by.
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, imagetrust} from '../support/lab.ts'
import {Store} from '../support/store.ts'

interface Entry {
  reference: string
  outcome: string
  reason: string
  running: boolean
  containers: Array<{id: string; name: string}>
  scope: string | null
  signer?: string
}

interface Report {
  policy: {source: string}
  images: Entry[]
  summary: Record<string, number>
  exitCode: number
}

describe('audit of local images and running containers', () => {
  let lab: Lab
  let store: Store
  let alpha: GpgKey
  let beta: GpgKey
  const images = {byAlpha: '', byBeta: '', unsigned: '', unlisted: 'localhost/local/tool:1'}
  const running = {byAlpha: '', byBeta: ''}

  before(async () => {
    lab = await Lab.started('ita-')
    store = await Store.create()
    ;[alpha, beta] = await Promise.all([lab.makeGpgKey('aalpha'), lab.makeGpgKey('abeta')])
    await writeFile(path.join(lab.dir, 'alpha.asc'), alpha.publicArmored)
    for (const name of ['a', 'b', 'u']) await lab.buildRunnableImage(`localhost/${name}:1`, `audit ${name}`)
    images.byAlpha = await lab.push('localhost/a:1', 'shop/app:1', alpha)
    images.byBeta = await lab.push('localhost/b:1', 'shop/other:1', beta)
    images.unsigned = await lab.push('localhost/u:1', 'shop/unsigned:1')
    // Pulled into the throw-away store as any host would have them; and one built locally, from no listed registry.
    const acceptAll = path.join(lab.dir, 'accept-all.json')
    await writeFile(acceptAll, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    for (const image of [images.byAlpha, images.byBeta, images.unsigned]) await store.podman(['pull', '--quiet', '--tls-verify=false', '--signature-policy', acceptAll, image])
    await store.podman(['tag', images.unsigned, images.unlisted])
    running.byAlpha = await store.run(images.byAlpha)
    running.byBeta = await store.run(images.byBeta)
  })

  after(async () => {
    await store?.cleanup()
    await lab?.stop()
  })

  async function setup(name: string, lookaside = lab.lookasideUrl): Promise<{root: string; config: string}> {
    const root = path.join(lab.dir, name)
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await copyFile(path.resolve(import.meta.dirname, '../fixtures/distro/debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
    const config = path.join(lab.dir, `${name}.yaml`)
    await writeFile(
      config,
      ['version: 1', 'default: reject', 'keys:', `  alpha: {file: alpha.asc, fingerprint: ${alpha.fingerprint}}`, 'scopes:', `  "${lab.registry}/shop":`, '    policy: signed', '    keys: [alpha]', `    lookaside: ${lookaside}`, ''].join('\n'),
    )
    return {root, config}
  }

  async function audit(root: string, config: string, ...extra: string[]): Promise<{code: number; report: Report; stdout: string; stderr: string}> {
    const result = await imagetrust(['audit', '--root', root, '-c', config, '--no-tls-verify', ...store.flags, ...extra])
    const json = extra.includes('--json')
    return {code: result.code, report: json ? JSON.parse(result.stdout || '{}') : ({} as Report), stdout: result.stdout, stderr: result.stderr}
  }

  const byRef = (report: Report, ref: string) => {
    const entry = report.images.find((i) => i.reference === ref)
    assert.ok(entry, `${ref} is not in the report: ${JSON.stringify(report.images.map((i) => i.reference))}`)
    return entry
  }

  it('against a candidate default: reject, each outcome is right and the running container that would break is flagged (exit 3)', async () => {
    const {root, config} = await setup('candidate')
    const imagesBefore = await store.podman(['images', '--format', 'json'])
    const {code, report, stderr} = await audit(root, config, '--candidate', '--json')
    assert.equal(code, 3, stderr + JSON.stringify(report, null, 1))
    assert.equal(report.policy.source, 'candidate')
    const good = byRef(report, images.byAlpha)
    assert.equal(good.outcome, 'accepted')
    assert.equal(good.signer, alpha.fingerprint)
    assert.equal(good.running, true)
    assert.equal(good.scope, `${lab.registry}/shop`)
    const other = byRef(report, images.byBeta)
    assert.equal(other.outcome, 'refused')
    assert.match(other.reason, new RegExp(`signed by key ${beta.fingerprint}, which the policy does not name`))
    assert.deepEqual(other.containers.map((c) => c.id), [running.byBeta])
    const unsigned = byRef(report, images.unsigned)
    assert.equal(unsigned.outcome, 'refused')
    assert.equal(unsigned.running, false)
    assert.match(unsigned.reason, /^no signature at http:\/\/127\.0\.0\.1:\d+\/shop\/unsigned@sha256=[a-f0-9]{64}\/$/)
    const unlisted = byRef(report, images.unlisted)
    assert.equal(unlisted.outcome, 'refused')
    assert.equal(unlisted.scope, null)
    assert.equal(unlisted.reason, 'the default rejects every image')
    // Grouped by outcome, running containers first.
    assert.deepEqual(report.images.map((i) => `${i.outcome} ${i.running}`).slice(0, 2), ['refused true', 'refused false'])
    assert.deepEqual({runningRefused: report.summary.runningRefused, runningContainers: report.summary.runningContainers}, {runningRefused: 1, runningContainers: 2})
    assert.equal(await store.podman(['images', '--format', 'json']), imagesBefore, 'audit changed image storage')
  })

  it('the table names the running container first, under WOULD BE REFUSED', async () => {
    const {root, config} = await setup('table')
    const {code, stdout, stderr} = await audit(root, config, '--candidate')
    assert.equal(code, 3, stdout + stderr + (await store.podman(['ps', '-a'])))
    const lines = stdout.split('\n')
    assert.match(lines[1], /^WOULD BE REFUSED \(3\):$/)
    assert.match(lines[2], new RegExp(`^  RUNNING \\(\\S+\\) ${images.byBeta.replaceAll('.', '\\.')}$`))
  })

  it('against the installed (accept-anything) policy nothing breaks (exit 0)', async () => {
    const {root, config} = await setup('installed')
    const {code, report} = await audit(root, config, '--json')
    assert.equal(code, 0, JSON.stringify(report))
    assert.equal(report.policy.source, 'installed')
    assert.ok(report.images.every((i) => i.outcome === 'accepted'))
  })

  it('after apply the installed policy is judged the same way; an unreachable lookaside makes a running image unknown (exit 4)', async () => {
    const {root, config} = await setup('applied')
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    const installed = await audit(root, config, '--json')
    assert.equal(installed.code, 3, installed.stderr + JSON.stringify(installed.report, null, 1) + (await store.podman(['ps', '-a'])))
    const dead = await setup('dead-lookaside', 'http://127.0.0.1:9')
    await store.remove(running.byBeta)
    const {code, report} = await audit(dead.root, dead.config, '--candidate', '--json')
    assert.equal(code, 4, JSON.stringify(report))
    const good = byRef(report, images.byAlpha)
    assert.equal(good.outcome, 'unknown')
    assert.match(good.reason, /^cannot be known: the lookaside is unreachable/)
    // With the running container's image verifiable again, nothing running breaks.
    const ok = await audit(root, config, '--candidate', '--json')
    assert.equal(ok.code, 0, JSON.stringify(ok.report))
  })
})
