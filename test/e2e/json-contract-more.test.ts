/**
 * The --json contract (docs/json-output.md) for the newer commands: status,
 * audit, key create, publish and verify --signed run for real (a sandbox made
 * by apply, a throw-away podman store, local directories, a registry and
 * lookaside on 127.0.0.1), and their output must validate against their
 * schemas under schema/ (strict: additionalProperties false wherever the
 * shape is ours).
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Ajv2020} from 'ajv/dist/2020.js'

import {Lab, REPO_ROOT, imagetrust, run} from '../support/lab.ts'
import {Store} from '../support/store.ts'

const ajv = new Ajv2020({allErrors: true, strict: true})
const schema = (name: string) => ajv.compile(JSON.parse(readFileSync(path.join(REPO_ROOT, 'schema', `${name}.schema.json`), 'utf8')))
const validators = Object.fromEntries(['status', 'audit', 'key-create', 'publish', 'verify-signed', 'error'].map((name) => [name, schema(name)]))

describe('--json output of status, audit, key create, publish and verify --signed validates against schema/', () => {
  let lab: Lab
  let store: Store
  let gnupgHome: string
  let config: string
  let root: string
  let unsigned: string

  before(async () => {
    lab = await Lab.started('imagetrust-contract-more-')
    store = await Store.create()
    gnupgHome = path.join(lab.dir, 'gnupg')
    config = path.join(lab.dir, 'trust.yaml')
    root = path.join(lab.dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await lab.buildImage('localhost/contract-more:1', 'contract more')
    unsigned = await lab.push('localhost/contract-more:1', 'apps/unsigned:1')
  })

  after(async () => {
    await run('gpgconf', ['--homedir', gnupgHome, '--kill', 'gpg-agent'])
    await store?.cleanup()
    await lab?.stop()
  })

  /** Runs the CLI with --json; the output must validate against the schema (or the error schema on failure). */
  async function json(name: string, args: string[], codes: number[], reportOn1 = false): Promise<Record<string, unknown>> {
    const result = await imagetrust([...args, '--json'])
    const shown = `imagetrust ${args.join(' ')}: exit ${result.code}\nstdout: ${result.stdout.slice(0, 1500)}\nstderr: ${result.stderr.slice(0, 800)}`
    assert.ok(codes.includes(result.code), shown)
    const output = JSON.parse(result.stdout) as Record<string, unknown>
    const validate = validators[(result.code === 1 && !reportOn1) || result.code === 64 ? 'error' : name]
    assert.ok(validate(output), `${shown}\nschema ${name}: ${ajv.errorsText(validate.errors)}`)
    return output
  }

  it('key create', async () => {
    const created = await json('key-create', ['key', 'create', 'release', '--gnupg-home', gnupgHome, '-c', config, '--scope', `${lab.registry}/apps`], [0])
    assert.match(String(created.fingerprint), /^[0-9A-F]{40}$/)
    // What pulling hosts need: the default and the lookaside.
    await writeFile(
      config,
      [
        'version: 1',
        'default: reject',
        'keys:',
        `  release: {file: ${String(created.file)}, fingerprint: ${String(created.fingerprint)}}`,
        'scopes:',
        `  "${lab.registry}/apps":`,
        '    policy: signed',
        '    keys: [release]',
        `    lookaside: ${lab.lookasideUrl}`,
        '',
      ].join('\n'),
    )
  })

  it('status on a sandbox made by apply', async () => {
    const applied = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(applied.code, 0, applied.stdout + applied.stderr)
    const report = await json('status', ['status', '--root', root, '-c', config], [0])
    const targets = report.targets as Array<{scopes: Array<{scope: string; owner: string; keys: unknown[]}>}>
    const scope = targets.flatMap((t) => t.scopes).find((s) => s.scope === `${lab.registry}/apps`)
    assert.ok(scope, JSON.stringify(report))
    assert.equal(scope.owner, 'imagetrust')
    assert.equal(scope.keys.length, 1)
    // An empty root, and a broken policy.json: still the status shape.
    const empty = path.join(lab.dir, 'empty-root')
    await mkdir(empty)
    await json('status', ['status', '--root', empty, '-c', path.join(lab.dir, 'missing.yaml')], [0])
    const broken = path.join(lab.dir, 'broken-root')
    await mkdir(path.join(broken, 'etc/containers'), {recursive: true})
    await writeFile(path.join(broken, 'etc/containers/policy.json'), '{"default": [')
    const shown = await json('status', ['status', '--root', broken, '-c', path.join(lab.dir, 'missing.yaml')], [0])
    assert.ok((shown.targets as Array<{error?: string}>).some((t) => t.error), JSON.stringify(shown))
  })

  it('audit, installed and candidate, on an empty throw-away store', async () => {
    const installed = await json('audit', ['audit', '--root', root, '-c', config, '--no-tls-verify', ...store.flags], [0])
    assert.deepEqual(installed.images, [])
    await json('audit', ['audit', '--root', root, '-c', config, '--candidate', '--no-tls-verify', ...store.flags], [0])
  })

  it('audit of a pulled unsigned image: refused, with its entry', async () => {
    const acceptAll = path.join(lab.dir, 'accept-all.json')
    await writeFile(acceptAll, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await store.podman(['pull', '--quiet', '--tls-verify=false', '--signature-policy', acceptAll, unsigned])
    const report = await json('audit', ['audit', '--root', root, '-c', config, '--no-tls-verify', ...store.flags], [0])
    const images = report.images as Array<{reference: string; outcome: string}>
    assert.equal(images.length, 1, JSON.stringify(report))
    assert.equal(images[0].outcome, 'refused', JSON.stringify(report))
  })

  it('publish between local directories, and a conflict', async () => {
    const stage = path.join(lab.dir, 'stage')
    const web = path.join(lab.dir, 'web')
    await mkdir(path.join(stage, 'apps/app@sha256=aa'), {recursive: true})
    await mkdir(web)
    await writeFile(path.join(stage, 'apps/app@sha256=aa/signature-1'), 'first')
    const first = await json('publish', ['publish', '--from', stage, '--to', web], [0])
    assert.deepEqual(first.copied, ['apps/app@sha256=aa/signature-1'])
    await writeFile(path.join(stage, 'apps/app@sha256=aa/signature-1'), 'different')
    // A conflict exits 1 with the publish report, not an error object.
    const conflict = await json('publish', ['publish', '--from', stage, '--to', web], [1], true)
    assert.equal((conflict.conflicts as unknown[]).length, 1)
  })

  it('verify --signed of an unsigned image', async () => {
    const report = await json('verify-signed', ['verify', '--signed', unsigned, '--root', root, '-c', config, '--no-tls-verify'], [3, 4])
    assert.equal(report.accepted, false)
  })
})
