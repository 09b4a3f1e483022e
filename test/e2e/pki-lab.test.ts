/**
 * Sigstore pki for real: a CA root, an intermediate and Fulcio-style signing
 * certificates made with openssl; signatures built in the documented layout
 * (the payload signed by the leaf's key, the leaf in
 * dev.sigstore.cosign/certificate, the chain in dev.sigstore.cosign/chain)
 * and pushed to a loopback registry. After `imagetrust apply --root` with a
 * trust file whose key is `pki:`, the 5.38 and 5.40 oracles (pulling, with
 * --pull), skopeo 1.23 and CRI-O 1.36 accept the CA's leaf for the subject,
 * and refuse a leaf from another CA, a leaf for another email or hostname (a
 * URI subjectAltName is no hostname), and no signature, each for its own
 * reason; verify --native and audit say the same. Debian's engines (5.23)
 * refuse the trust file, naming 5.35; the oldest engine on the host decides.
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, readdir, readFile, symlink, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {CrioLab} from '../support/crio-lab.ts'
import {Lab, imagetrust} from '../support/lab.ts'
import {type OracleVersion, labBin, oracleBin} from '../support/lab-bin.ts'
import {makeIntermediateCa, makeLeaf, makeRootCa, type TestCertificate} from '../support/pki.ts'
import {assertMatchesSchema} from '../support/schema.ts'
import {Store} from '../support/store.ts'
import {pushSigstoreAttachment, registryDigest, signPayload, sigstorePayload} from '../support/sigstore.ts'
import {hashTree} from '../support/tree.ts'

const EMAIL = 'release@example.test'
const HOSTNAME = 'build.example.test'
type Case = 'signed' | 'noChain' | 'otherCa' | 'tooDeep' | 'otherEmail' | 'otherHostname' | 'uriOnly' | 'unsigned'
/** Each case: accepted, or the engine's reason for refusing it. */
const EXPECTED: Record<Case, true | RegExp> = {
  signed: true,
  // The intermediates installed from the trust file complete the chain.
  noChain: true,
  otherCa: /veryfing leaf certificate failed: x509: certificate signed by unknown authority/,
  // The CA's intermediate allows no intermediate below it (pathlen:0): Go's x509.Verify counts them.
  tooDeep: /veryfing leaf certificate failed: x509: too many intermediates for path length constraint/,
  otherEmail: new RegExp(`Required email "${EMAIL}" not found \\(got \\["mallory@example.test"\\]\\)`),
  otherHostname: /Unexpected subject hostname: x509: certificate is valid for elsewhere\.example\.test, not build\.example\.test/,
  // A workload identity as Fulcio writes it (a URI subjectAltName) is no hostname: Go's VerifyHostname reads DNS names only.
  uriOnly: /Unexpected subject hostname: x509: certificate is not valid for any names, but wanted to match build\.example\.test/,
  unsigned: /A signature was required, but no signature exists/,
}
const CASES = Object.keys(EXPECTED) as Case[]

