/**
 * audit --since: what the host really pulled, from podman's own events, judged
 * against a candidate policy. Real pulls (podman, into a throw-away store) from
 * a loopback registry of images signed by the trusted key, by another key, and
 * unsigned; podman logs them with events_logger = "file" to an events file
 * under the test's directory, as containers.conf (CONTAINERS_CONF) says.
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, imagetrust, run} from '../support/lab.ts'
import {assertMatchesSchema} from '../support/schema.ts'
import {Store} from '../support/store.ts'

interface Pulled {
  reference: string
  source: string
  pulls: number
  lastPulled: string
  outcome: string
  reason: string
  signer?: string
}

interface Report {
  pulled?: {since: string; until: string; window: string; images: Pulled[]; summary: Record<string, number>}
  exitCode: number
}

describe('audit --since: the pulls this host made, judged', () => {
  let lab: Lab
  let store: Store
  let alpha: GpgKey
  let beta: GpgKey
  let env: NodeJS.ProcessEnv
  let events: string
  const images = {byAlpha: '', byBeta: '', unsigned: ''}
  let pulledAt: Date

  before(async () => {
    lab = await Lab.started('ith-')
    events = path.join(lab.dir, 'events', 'events.log')
    const conf = path.join(lab.dir, 'containers.conf')
    await writeFile(conf, `[engine]\nevents_logger = "file"\nevents_logfile_path = "${events}"\n`)
    env = {...process.env, CONTAINERS_CONF: conf}
    store = await Store.create({CONTAINERS_CONF: conf})
    ;[alpha, beta] = await Promise.all([lab.makeGpgKey('halpha'), lab.makeGpgKey('hbeta')])
    await writeFile(path.join(lab.dir, 'alpha.asc'), alpha.publicArmored)
    for (const name of ['a', 'b', 'u']) await lab.buildRunnableImage(`localhost/${name}:1`, `history ${name}`)
    images.byAlpha = await lab.push('localhost/a:1', 'shop/app:1', alpha)
    images.byBeta = await lab.push('localhost/b:1', 'shop/other:1', beta)
    images.unsigned = await lab.push('localhost/u:1', 'shop/unsigned:1')
    const acceptAll = path.join(lab.dir, 'accept-all.json')
    await writeFile(acceptAll, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    pulledAt = new Date()
    // The signed image twice: one entry, two pulls.
    for (const image of [images.byAlpha, images.byBeta, images.unsigned, images.byAlpha]) await store.podman(['pull', '--quiet', '--tls-verify=false', '--signature-policy', acceptAll, image])
  })

  after(async () => {
    await store?.cleanup()
    await lab?.stop()
  })

  async function setup(name: string): Promise<{root: string; config: string}> {
    const root = path.join(lab.dir, name)
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await copyFile(path.resolve(import.meta.dirname, '../fixtures/distro/debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
    const config = path.join(lab.dir, `${name}.yaml`)
    await writeFile(
      config,
      ['version: 1', 'default: reject', 'keys:', `  alpha: {file: alpha.asc, fingerprint: ${alpha.fingerprint}}`, 'scopes:', `  "${lab.registry}/shop":`, '    policy: signed', '    keys: [alpha]', `    lookaside: ${lab.lookasideUrl}`, ''].join('\n'),
    )
    return {root, config}
  }

  const audit = (root: string, config: string, ...extra: string[]) => imagetrust(['audit', '--root', root, '-c', config, '--no-tls-verify', '--no-crictl', ...store.flags, ...extra], env)

  it('podman wrote its pull events to the events file containers.conf names', async () => {
    const log = await readFile(events, 'utf8')
    assert.equal(log.split('\n').filter((l) => l.includes('"Status":"pull"')).length, 4, log)
  })

  it('--since 1h --candidate: each pulled reference once, with its pull count, last pull and verdict', async () => {
    const {root, config} = await setup('candidate')
    const result = await audit(root, config, '--candidate', '--since', '1h', '--json')
    const report = JSON.parse(result.stdout) as Report
    assertMatchesSchema('audit', report)
    // Nothing runs: the exit code still speaks only of running containers.
    assert.equal(result.code, 0, result.stderr)
    const pulled = report.pulled!
    assert.equal(pulled.window, 'in the last hour')
    const by = (ref: string) => pulled.images.find((i) => i.reference === ref) ?? assert.fail(`${ref} not in ${JSON.stringify(pulled.images)}`)
    assert.deepEqual(pulled.images.map((i) => i.reference).sort(), [images.byAlpha, images.byBeta, images.unsigned].sort())
    assert.deepEqual({pulls: by(images.byAlpha).pulls, outcome: by(images.byAlpha).outcome, signer: by(images.byAlpha).signer}, {pulls: 2, outcome: 'accepted', signer: alpha.fingerprint})
    assert.ok(new Date(by(images.byAlpha).lastPulled) >= pulledAt, by(images.byAlpha).lastPulled)
    assert.equal(by(images.byBeta).outcome, 'refused')
    assert.match(by(images.byBeta).reason, new RegExp(`signed by key ${beta.fingerprint}, which the policy does not name`))
    assert.equal(by(images.unsigned).outcome, 'refused')
    assert.match(by(images.unsigned).reason, /^no signature at /)
    assert.ok(pulled.images.every((i) => i.source === 'podman'))
    assert.deepEqual(pulled.summary, {references: 3, pulls: 4, accepted: 1, refused: 2, unknown: 0})
  })

  it('the table ends with the summary line', async () => {
    const {root, config} = await setup('table')
    const result = await audit(root, config, '--candidate', '--since', '1h')
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /^Pulled in the last hour \(4 pull\(s\)\), judged against the candidate policy:$/m)
    assert.match(result.stdout, /^WOULD HAVE BEEN REFUSED \(2\):$/m)
    assert.match(result.stdout, new RegExp(`^  ${images.byAlpha.replaceAll('.', '\\.')} \\[podman\\] pulled 2 time\\(s\\), last `, 'm'))
    assert.match(result.stdout.trimEnd().split('\n').at(-1)!, /^In the last hour, 2 of 3 pulled image\(s\) would have been refused\.$/)
  })

  it('an RFC 3339 time after the pulls: the window holds none of them', async () => {
    const {root, config} = await setup('rfc3339')
    const later = new Date(Date.now() - 1).toISOString().replace(/\.\d+Z$/, 'Z')
    const result = await audit(root, config, '--candidate', '--since', later, '--json')
    const report = JSON.parse(result.stdout) as Report
    assert.equal(result.code, 0, result.stderr)
    // The same second as the last pull may still count; none before it does.
    assert.ok(report.pulled!.images.every((i) => new Date(i.lastPulled) >= new Date(later)), JSON.stringify(report.pulled))
    const earlier = await audit(root, config, '--candidate', '--since', pulledAt.toISOString(), '--json')
    assert.equal((JSON.parse(earlier.stdout) as Report).pulled!.summary.pulls, 4)
  })

  it('a bad --since is a usage error (exit 64) naming the value, and judges nothing', async () => {
    const {root, config} = await setup('bad')
    for (const bad of ['7 days', 'yesterday', '0h', '2026-13-01T00:00:00Z', '2999-01-01T00:00:00Z']) {
      const result = await audit(root, config, '--since', bad)
      assert.equal(result.code, 64, `${bad}: ${result.stdout}${result.stderr}`)
      assert.match(result.stderr, new RegExp(`--since "${bad}": `))
      assert.equal(result.stdout, '')
    }
  })

  it('audit --metrics counts the pulled images by verdict, in exposition promtool accepts', async () => {
    const {root, config} = await setup('metrics')
    const file = path.join(lab.dir, 'textfile', 'imagetrust-audit.prom')
    await mkdir(path.dirname(file), {recursive: true})
    const result = await audit(root, config, '--candidate', '--since', '1h', '--metrics', file)
    assert.equal(result.code, 0, result.stderr)
    const text = await readFile(file, 'utf8')
    assert.match(text, /^imagetrust_audit_pulled_images\{outcome="refused"\} 2$/m)
    assert.match(text, /^imagetrust_audit_images\{outcome="refused"\} 2$/m)
    assert.match(text, /^imagetrust_audit_running_refused 0$/m)
    const checked = await run('promtool', ['check', 'metrics'], {input: text})
    assert.equal(checked.code, 0, checked.stdout + checked.stderr)
  })
})
