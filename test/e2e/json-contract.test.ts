/**
 * The --json output of every command is a contract (docs/json-output.md):
 * each command runs for real against sandboxes, on success and failure paths,
 * and its output must validate against its schema under schema/ (strict:
 * additionalProperties false wherever the shape is ours).
 */
import assert from 'node:assert/strict'
import {readFileSync, readdirSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Ajv2020} from 'ajv/dist/2020.js'

import {type GpgKey, Lab, REPO_ROOT, imagetrust} from '../support/lab.ts'

const ajv = new Ajv2020({allErrors: true, strict: true})
const validators = Object.fromEntries(
  readdirSync(path.join(REPO_ROOT, 'schema'))
    .filter((f) => f.endsWith('.schema.json') && f !== 'trust.schema.json')
    .map((f) => [f.replace('.schema.json', ''), ajv.compile(JSON.parse(readFileSync(path.join(REPO_ROOT, 'schema', f), 'utf8')))]),
)

const COMMAND_SCHEMAS = ['apply', 'apply-verify', 'plan', 'check', 'detect', 'verify', 'verify-native', 'explain', 'rollback', 'key-list', 'key-add', 'key-remove']

describe('--json output validates against schema/ for every command', () => {
  let lab: Lab
  let alpha: GpgKey
  let beta: GpgKey
  let signed: string
  let unsigned: string
  let root: string
  let config: string
  const seen = new Set<string>()

  before(async () => {
    lab = await Lab.started('imagetrust-contract-')
    ;[alpha, beta] = await Promise.all([lab.makeGpgKey('calpha'), lab.makeGpgKey('cbeta')])
    await lab.buildImage('localhost/contract:1', 'contract')
    signed = await lab.push('localhost/contract:1', 'shop/app:1', alpha)
    unsigned = await lab.push('localhost/contract:1', 'shop/unsigned:1')
    await writeFile(path.join(lab.dir, 'alpha.asc'), alpha.publicArmored)
    await writeFile(path.join(lab.dir, 'beta.asc'), beta.publicArmored)
    root = path.join(lab.dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    config = path.join(lab.dir, 'trust.yaml')
    await writeFile(
      config,
      [
        'version: 1',
        'default: reject',
        'keys:',
        `  alpha: {file: alpha.asc, fingerprint: ${alpha.fingerprint}}`,
        'scopes:',
        `  "${lab.registry}/shop":`,
        '    policy: signed',
        '    keys: [alpha]',
        `    lookaside: ${lab.lookasideUrl}`,
        '    test:',
        `      signed: ${signed}`,
        `      unsigned: ${unsigned}`,
        '',
      ].join('\n'),
    )
  })

  after(async () => {
    await lab?.stop()
  })

  /** Runs the CLI with --json; the output must validate against the schema (or the error schema on failure). */
  async function json(schema: string, args: string[], code: number): Promise<Record<string, unknown>> {
    const result = await imagetrust([...args, '--json'])
    const shown = `imagetrust ${args.join(' ')}: exit ${result.code}\nstdout: ${result.stdout.slice(0, 1500)}\nstderr: ${result.stderr.slice(0, 800)}`
    assert.equal(result.code, code, shown)
    const output = JSON.parse(result.stdout) as Record<string, unknown>
    const validate = validators[code === 1 || code === 64 ? 'error' : schema]
    assert.ok(validate(output), `${shown}\nschema ${schema}: ${ajv.errorsText(validate.errors)}`)
    seen.add(schema)
    return output
  }

  const at = (): string[] => ['--root', root, '-c', config]
  const engine = ['--engine', 'skopeo', '--no-tls-verify']

  it('every command has a schema, and each schema compiles in strict mode', () => {
    for (const name of [...COMMAND_SCHEMAS, 'error']) assert.ok(validators[name], `schema/${name}.schema.json missing`)
  })

  it('apply, plan, check, rollback: success, drift and failure paths', async () => {
    await json('plan', ['plan', ...at(), '--detailed-exitcode'], 2)
    await json('apply', ['apply', ...at(), '--dry-run', '--diff'], 0)
    const applied = await json('apply', ['apply', ...at()], 0)
    assert.equal(applied.changed, true)
    await json('plan', ['plan', ...at(), '--detailed-exitcode'], 0)
    await json('check', ['check', ...at()], 0)
    await json('check', ['check', ...at()], 0) // the fast path
    const policyFile = path.join(root, 'etc/containers/policy.json')
    const policy = JSON.parse(await readFile(policyFile, 'utf8'))
    policy.transports.docker[`${lab.registry}/shop`] = [{type: 'insecureAcceptAnything'}]
    await writeFile(policyFile, JSON.stringify(policy, null, 4))
    const drift = await json('check', ['check', ...at()], 2)
    assert.equal((drift.drift as Array<{changes: Array<{what: string}>}>)[0].changes[0].what, 'scope')
    await json('apply', ['apply', ...at()], 0)
    const rolled = await json('rollback', ['rollback', '--root', root, '-c', config], 0)
    assert.ok((rolled.stillWanted as string[]).includes(policyFile), JSON.stringify(rolled))
    assert.match(rolled.settle as string, /next check reports drift/)
    await json('apply', ['apply', ...at()], 0)
    await json('error', ['apply', '--root', root, '-c', path.join(lab.dir, 'missing.yaml')], 1)
    await json('error', ['rollback', '--root', path.join(lab.dir, 'empty-root')], 1)
    await json('error', ['plan', '--no-such-flag'], 64)
  })

  it('detect and explain', async () => {
    await json('detect', ['detect'], 0)
    await json('explain', ['explain', ...at(), `${lab.registry}/shop/app:1`], 0)
    await json('explain', ['explain', ...at(), 'docker.io/library/busybox'], 0)
    await json('error', ['explain', ...at(), 'Not/A/Reference'], 1)
  })

  it('key add, key list, key remove', async () => {
    const keyConfig = path.join(lab.dir, 'keys-trust.yaml')
    await writeFile(keyConfig, (await readFile(config, 'utf8')).replace(`${lab.registry}/shop`, `${lab.registry}/keys`))
    await json('key-add', ['key', 'add', 'beta', path.join(lab.dir, 'beta.asc'), '--fingerprint', beta.fingerprint, '-c', keyConfig, '--root', root], 0)
    const listed = await json('key-list', ['key', 'list', '-c', keyConfig, '--root', root], 0)
    assert.deepEqual((listed.keys as Array<{name: string}>).map((k) => k.name).sort(), ['alpha', 'beta'])
    await json('key-remove', ['key', 'remove', 'beta', '-c', keyConfig, '--root', root], 0)
    await json('error', ['key', 'remove', 'ghost', '-c', keyConfig, '--root', root], 1)
    await json('error', ['key', 'add', 'bad', path.join(lab.dir, 'missing.asc'), '-c', keyConfig, '--root', root], 1)
  })

  it('verify, verify --native and apply --verify: confirmed and refused', async () => {
    await json('verify', ['verify', ...at(), ...engine], 0)
    const native = await json('verify-native', ['verify', ...at(), '--native', signed, '--no-tls-verify'], 0)
    assert.equal(native.accepted, true)
    await json('verify-native', ['verify', ...at(), '--native', unsigned, '--no-tls-verify'], 3)
    const verified = await json('apply-verify', ['apply', '--verify', ...at(), ...engine], 0)
    assert.equal(verified.changed, false)
    // The wrong key: the preflight refuses, nothing is installed.
    const wrong = path.join(lab.dir, 'wrong.yaml')
    await writeFile(wrong, (await readFile(config, 'utf8')).replace(`alpha: {file: alpha.asc, fingerprint: ${alpha.fingerprint}}`, `alpha: {file: beta.asc, fingerprint: ${beta.fingerprint}}`))
    const refused = await json('apply-verify', ['apply', '--verify', '--root', root, '-c', wrong, ...engine], 3)
    assert.equal(refused.installed, false)
    assert.equal(refused.changed, false)
    await json('verify', ['verify', ...at(), ...engine, '--image', signed, '--expect', 'reject'], 3)
  })

  it('covered every command schema', () => {
    assert.deepEqual(COMMAND_SCHEMAS.filter((s) => !seen.has(s)), [])
  })
})
