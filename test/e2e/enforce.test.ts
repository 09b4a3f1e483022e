/**
 * End to end: a real registry, real GPG keys, images pushed with real
 * `podman push --sign-by`, signatures served over HTTP, imagetrust applied to
 * a sandbox root, and pulls by real skopeo and podman reading that root.
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, imagetrust} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/distro')

describe('enforcement with real podman and skopeo', () => {
  let lab: Lab
  let alpha: GpgKey
  let beta: GpgKey
  const images = {byAlpha: '', byBeta: '', unsigned: ''}

  before(async () => {
    lab = await Lab.started()
    ;[alpha, beta] = await Promise.all([lab.makeGpgKey('alpha'), lab.makeGpgKey('beta', {keyType: 'rsa'})])
    await lab.buildImage('localhost/tiny:1', 'tiny one')
    images.byAlpha = await lab.push('localhost/tiny:1', 'apps/alpha:1', alpha)
    images.byBeta = await lab.push('localhost/tiny:1', 'apps/beta:1', beta)
    images.unsigned = await lab.push('localhost/tiny:1', 'apps/unsigned:1')
    await writeFile(path.join(lab.dir, 'alpha.asc'), alpha.publicArmored)
    await writeFile(path.join(lab.dir, 'beta.asc'), beta.publicArmored)
  })

  after(async () => {
    await lab?.stop()
  })

  /** A sandbox host root with Debian's shipped policy.json. */
  async function newRoot(name: string): Promise<string> {
    const root = path.join(lab.dir, name)
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await copyFile(path.join(FIXTURES, 'debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
    return root
  }

  async function trustFile(name: string, keys: string[], extra = ''): Promise<string> {
    const file = path.join(lab.dir, `${name}.yaml`)
    await writeFile(
      file,
      [
        'version: 1',
        'default: reject',
        'keys:',
        `  alpha: {type: gpg, file: alpha.asc, fingerprint: ${alpha.fingerprint}}`,
        `  beta: {type: gpg, file: beta.asc, fingerprint: ${beta.fingerprint}}`,
        'scopes:',
        `  "${lab.registry}/apps":`,
        '    policy: signed',
        `    keys: [${keys.join(', ')}]`,
        `    lookaside: ${lab.lookasideUrl}`,
        extra,
      ].join('\n'),
    )
    return file
  }

  for (const engine of ['skopeo', 'podman'] as const) {
    it(`${engine}: accepts the image signed by the trusted key, rejects unsigned and other-key images`, async () => {
      const root = await newRoot(`root-one-key-${engine}`)
      const config = await trustFile(`one-key-${engine}`, ['alpha'])
      const applied = await imagetrust(['apply', '--root', root, '-c', config])
      assert.equal(applied.code, 0, applied.stderr)

      const good = await lab.pull(root, images.byAlpha, engine)
      assert.equal(good.code, 0, `signed image refused: ${good.stderr}`)
      const unsigned = await lab.pull(root, images.unsigned, engine)
      assert.notEqual(unsigned.code, 0)
      assert.match(unsigned.stderr, /A signature was required, but no signature exists/)
      const otherKey = await lab.pull(root, images.byBeta, engine)
      assert.notEqual(otherKey.code, 0, 'an image signed by an untrusted key was accepted')
      assert.match(otherKey.stderr, /Source image rejected/)
    })
  }

  it('a scope with two keys accepts images signed by either (one requirement, not two)', async () => {
    const root = await newRoot('root-two-keys')
    const config = await trustFile('two-keys', ['alpha', 'beta'])
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    const policy = JSON.parse(await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8'))
    assert.equal(policy.transports.docker[`${lab.registry}/apps`].length, 1)
    for (const image of [images.byAlpha, images.byBeta]) {
      const pulled = await lab.pull(root, image, 'skopeo')
      assert.equal(pulled.code, 0, `${image}: ${pulled.stderr}`)
    }

    assert.notEqual((await lab.pull(root, images.unsigned, 'skopeo')).code, 0)
  })

  it('a second apply changes no byte and reports changed: false', async () => {
    const root = await newRoot('root-idempotent')
    const config = await trustFile('idempotent', ['alpha'])
    const first = JSON.parse((await imagetrust(['apply', '--root', root, '-c', config, '--json'])).stdout)
    assert.equal(first.changed, true)
    const snapshot = await hashTree(root)
    const second = await imagetrust(['apply', '--root', root, '-c', config, '--json'])
    assert.equal(second.code, 0)
    // beta is defined but no scope uses it: apply says so (and only that).
    assert.deepEqual(JSON.parse(second.stdout), {changed: false, files: [], notes: [], warnings: [`key "beta" is used by no scope, so it is installed and enforces nothing: list it under a scope's keys: in the trust file (next time, \`imagetrust key add NAME SOURCE --scope SCOPE\` does both at once)`], dryRun: false, backup: null})
    assert.deepEqual(await hashTree(root), snapshot)
  })

  it('check reports drift after a hand edit, with exit code 2, and apply repairs it', async () => {
    const root = await newRoot('root-drift')
    const config = await trustFile('drift', ['alpha'])
    await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal((await imagetrust(['check', '--root', root, '-c', config])).code, 0)
    const policyPath = path.join(root, 'etc/containers/policy.json')
    const policy = JSON.parse(await readFile(policyPath, 'utf8'))
    policy.transports.docker[`${lab.registry}/apps`] = [{type: 'insecureAcceptAnything'}]
    await writeFile(policyPath, JSON.stringify(policy, null, 4))
    // The hand edit really opened the door...
    assert.equal((await lab.pull(root, images.unsigned, 'skopeo')).code, 0)
    const check = await imagetrust(['check', '--root', root, '-c', config, '--json'])
    assert.equal(check.code, 2)
    const report = JSON.parse(check.stdout)
    assert.equal(report.inSync, false)
    assert.deepEqual(report.drift.map((d: {path: string; reasons: string[]}) => [d.path, d.reasons]), [[policyPath, ['content']]])
    // ...and apply closes it again.
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    assert.notEqual((await lab.pull(root, images.unsigned, 'skopeo')).code, 0)
    assert.equal((await imagetrust(['check', '--root', root, '-c', config])).code, 0)
  })

  it('rollback restores the files of the last apply', async () => {
    const root = await newRoot('root-rollback')
    const before = await hashTree(root)
    const config = await trustFile('rollback', ['alpha'])
    await imagetrust(['apply', '--root', root, '-c', config])
    assert.notEqual((await lab.pull(root, images.unsigned, 'skopeo')).code, 0)
    const rolled = await imagetrust(['rollback', '--root', root, '--json'])
    assert.equal(rolled.code, 0, rolled.stderr)
    const after = await hashTree(root, {exclude: /^var\/lib\/imagetrust/})
    assert.deepEqual(after, before)
    // Debian's accept-anything policy is back in force.
    assert.equal((await lab.pull(root, images.unsigned, 'skopeo')).code, 0)
  })

  it('foreign policy scopes and registries.d comments survive, and still work', async () => {
    const root = await newRoot('root-foreign')
    const policyPath = path.join(root, 'etc/containers/policy.json')
    // The owner already rejects one repository and has a registries.d file of their own.
    await writeFile(
      policyPath,
      JSON.stringify({default: [{type: 'insecureAcceptAnything'}], transports: {docker: {[`${lab.registry}/legacy`]: [{type: 'reject'}]}}}, null, 2),
    )
    const theirs = path.join(root, 'etc/containers/registries.d/theirs.yaml')
    await mkdir(path.dirname(theirs), {recursive: true})
    const theirsText = `# Owned by the platform team: keep\ndocker:\n  "${lab.registry}/legacy":\n    lookaside: http://127.0.0.1:9/never-read # unused\n`
    await writeFile(theirs, theirsText)
    const legacy = await lab.push('localhost/tiny:1', 'legacy/app:1', alpha)
    const config = await trustFile('foreign', ['alpha'], '')
    const applied = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(applied.code, 0, applied.stderr)
    const policy = JSON.parse(await readFile(policyPath, 'utf8'))
    assert.deepEqual(policy.transports.docker[`${lab.registry}/legacy`], [{type: 'reject'}])
    assert.equal(await readFile(theirs, 'utf8'), theirsText)
    // Their rule still rejects; ours still enforces signatures.
    assert.match((await lab.pull(root, legacy, 'skopeo')).stderr, /rejected by policy/)
    assert.equal((await lab.pull(root, images.byAlpha, 'skopeo')).code, 0)
    assert.notEqual((await lab.pull(root, images.unsigned, 'skopeo')).code, 0)
  })

  it('refuses a corrupt policy.json with file and position, exit 1, and writes nothing', async () => {
    const root = await newRoot('root-corrupt')
    const policyPath = path.join(root, 'etc/containers/policy.json')
    await writeFile(policyPath, '{\n    "default": [{"type": "insecureAcceptAnything"}],\n    "default": [{"type": "reject"}]\n}\n')
    const before = await hashTree(root)
    const config = await trustFile('corrupt', ['alpha'])
    const applied = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(applied.code, 1)
    assert.match(applied.stderr, new RegExp(`${policyPath}:3:5.*Duplicate key "default"`))
    const json = await imagetrust(['apply', '--root', root, '-c', config, '--json'])
    assert.equal(json.code, 1)
    assert.equal(JSON.parse(json.stdout).error.location.line, 3)
    assert.equal((await imagetrust(['check', '--root', root, '-c', config])).code, 1)
    assert.deepEqual(await hashTree(root), before)
  })
})
