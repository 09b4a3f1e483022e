/**
 * check/audit --metrics against the real consumers: promtool (Debian's
 * prometheus package) validates the exposition in the drift, in-sync and
 * error cases, and Debian's prometheus-node-exporter, on a loopback port,
 * serves it through its textfile collector to a real scrape. The alert rules
 * in docs/metrics.md pass promtool check rules and fire in promtool test rules.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {renderExposition} from '../../src/metrics/exposition.ts'
import {makeGpgKey, type MadeGpgKey} from '../support/gpg.ts'
import {freePort, imagetrust, REPO_ROOT, run} from '../support/lab.ts'

const value = (text: string, sample: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `))
  return line === undefined ? undefined : Number(line.slice(sample.length + 1))
}

async function promtoolMetrics(text: string): Promise<void> {
  const result = await run('promtool', ['check', 'metrics'], {input: text})
  assert.equal(result.code, 0, `promtool check metrics refused:\n${result.stdout}${result.stderr}\n${text}`)
}

describe('Prometheus metrics for the textfile collector', () => {
  let dir: string
  let key: MadeGpgKey

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-metrics-'))
    key = await makeGpgKey(dir, 'metrics', 'expires-soon')
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  async function host(name: string) {
    const ws = path.join(dir, name)
    const root = path.join(ws, 'root')
    const prom = path.join(ws, 'textfile')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await mkdir(prom)
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await writeFile(path.join(ws, 'k.asc'), key.publicArmored)
    const config = path.join(ws, 'trust.yaml')
    await writeFile(config, `version: 1\ndefault: reject\nkeys:\n  shop-key: {file: k.asc}\nscopes:\n  "registry.example.com/x":\n    policy: signed\n    keys: [shop-key]\n    lookaside: https://sigs.example.com\n`)
    const file = path.join(prom, 'imagetrust.prom')
    const check = async (...extra: string[]) => {
      const result = await imagetrust(['check', '--root', root, '-c', config, '--metrics', file, ...extra])
      return {code: result.code, stderr: result.stderr, text: await readFile(file, 'utf8')}
    }

    return {ws, root, config, prom, file, check}
  }

  it('drift, in sync and a failed check each give exposition promtool accepts, with the right values', async () => {
    const h = await host('cases')
    const drift = await h.check()
    assert.equal(drift.code, 2, drift.stderr)
    await promtoolMetrics(drift.text)
    assert.equal(value(drift.text, 'imagetrust_in_sync'), 0)
    assert.equal(value(drift.text, 'imagetrust_drift_files{reason="missing key"}'), 1)
    assert.equal(value(drift.text, 'imagetrust_check_errors'), 0)
    assert.equal(value(drift.text, 'imagetrust_last_apply_timestamp_seconds'), undefined, 'never applied, yet a last apply time')
    const expiry = value(drift.text, `imagetrust_key_expiry_timestamp_seconds{key="shop-key",fingerprint="${key.fingerprint}"}`)
    assert.ok(expiry && expiry > Date.now() / 1000 && expiry < Date.now() / 1000 + 11 * 86_400, drift.text)
    for (const name of drift.text.matchAll(/^(imagetrust_\w+)[{ ]/gm)) {
      assert.match(drift.text, new RegExp(`^# HELP ${name[1]} `, 'm'))
      assert.match(drift.text, new RegExp(`^# TYPE ${name[1]} gauge$`, 'm'))
    }

    assert.equal((await imagetrust(['apply', '--root', h.root, '-c', h.config])).code, 0)
    const synced = await h.check()
    assert.equal(synced.code, 0, synced.stderr)
    await promtoolMetrics(synced.text)
    assert.equal(value(synced.text, 'imagetrust_in_sync'), 1)
    // Answered from the last apply's fingerprint, with the same key expiry.
    assert.equal(value(synced.text, `imagetrust_key_expiry_timestamp_seconds{key="shop-key",fingerprint="${key.fingerprint}"}`), expiry)
    assert.doesNotMatch(synced.text, /^imagetrust_drift_files\{/m)
    assert.ok(value(synced.text, 'imagetrust_last_apply_timestamp_seconds')! <= value(synced.text, 'imagetrust_last_check_timestamp_seconds')!)

    await writeFile(h.config, 'version: 1\ndefault: [reject\n')
    const failed = await h.check()
    assert.equal(failed.code, 1, failed.stderr)
    await promtoolMetrics(failed.text)
    assert.equal(value(failed.text, 'imagetrust_check_errors'), 1)
    assert.equal(value(failed.text, 'imagetrust_in_sync'), undefined, 'a failed check claims a sync state')
    // Only the finished file is left: the temp file was renamed over it.
    assert.deepEqual(await readdir(h.prom), ['imagetrust.prom'])
  })

  it('IMAGETRUST_METRICS (the systemd unit\'s) works as --metrics for check', async () => {
    const h = await host('env')
    const result = await imagetrust(['check', '--root', h.root, '-c', h.config], {...process.env, IMAGETRUST_METRICS: h.file})
    assert.equal(result.code, 2, result.stderr)
    assert.equal(value(await readFile(h.file, 'utf8'), 'imagetrust_in_sync'), 0)
  })

  it('label values with quotes, backslashes and newlines are escaped as promtool expects', async () => {
    const text = renderExposition([{name: 'imagetrust_x', help: 'a\\b\nc', type: 'gauge', samples: [{labels: {key: 'a"b\\c\nd'}, value: 1}]}])
    assert.match(text, /^imagetrust_x\{key="a\\"b\\\\c\\nd"\} 1$/m)
    await promtoolMetrics(text)
  })

  it('node_exporter serves the file; after a hand edit of policy.json the scrape shows imagetrust_in_sync 0', async () => {
    const h = await host('scrape')
    assert.equal((await imagetrust(['apply', '--root', h.root, '-c', h.config])).code, 0)
    assert.equal((await h.check()).code, 0)
    const port = await freePort()
    const exporter: ChildProcess = spawn(
      'prometheus-node-exporter',
      [`--web.listen-address=127.0.0.1:${port}`, '--collector.disable-defaults', '--collector.textfile', `--collector.textfile.directory=${h.prom}`],
      {stdio: ['ignore', 'ignore', 'pipe']},
    )
    let log = ''
    exporter.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()))
    try {
      const scrape = async () => {
        for (let i = 0; i < 100; i++) {
          const result = await run('curl', ['-sf', `http://127.0.0.1:${port}/metrics`])
          if (result.code === 0) return result.stdout
          await sleep(100)
        }

        throw new Error(`node_exporter did not answer on 127.0.0.1:${port}:\n${log}`)
      }

      const before = await scrape()
      assert.equal(value(before, 'imagetrust_in_sync'), 1, before)
      assert.equal(value(before, 'node_textfile_scrape_error'), 0, before)
      const policy = path.join(h.root, 'etc/containers/policy.json')
      await writeFile(policy, (await readFile(policy, 'utf8')).replace('"reject"', '"insecureAcceptAnything"'))
      assert.equal((await h.check()).code, 2)
      const afterEdit = await scrape()
      assert.equal(value(afterEdit, 'imagetrust_in_sync'), 0, afterEdit)
      assert.equal(value(afterEdit, 'imagetrust_drift_files{reason="content"}'), 1, afterEdit)
      assert.equal(value(afterEdit, 'node_textfile_scrape_error'), 0, afterEdit)
    } finally {
      exporter.kill('SIGTERM')
    }
  })

  it('the alert rules in docs/metrics.md pass promtool check rules, and ImagetrustDrift fires after 2h out of sync', async () => {
    const doc = await readFile(path.join(REPO_ROOT, 'docs/metrics.md'), 'utf8')
    const rules = /## Alert rules\n[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)?.[1]
    assert.ok(rules, 'docs/metrics.md has no alert rules block')
    const file = path.join(dir, 'imagetrust-alerts.yml')
    await writeFile(file, rules)
    const checked = await run('promtool', ['check', 'rules', file])
    assert.equal(checked.code, 0, checked.stdout + checked.stderr)
    const test = path.join(dir, 'alerts-test.yml')
    await writeFile(
      test,
      [
        'rule_files: [imagetrust-alerts.yml]',
        'evaluation_interval: 1m',
        'tests:',
        '  - interval: 1m',
        '    input_series:',
        '      - {series: \'imagetrust_in_sync{instance="h1"}\', values: "1 0x200"}',
        '    alert_rule_test:',
        '      - {eval_time: 1h, alertname: ImagetrustDrift, exp_alerts: []}',
        '      - eval_time: 3h',
        '        alertname: ImagetrustDrift',
        '        exp_alerts:',
        '          - exp_labels: {severity: warning, instance: h1}',
        '            exp_annotations:',
        '              summary: "h1: container image trust drifted from the trust file"',
        '              description: "Run `imagetrust check` on the host; drifted places by reason: imagetrust_drift_files."',
        '',
      ].join('\n'),
    )
    const tested = await run('promtool', ['test', 'rules', test], {cwd: dir})
    assert.equal(tested.code, 0, tested.stdout + tested.stderr)
  })
})

describe("the role's imagetrust_metrics_dir", () => {
  it('templates a drift-check unit that systemd accepts and whose run writes the metrics file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-metrics-role-'))
    try {
      // A space and a % in the path: quoted, and the % doubled (systemd reads %x as a specifier).
      const prom = path.join(dir, 'node exporter 100%')
      const root = path.join(dir, 'root')
      await mkdir(prom)
      await mkdir(path.join(root, 'etc/containers'), {recursive: true})
      await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
      const template = path.join(REPO_ROOT, 'ansible/roles/imagetrust/templates/imagetrust-check.service.j2')
      const vars = {imagetrust_command: `${process.execPath} ${path.join(REPO_ROOT, 'bin/run.js')}`, imagetrust_root: root, imagetrust_config_dir: '/etc/imagetrust', imagetrust_metrics_dir: prom}
      const render = async (name: string, extra: Record<string, string>) => {
        const dest = path.join(dir, name)
        const args = ['localhost', '-c', 'local', '-i', 'localhost,', '-m', 'ansible.builtin.template', '-a', `src=${template} dest=${dest}`, '-e', JSON.stringify({...vars, ...extra})]
        const result = await run('ansible', args, {env: {...process.env, ANSIBLE_LOCALHOST_WARNING: 'false'}})
        assert.equal(result.code, 0, result.stdout + result.stderr)
        return readFile(dest, 'utf8')
      }

      const unit = await render('imagetrust-check.service', {})
      assert.equal(/^ReadWritePaths=(.*)$/m.exec(unit)?.[1], `'${prom.replaceAll('%', '%%')}'`)
      const environment = /^Environment=(.*)$/m.exec(unit)?.[1]
      assert.equal(environment, `'IMAGETRUST_METRICS=${prom.replaceAll('%', '%%')}/imagetrust.prom'`)
      assert.doesNotMatch(await render('without.service', {imagetrust_metrics_dir: ''}), /IMAGETRUST_METRICS|ReadWritePaths/)
      const verified = await run('systemd-analyze', ['verify', '--man=no', path.join(dir, 'imagetrust-check.service')])
      assert.equal(verified.code, 0, verified.stderr)
      // What the timer runs, with the environment the unit sets: no trust file yet, so the check fails and says so in the metrics.
      const argv = /^ExecStart=(.*)$/m.exec(unit)![1].split(' ')
      const checked = await run(argv[0], argv.slice(1), {env: {...process.env, IMAGETRUST_METRICS: `${prom}/imagetrust.prom`}})
      assert.equal(checked.code, 1, checked.stderr)
      assert.match(await readFile(path.join(prom, 'imagetrust.prom'), 'utf8'), /^imagetrust_check_errors 1$/m)
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})
