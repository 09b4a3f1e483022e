/**
 * imagetrust verify and apply --verify against a real registry and lookaside
 * on 127.0.0.1, with real podman and skopeo pulls reading a --root sandbox.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {cp, copyFile, mkdir, readdir, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, imagetrust, runIsolated} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

interface Report {
  results: Array<{image: string; engine: string; expect: string; outcome: string; reason: string}>
  summary: Record<string, number>
}

describe('verify with real pulls', () => {
  let lab: Lab
  let alpha: GpgKey
  let beta: GpgKey
  const images = {byAlpha: '', byBeta: '', unsigned: ''}

  before(async () => {
    lab = await Lab.started('itv-')
    ;[alpha, beta] = await Promise.all([lab.makeGpgKey('valpha'), lab.makeGpgKey('vbeta')])
    await lab.buildImage('localhost/v:1', 'verify me')
    images.byAlpha = await lab.push('localhost/v:1', 'shop/app:1', alpha)
    images.byBeta = await lab.push('localhost/v:1', 'shop/other:1', beta)
    images.unsigned = await lab.push('localhost/v:1', 'shop/unsigned:1')
    await writeFile(path.join(lab.dir, 'alpha.asc'), alpha.publicArmored)
  })

  after(async () => {
    await lab?.stop()
  })

  /** A root with Debian's policy, and a trust file whose one scope is described by `scope`. */
  async function setup(name: string, scope: string[], test: {signed?: string; unsigned?: string}): Promise<{root: string; config: string}> {
    const root = path.join(lab.dir, name)
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await copyFile(path.resolve(import.meta.dirname, '../fixtures/distro/debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
    const config = path.join(lab.dir, `${name}.yaml`)
    const testLines = Object.entries(test).map(([k, v]) => `      ${k}: ${v}`)
    await writeFile(
      config,
      ['version: 1', 'default: reject', 'keys:', `  alpha: {file: alpha.asc, fingerprint: ${alpha.fingerprint}}`, 'scopes:', `  "${lab.registry}/shop":`, ...scope.map((l) => `    ${l}`), ...(testLines.length ? ['    test:', ...testLines] : []), ''].join('\n'),
    )
    return {root, config}
  }

  async function verify(root: string, config: string, ...extra: string[]): Promise<{code: number; report: Report; stderr: string}> {
    const result = await imagetrust(['verify', '--root', root, '-c', config, '--no-tls-verify', '--json', ...extra])
    return {code: result.code, report: JSON.parse(result.stdout || '{}'), stderr: result.stderr}
  }

  const outcomes = (report: Report) => report.results.map((r) => `${r.engine} ${r.expect} ${r.outcome}`).sort()

  it('confirmed when the setup is correct (podman and skopeo)', async () => {
    const {root, config} = await setup('ok', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {signed: images.byAlpha, unsigned: images.unsigned})
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    const {code, report} = await verify(root, config)
    assert.equal(code, 0, JSON.stringify(report))
    assert.deepEqual(outcomes(report), ['podman accept confirmed', 'podman reject confirmed', 'skopeo accept confirmed', 'skopeo reject confirmed'])
  })

  it('NOT ENFORCED when the scope accepts an image that must be refused', async () => {
    const {root, config} = await setup('accepting', ['policy: accept'], {unsigned: images.unsigned})
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    const {code, report} = await verify(root, config)
    assert.equal(code, 3)
    assert.deepEqual(outcomes(report), ['podman reject NOT ENFORCED', 'skopeo reject NOT ENFORCED'])
  })

  it('broken for an image signed by another key, with that key named', async () => {
    const {root, config} = await setup('wrong-key', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {signed: images.byBeta})
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    const {code, report} = await verify(root, config, '--engine', 'skopeo')
    assert.equal(code, 3)
    assert.equal(report.results[0].outcome, 'broken')
    assert.match(report.results[0].reason, new RegExp(`signed by another key \\(${beta.fingerprint}\\)`))
  })

  it('broken when the lookaside serves no signature, with the URL named', async () => {
    const empty = `${lab.lookasideUrl}/nothing-here`
    const {root, config} = await setup('no-sigs', ['policy: signed', 'keys: [alpha]', `lookaside: ${empty}`], {signed: images.byAlpha})
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    const {code, report} = await verify(root, config)
    assert.equal(code, 3)
    for (const r of report.results) {
      assert.equal(r.outcome, 'broken')
      assert.equal(r.reason, `no signature found at the lookaside ${empty}`)
    }
  })

  it('--image/--expect pairs replace the trust file cases', async () => {
    const {root, config} = await setup('pairs', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {})
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    const {code, report} = await verify(root, config, '--engine', 'podman', '--image', images.byAlpha, '--expect', 'accept', '--image', images.byBeta, '--expect', 'reject')
    assert.equal(code, 0, JSON.stringify(report))
    assert.equal(report.results.length, 2)
    const mismatched = await imagetrust(['verify', '--root', root, '-c', config, '--image', images.byAlpha])
    assert.equal(mismatched.code, 1)
    assert.match(mismatched.stderr, /give one --expect per --image/)
  })

  it('apply --verify refuses to install a config whose test pull fails, leaving the host byte-identical', async () => {
    const {root, config} = await setup('preflight-bad', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {signed: images.byBeta, unsigned: images.unsigned})
    const before = await hashTree(root)
    const result = await imagetrust(['apply', '--verify', '--no-tls-verify', '--root', root, '-c', config])
    assert.equal(result.code, 3, result.stdout + result.stderr)
    assert.match(result.stdout, /broken .*signed by another key/)
    assert.match(result.stdout, /Not installed: enforcement was not confirmed\. Nothing was written\./)
    assert.deepEqual(await hashTree(root), before)
  })

  it('apply --verify installs a config whose test pulls are confirmed, and verifies it again installed', async () => {
    const {root, config} = await setup('preflight-ok', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {signed: images.byAlpha, unsigned: images.unsigned})
    const result = await imagetrust(['apply', '--verify', '--no-tls-verify', '--root', root, '-c', config, '--json'])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    const json = JSON.parse(result.stdout)
    assert.equal(json.installed, true)
    assert.equal(json.preflight.summary.confirmed, 4)
    assert.equal(json.postflight.summary.confirmed, 4)
    assert.equal((await imagetrust(['check', '--root', root, '-c', config])).code, 0)
  })

  it('cleans up: no test image, store or scratch directory is left behind', async () => {
    const scratch = async () => (await readdir('/tmp')).filter((n) => /^it-/.test(n)).sort()
    const storage = async () => hashTree('/var/lib/containers/storage', {exclude: /\.lock$|^storage\.lock|overlay-layers\/layers\.lock|db\.sql/})
    const beforeScratch = await scratch()
    const beforeStorage = await storage()
    const {root, config} = await setup('cleanup', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {signed: images.byAlpha, unsigned: images.unsigned})
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    assert.equal((await verify(root, config)).code, 0)
    assert.deepEqual(await scratch(), beforeScratch)
    assert.deepEqual(await storage(), beforeStorage)
  })

  it('apply --verify rolls back by itself when the installed config is not what pulls use ($HOME policy shadows /etc)', async () => {
    const {root, config} = await setup('shadowed', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {signed: images.byAlpha, unsigned: images.unsigned})
    const shadowHome = path.join(lab.dir, 'shadow-home')
    await mkdir(path.join(shadowHome, '.config/containers'), {recursive: true})
    await writeFile(path.join(shadowHome, '.config/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    const before = await hashTree(path.join(root, 'etc'))
    const cli = path.resolve(import.meta.dirname, '../../bin/run.js')
    const result = await lab.inSandbox(root, [process.execPath, cli, 'apply', '--verify', '--no-tls-verify', '--engine', 'skopeo', '-c', config, '--json'], {
      home: shadowHome,
      varLib: true,
    })
    assert.equal(result.code, 3, result.stdout + result.stderr)
    const json = JSON.parse(result.stdout)
    assert.equal(json.preflight.summary.confirmed, 2, 'the candidate itself enforces')
    assert.equal(json.postflight.summary.notEnforced, 1, 'but pulls read the shadowing $HOME policy')
    assert.equal(json.installed, false)
    assert.ok(json.rolledBack.backup)
    assert.deepEqual(await hashTree(path.join(root, 'etc')), before)
  })

  describe('--native', () => {
    async function native(root: string, image: string) {
      const result = await imagetrust(['verify', '--native', image, '--root', root, '--no-tls-verify', '--json'])
      return {code: result.code, report: JSON.parse(result.stdout), stderr: result.stderr}
    }

    it('finds the valid signature and names its key', async () => {
      const {root, config} = await setup('native-ok', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {})
      assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
      const {code, report} = await native(root, images.byAlpha)
      assert.equal(code, 0, JSON.stringify(report))
      assert.match(report.digest, /^sha256:[0-9a-f]{64}$/)
      assert.deepEqual(report.trustedKeys, [alpha.fingerprint])
      assert.equal(report.signatures.length, 1)
      assert.deepEqual(
        {signer: report.signatures[0].signer, trusted: report.signatures[0].trusted, valid: report.signatures[0].valid, ref: report.signatures[0].dockerReference},
        {signer: alpha.fingerprint, trusted: true, valid: true, ref: images.byAlpha},
      )
    })

    it('identifies a signature made by a key the policy does not name, by fingerprint', async () => {
      const {root, config} = await setup('native-other', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {})
      assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
      const {code, report} = await native(root, images.byBeta)
      assert.equal(code, 3)
      assert.equal(report.signatures[0].signer, beta.fingerprint)
      assert.equal(report.signatures[0].trusted, false)
      assert.match(report.signatures[0].reasons[0], new RegExp(`signed by key ${beta.fingerprint}, which the policy does not name`))
    })

    it('a signature by a signing subkey is not valid on engines before containers/image 5.37 (skopeo agrees)', async () => {
      const sub = await lab.makeGpgKey('vsub', {keyType: 'subkey-signing'})
      const image = await lab.push('localhost/v:1', 'shop/bysub:1', sub)
      const root = path.join(lab.dir, 'native-subkey')
      await mkdir(path.join(root, 'etc/containers'), {recursive: true})
      await copyFile(path.resolve(import.meta.dirname, '../fixtures/distro/debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
      await writeFile(path.join(lab.dir, 'sub.asc'), sub.publicArmored)
      const config = path.join(lab.dir, 'native-subkey.yaml')
      await writeFile(config, ['version: 1', 'keys:', `  sub: {file: sub.asc, fingerprint: ${sub.fingerprint}}`, 'scopes:', `  "${lab.registry}/shop/bysub":`, '    policy: signed', '    keys: [sub]', `    lookaside: ${lab.lookasideUrl}`, ''].join('\n'))
      assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
      assert.match((await lab.pull(root, image, 'skopeo')).stderr, /is not accepted|rejected/)
      const {code, report} = await native(root, image)
      assert.equal(code, 3, JSON.stringify(report))
      assert.equal(report.accepted, false)
      assert.match(report.signatures[0].reasons[0], /made by subkey .* which this host's containers\/image refuses/)
    })

    it('reports an identity mismatch: a signature copied to another repository', async () => {
      const {root, config} = await setup('native-identity', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {})
      assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
      // Serve alpha's signature for shop/app under shop/unsigned too: right key, wrong identity.
      const signed = (await readdir(path.join(lab.stagingDir, 'shop'))).find((n) => n.startsWith('app@'))!
      await cp(path.join(lab.stagingDir, 'shop', signed), path.join(lab.stagingDir, 'shop', signed.replace('app@', 'unsigned@')), {recursive: true})
      try {
        const {code, report} = await native(root, images.unsigned)
        assert.equal(code, 3)
        assert.equal(report.signatures[0].trusted, true)
        assert.match(report.signatures[0].reasons.join(), /identity mismatch: signed for .*shop\/app:1, not .*shop\/unsigned:1/)
      } finally {
        await rm(path.join(lab.stagingDir, 'shop', signed.replace('app@', 'unsigned@')), {recursive: true, force: true})
      }
    })

    /** The registry's manifest for repo:tag, and its digest. */
    async function manifestOf(repoAndTag: string): Promise<{bytes: Buffer; digest: string}> {
      const [repo, tag] = repoAndTag.split(':')
      const accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
      const bytes = Buffer.from(await (await fetch(`http://${lab.registry}/v2/${repo}/manifests/${tag}`, {headers: {accept}})).arrayBuffer())
      return {bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`}
    }

    /** Serves alpha's signature of shop/app:1 (identity <registry>/shop/app:1) for another repository too. */
    async function copyAppSignature(repo: string): Promise<void> {
      const signed = (await readdir(path.join(lab.stagingDir, 'shop'))).find((n) => n.startsWith('app@'))!
      await mkdir(path.dirname(path.join(lab.stagingDir, repo)), {recursive: true})
      await cp(path.join(lab.stagingDir, 'shop', signed), path.join(lab.stagingDir, `${repo}${signed.slice('app'.length)}`), {recursive: true})
    }

    const signedScope = () => ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`]

    it('remapIdentity is evaluated: a mirror is valid with the signature of the repository it maps to, and only that one (skopeo agrees)', async () => {
      const mirrorApp = await lab.push('localhost/v:1', 'shop/mirror/app:1')
      const mirrorOther = await lab.push('localhost/v:1', 'shop/mirror/other:1')
      await copyAppSignature('shop/mirror/app')
      await copyAppSignature('shop/mirror/other')
      const identity = `identity: {type: remapIdentity, prefix: "${lab.registry}/shop/mirror", signedPrefix: "${lab.registry}/shop"}`
      const {root, config} = await setup('native-remap', [...signedScope(), identity], {})
      assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
      const mapped = await native(root, mirrorApp)
      assert.equal(mapped.code, 0, JSON.stringify(mapped.report))
      assert.deepEqual(mapped.report.signatures[0].identity, {verdict: 'match'})
      const other = await native(root, mirrorOther)
      assert.equal(other.code, 3, JSON.stringify(other.report))
      assert.match(other.report.signatures[0].reasons.join(), /identity mismatch: signed for .*shop\/app:1, not .*shop\/other:1/)
      const engine = await verify(root, config, '--engine', 'skopeo', '--image', mirrorApp, '--expect', 'accept', '--image', mirrorOther, '--expect', 'reject')
      assert.equal(engine.code, 0, JSON.stringify(engine.report))
    })

    it('matchExact: a pull by digest is valid with a signature for that digest, a pull by tag is refused (skopeo agrees)', async () => {
      const exact = await lab.push('localhost/v:1', 'shop/exact:1')
      const {bytes, digest} = await manifestOf('shop/exact:1')
      const manifestFile = path.join(lab.dir, 'exact-manifest.json')
      await writeFile(manifestFile, bytes)
      const signatureDir = path.join(lab.stagingDir, `shop/exact@${digest.replace(':', '=')}`)
      await mkdir(signatureDir, {recursive: true})
      // A signature whose identity is the digest reference itself, as skopeo signs one.
      const signing = await runIsolated('skopeo', ['standalone-sign', manifestFile, `${exact.split(':1')[0]}@${digest}`, alpha.fingerprint, '-o', path.join(signatureDir, 'signature-1')], {
        env: {...process.env, GNUPGHOME: alpha.home},
      })
      assert.equal(signing.code, 0, signing.stderr)
      const {root, config} = await setup('native-exact', [...signedScope(), 'identity: matchExact'], {})
      assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
      const byDigest = `${lab.registry}/shop/exact@${digest}`
      const accepted = await native(root, byDigest)
      assert.equal(accepted.code, 0, JSON.stringify(accepted.report))
      assert.deepEqual(accepted.report.signatures[0].identity, {verdict: 'match'})
      const byTag = await native(root, exact)
      assert.equal(byTag.code, 3, JSON.stringify(byTag.report))
      assert.match(byTag.report.signatures[0].reasons.join(), /identity mismatch: signed for .*shop\/exact@sha256:[0-9a-f]{64}, not .*shop\/exact:1/)
      const engine = await verify(root, config, '--engine', 'skopeo', '--image', byDigest, '--expect', 'accept', '--image', exact, '--expect', 'reject')
      assert.equal(engine.code, 0, JSON.stringify(engine.report))
    })

    it('inconclusive, never valid, when the identity cannot be evaluated (a reference with both a tag and a digest)', async () => {
      const {root, config} = await setup('native-undecided', signedScope(), {})
      assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
      const {digest} = await manifestOf('shop/app:1')
      const {code, report} = await native(root, `${images.byAlpha}@${digest}`)
      assert.equal(code, 4, JSON.stringify(report))
      assert.equal(report.signatures[0].valid, false)
      assert.equal(report.signatures[0].inconclusive, true)
      assert.match(report.summary, /^inconclusive: #1 identity not evaluated: .*both a tag and a digest/)
    })

    it('no signature at the lookaside', async () => {
      const {root, config} = await setup('native-none', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {})
      assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
      const {code, report} = await native(root, images.unsigned)
      assert.equal(code, 3)
      assert.match(report.summary, /^no signature found at http:\/\/127\.0\.0\.1:\d+\/shop\/unsigned@sha256=[0-9a-f]{64}\/$/)
    })
  })

  it('inconclusive when the registry is stopped (exit 4)', async () => {
    const {root, config} = await setup('down', ['policy: signed', 'keys: [alpha]', `lookaside: ${lab.lookasideUrl}`], {signed: images.byAlpha, unsigned: images.unsigned})
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    await lab.stopRegistry()
    const {code, report} = await verify(root, config)
    assert.equal(code, 4, JSON.stringify(report))
    for (const r of report.results) {
      assert.equal(r.outcome, 'inconclusive')
      assert.equal(r.reason, 'the registry is unreachable')
    }

    const native = await imagetrust(['verify', '--native', images.byAlpha, '--root', root, '--no-tls-verify'])
    assert.equal(native.code, 4)
    assert.match(native.stdout, /inconclusive: the registry 127\.0\.0\.1:\d+ is unreachable/)
  })
})