describe('sigstore pki for real (a private CA; the 5.38/5.40 oracles and skopeo 1.23 verify)', {timeout: 600_000}, () => {
  let lab: Lab
  let store: Store | undefined
  let crio: CrioLab | undefined
  let root: string
  let config: string
  let labHost: string
  let mixedHost: string
  const images = {} as Record<Case, string>

  before(async () => {
    lab = await Lab.started('itpk-')
    const pki = path.join(lab.dir, 'pki')
    await mkdir(pki)
    const ca = await makeRootCa(pki, 'corp-root')
    const intermediate = await makeIntermediateCa(pki, 'corp-intermediate', ca)
    const otherCa = await makeRootCa(pki, 'other-root')
    const below = await makeIntermediateCa(pki, 'corp-sub-intermediate', intermediate)
    const leaves: Partial<Record<Case, TestCertificate>> = {
      signed: await makeLeaf(pki, 'leaf', intermediate, {email: EMAIL, hostname: HOSTNAME}),
      otherCa: await makeLeaf(pki, 'leaf-other-ca', otherCa, {email: EMAIL, hostname: HOSTNAME}),
      tooDeep: await makeLeaf(pki, 'leaf-too-deep', below, {email: EMAIL, hostname: HOSTNAME}),
      otherEmail: await makeLeaf(pki, 'leaf-other-email', intermediate, {email: 'mallory@example.test', hostname: HOSTNAME}),
      otherHostname: await makeLeaf(pki, 'leaf-other-hostname', intermediate, {email: EMAIL, hostname: 'elsewhere.example.test'}),
      uriOnly: await makeLeaf(pki, 'leaf-uri', intermediate, {email: EMAIL, uri: `https://${HOSTNAME}/workflows/release`}),
    }
    leaves.noChain = leaves.signed
    for (const name of CASES) {
      await lab.buildImage(`localhost/pki-${name.toLowerCase()}:1`, `pki-lab ${name}`)
      images[name] = await lab.push(`localhost/pki-${name.toLowerCase()}:1`, `pki/${name.toLowerCase()}:1`)
      const leaf = leaves[name]
      if (!leaf) continue
      const chains: Partial<Record<Case, string>> = {otherCa: otherCa.certPem, tooDeep: below.certPem + intermediate.certPem + ca.certPem}
      const chain = name === 'noChain' ? undefined : (chains[name] ?? intermediate.certPem + ca.certPem)
      await attach(images[name], leaf, chain)
    }

    root = path.join(lab.dir, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await copyFile(path.resolve(import.meta.dirname, '../fixtures/distro/debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
    config = path.join(lab.dir, 'trust.yaml')
    const key = ['  corp:', '    pki:', '      caRootsFile: pki/corp-root.crt', '      caIntermediatesFile: pki/corp-intermediate.crt', `      subjectEmail: ${EMAIL}`, `      subjectHostname: ${HOSTNAME}`]
    await writeFile(config, ['version: 1', 'default: reject', 'keys:', ...key, 'scopes:', `  "${lab.registry}/pki":`, '    policy: signed', '    keys: [corp]', ''].join('\n'))
    labHost = await hostBin('lab-bin', ['skopeo', 'crio', 'crictl'])
    mixedHost = await hostBin('mixed-bin', ['skopeo'], ['podman'])
  })

  after(async () => {
    await crio?.down()
    await store?.cleanup()
    await lab?.stop()
  })

  /** A signature by the leaf's key over the payload for this image, with the leaf and its chain as cosign attaches them. */
  async function attach(image: string, leaf: TestCertificate, chain: string | undefined): Promise<void> {
    const repoAndTag = image.slice(lab.registry.length + 1)
    const digest = await registryDigest(lab.registry, repoAndTag)
    const payload = sigstorePayload(image.split(':').slice(0, -1).join(':'), digest)
    const annotations = {'dev.sigstore.cosign/certificate': leaf.certPem, ...(chain ? {'dev.sigstore.cosign/chain': chain} : {})}
    await pushSigstoreAttachment(lab.dir, lab.registry, repoAndTag.split(':')[0], digest, [{payload, signature: signPayload({privateKey: leaf.privateKey, publicPem: ''}, payload), annotations}])
  }

  /** A PATH whose container engines are the lab's `lab` tools, plus Debian's `debian` ones; the rest of the system's are left out. */
  async function hostBin(name: string, lab_: string[], debian: string[] = []): Promise<string> {
    const bin = path.join(lab.dir, name)
    await mkdir(bin)
    const engines = new Set(['podman', 'skopeo', 'buildah', 'crio', 'crictl'])
    for (const dir of ['/usr/local/bin', '/usr/bin', '/usr/sbin']) {
      for (const file of await readdir(dir)) {
        if (!engines.has(file) || debian.includes(file)) await symlink(path.join(dir, file), path.join(bin, file)).catch(() => undefined)
      }
    }

    for (const tool of lab_) await symlink(await labBin(tool), path.join(bin, tool))
    return bin
  }

  const on = (bin: string) => ({...process.env, PATH: bin})

  /** The verdict of one engine run: true, or its refusal. */
  function verdict(accepted: boolean, why: string | undefined): true | string {
    return accepted ? true : (why ?? 'refused without a reason')
  }

  function assertVerdicts(who: string, verdicts: Record<Case, true | string>): void {
    for (const name of CASES) {
      const expected = EXPECTED[name]
      if (expected === true) assert.equal(verdicts[name], true, `${who} ${name}: ${String(verdicts[name])}`)
      else assert.match(String(verdicts[name]), expected, `${who} ${name}`)
    }
  }

  it("with Debian's engines (containers/image 5.23) the trust file is refused, naming the version needed and the scope's line; nothing is written", async () => {
    // The sigstore probe's cache (var/lib/imagetrust) is no host configuration.
    const before = await hashTree(path.join(root, 'etc'))
    const result = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, new RegExp(`${config.replaceAll(/[.+]/g, '\\$&')}:11: scope "${lab.registry}/pki" trusts key "corp" \\(pki: certificates from a CA\\), but containers/image (5\\.23 \\(podman 4\\.3\\.1\\)|5\\.22 \\(skopeo 1\\.9\\.3\\)) does not know sigstoreSigned pki \\(pki needs 5\\.35\\)`))
    assert.deepEqual(await hashTree(path.join(root, 'etc')), before)
  })

  it("the oldest engine decides: the lab's skopeo 1.23 beside Debian's podman 4.3.1 is still refused, naming podman", async () => {
    const result = await imagetrust(['apply', '--root', root, '-c', config], on(mixedHost))
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, /containers\/image 5\.23 \(podman 4\.3\.1\) does not know sigstoreSigned pki \(pki needs 5\.35\)/)
  })

  it('a signing certificate given as the CA root is refused before anything is written, naming the trust file, the line and the certificate file', async () => {
    const bad = path.join(lab.dir, 'trust-leaf-as-root.yaml')
    await writeFile(bad, (await readFile(config, 'utf8')).replace('caRootsFile: pki/corp-root.crt', 'caRootsFile: pki/leaf.crt'))
    const before = await hashTree(path.join(root, 'etc'))
    const result = await imagetrust(['apply', '--root', root, '-c', bad], on(labHost))
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, new RegExp(`${bad.replaceAll(/[.+]/g, '\\$&')}:6: key "corp": ${path.join(lab.dir, 'pki/leaf.crt').replaceAll(/[.+]/g, '\\$&')}: certificate 1 \\(O=imagetrust test, CN=leaf\\) is not a CA certificate`))
    assert.deepEqual(await hashTree(path.join(root, 'etc')), before)
  })

  it('on the lab engines (CRI-O 1.36 is the oldest: 5.38) apply installs the CA files and writes one pki requirement; a second apply changes nothing', async () => {
    const applied = await imagetrust(['apply', '--root', root, '-c', config, '--json'], on(labHost))
    assert.equal(applied.code, 0, applied.stderr)
    const policy = JSON.parse(await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8'))
    assert.deepEqual(policy.transports.docker[`${lab.registry}/pki`], [
      {
        type: 'sigstoreSigned',
        pki: {caRootsPath: '/etc/pki/containers/corp.roots.pem', caIntermediatesPath: '/etc/pki/containers/corp.intermediates.pem', subjectEmail: EMAIL, subjectHostname: HOSTNAME},
        signedIdentity: {type: 'matchRepository'},
      },
    ])
    assert.match(await readFile(path.join(root, 'etc/pki/containers/corp.roots.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/)
    assert.match(await readFile(path.join(root, 'etc/pki/containers/corp.intermediates.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----/)
    const state = JSON.parse(await readFile(path.join(root, 'var/lib/imagetrust/state.json'), 'utf8'))
    for (const file of ['/etc/pki/containers/corp.roots.pem', '/etc/pki/containers/corp.intermediates.pem']) {
      assert.ok(state.keyFiles.includes(file), `state.json keyFiles: ${JSON.stringify(state.keyFiles)}`)
      assert.match(state.files[file], /^[0-9a-f]{64}$|sha256/, `state.json files: ${JSON.stringify(state.files)}`)
    }

    const again = await imagetrust(['apply', '--root', root, '-c', config, '--json'], on(labHost))
    assert.equal(again.code, 0, again.stderr)
    assert.equal(JSON.parse(again.stdout).changed, false, again.stdout)
    const check = await imagetrust(['check', '--root', root, '-c', config, '--json'], on(labHost))
    assert.equal(check.code, 0, check.stdout)
  })

  it('apply --verify on a fresh host: skopeo 1.23 test-pulls against the candidate (CA files in the sandbox) and confirms before installing', async () => {
    const fresh = path.join(lab.dir, 'fresh-root')
    await mkdir(path.join(fresh, 'etc/containers'), {recursive: true})
    await copyFile(path.resolve(import.meta.dirname, '../fixtures/distro/debian12-policy.json'), path.join(fresh, 'etc/containers/policy.json'))
    const withTests = path.join(lab.dir, 'trust-with-tests.yaml')
    await writeFile(withTests, `${await readFile(config, 'utf8')}    test: {signed: "${images.signed}", unsigned: "${images.otherCa}"}\n`)
    const result = await imagetrust(['apply', '--verify', '--root', fresh, '-c', withTests, '--engine', 'skopeo', '--no-tls-verify', '--json'], on(labHost))
    assert.equal(result.code, 0, `${result.stdout}${result.stderr}`)
    const report = JSON.parse(result.stdout)
    assertMatchesSchema('apply-verify', report)
    assert.equal(report.installed, true, result.stdout)
    assert.match(await readFile(path.join(fresh, 'etc/pki/containers/corp.intermediates.pem'), 'utf8'), /BEGIN CERTIFICATE/)
  })

  for (const version of ['5.38', '5.40'] as OracleVersion[]) {
    it(`the ${version} oracle pulls the CA's leaf for the subject and refuses another CA, a chain longer than a path length allows, another email, another hostname, a URI in place of the hostname, and no signature`, async () => {
      const verdicts = {} as Record<Case, true | string>
      for (const name of CASES) {
        const result = await lab.inSandbox(root, [await oracleBin(version), '--pull', path.join(lab.dir, `pulled-${version}-${name}`), `docker://${images[name]}`])
        const answer = JSON.parse(result.stdout) as {allowed?: boolean; reason?: string; policyError?: string; pulled?: boolean; pullError?: string}
        assert.equal(answer.policyError, undefined, `${version} ${name}: ${result.stdout}`)
        assert.equal(answer.allowed, answer.pulled, `${version} ${name}: the policy check and the pull disagree: ${result.stdout}`)
        verdicts[name] = verdict(answer.pulled === true, answer.pullError)
      }

      assertVerdicts(version, verdicts)
    })
  }

  it('skopeo 1.23 (containers/image 5.40) copies under the same policy exactly as the oracles judge', async () => {
    const skopeo = await labBin('skopeo')
    const verdicts = {} as Record<Case, true | string>
    for (const name of CASES) {
      const result = await lab.inSandbox(root, [skopeo, 'copy', '--quiet', '--src-tls-verify=false', `docker://${images[name]}`, `dir:${path.join(lab.dir, `skopeo-${name}`)}`])
      // skopeo logs the reason as a quoted Go string.
      verdicts[name] = verdict(result.code === 0, result.stderr.replaceAll('\\"', '"'))
    }

    assertVerdicts('skopeo 1.23', verdicts)
  })

  it('CRI-O 1.36 (containers/image 5.38) pulls exactly as the oracles judge', async () => {
    crio = await CrioLab.up(path.join(lab.dir, 'crio'), root, {registry: lab.registry, pauseImage: `${lab.registry}/none:0`})
    const verdicts = {} as Record<Case, true | string>
    for (const name of CASES) {
      const result = await crio.pull(images[name])
      verdicts[name] = verdict(result.code === 0, result.stderr.replaceAll('\\"', '"'))
    }

    await crio.down()
    crio = undefined
    assertVerdicts('CRI-O 1.36', verdicts)
  })

  it('status and explain show the CA files, their certificates and the subject (--json matches the schemas)', async () => {
    const explain = await imagetrust(['explain', images.signed, '--root', root, '--json'], on(labHost))
    assert.equal(explain.code, 0, explain.stderr)
    const explained = JSON.parse(explain.stdout)
    assertMatchesSchema('explain', explained)
    assert.deepEqual(explained.policy.keys.map((k: {role: string; userIds: string[]}) => [k.role, k.userIds.map((u) => u.replace(/^.*CN=/, ''))]), [
      ['ca-roots', ['corp-root']],
      ['ca-intermediates', ['corp-intermediate']],
    ])
    const human = await imagetrust(['explain', images.signed, '--root', root], on(labHost))
    assert.match(human.stdout, /CA roots \/etc\/pki\/containers\/corp\.roots\.pem: [0-9A-F]{64} O=imagetrust test, CN=corp-root/)

    const status = await imagetrust(['status', '--root', root, '-c', config, '--json'], on(labHost))
    assert.equal(status.code, 0, status.stderr)
    const report = JSON.parse(status.stdout)
    assertMatchesSchema('status', report)
    const scope = report.targets[0].scopes.find((s: {scope: string}) => s.scope === `${lab.registry}/pki`)
    assert.equal(scope.owner, 'imagetrust')
    assert.deepEqual(scope.keys.map((k: {role: string; installed: boolean; fingerprints: string[]}) => [k.role, k.installed, k.fingerprints.length]), [
      ['ca-roots', true, 1],
      ['ca-intermediates', true, 1],
    ])
    const text = await imagetrust(['status', '--root', root, '-c', config], on(labHost))
    assert.match(text.stdout, new RegExp(`sigstore signature with a certificate issued under CA /etc/pki/containers/corp.roots.pem \\(intermediates /etc/pki/containers/corp.intermediates.pem\\) for email ${EMAIL} and hostname ${HOSTNAME}, identity matchRepository`))
    const keys = await imagetrust(['key', 'list', '--root', root, '-c', config, '--json'], on(labHost))
    assert.equal(keys.code, 0, keys.stderr)
    const listed = JSON.parse(keys.stdout)
    assertMatchesSchema('key-list', listed)
    assert.deepEqual(listed.keys.map((k: {name: string; type: string; status: string; keys: Array<{userIds: string[]}>}) => [k.name, k.type, k.status, k.keys.length]), [['corp', 'sigstore', 'valid', 2]])
    assert.match(text.stdout, /CA intermediates \/etc\/pki\/containers\/corp\.intermediates\.pem: [0-9A-F]{64} O=imagetrust test, CN=corp-intermediate \(expires /)
  })

  it('verify --native checks pki itself and agrees with the engines on every case, in their words', async () => {
    const verdicts = {} as Record<Case, true | string>
    for (const name of CASES) {
      const result = await imagetrust(['verify', '--native', images[name], '--root', root, '-c', config, '--no-tls-verify', '--json'], on(labHost))
      assert.ok(result.code === 0 || result.code === 3, `${name}: exit ${result.code} ${result.stdout}${result.stderr}`)
      // No signature at all is said in imagetrust's words, not the engine's.
      verdicts[name] = verdict(result.code === 0, name === 'unsigned' ? 'A signature was required, but no signature exists' : result.stdout.replaceAll('\\"', '"'))
    }

    assertVerdicts('verify --native', verdicts)
  })

  it('audit judges the local images as the engines do', async () => {
    store = await Store.create()
    const acceptAll = path.join(lab.dir, 'accept.json')
    await writeFile(acceptAll, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    for (const name of CASES) await store.podman(['pull', '--quiet', '--tls-verify=false', '--signature-policy', acceptAll, images[name]])
    const result = await imagetrust(['audit', '--root', root, '-c', config, '--no-tls-verify', '--json', ...store.flags])
    const report = JSON.parse(result.stdout) as {images: Array<{reference: string; outcome: string; reason: string}>}
    assertMatchesSchema('audit', report)
    const verdicts = {} as Record<Case, true | string>
    for (const name of CASES) {
      const entry = report.images.find((i) => i.reference === images[name])
      assert.ok(entry && entry.outcome !== 'unknown', `${name}: ${JSON.stringify(entry)}`)
      verdicts[name] = verdict(entry.outcome === 'accepted', name === 'unsigned' ? 'A signature was required, but no signature exists' : entry.reason)
    }

    assertVerdicts('audit', verdicts)
  })

  it('check reports a CA file changed on the host as drift, and apply puts it back', async () => {
    const file = path.join(root, 'etc/pki/containers/corp.intermediates.pem')
    const original = await readFile(file, 'utf8')
    await writeFile(file, (await readFile(path.join(lab.dir, 'pki/other-root.crt'), 'utf8')))
    const check = await imagetrust(['check', '--root', root, '-c', config, '--json'], on(labHost))
    assert.equal(check.code, 2, check.stdout)
    const drift = JSON.parse(check.stdout).drift as Array<{path: string; reasons: string[]}>
    assert.deepEqual(drift.filter((d) => d.path.endsWith('corp.intermediates.pem')).map((d) => d.reasons), [['changed key']])
    const applied = await imagetrust(['apply', '--root', root, '-c', config], on(labHost))
    assert.equal(applied.code, 0, applied.stderr)
    assert.equal(await readFile(file, 'utf8'), original)
  })
})
