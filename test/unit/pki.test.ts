/**
 * The trust file's `pki:` key source (sigstoreSigned pki, containers/image
 * 5.35+): validation with YAML lines, the schema agreeing, certificate checks
 * on load, and the requirement it becomes (refused on older engines).
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {X509Certificate} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Ajv2020} from 'ajv/dist/2020.js'
import {parse} from 'yaml'

import {capabilitiesFor} from '../../src/host/capabilities.ts'
import {loadKeys} from '../../src/keys/load.ts'
import {checkCaCertificates, installedKeyFiles} from '../../src/keys/pki.ts'
import {cachedKeys, keyDrift} from '../../src/plan/drift.ts'
import {buildScopeRequirements} from '../../src/plan/merge-policy.ts'
import {parsePolicy} from '../../src/policy/parse.ts'
import {pkiSigner} from '../../src/sigstore/pki.ts'
import {serializePolicy} from '../../src/policy/serialize.ts'
import {TrustFileError, validateTrustFile} from '../../src/trustfile/validate.ts'
import {loadYamlSource} from '../../src/trustfile/yaml-source.ts'
import {makeIntermediateCa, makeLeaf, makeRootCa, type TestCertificate} from '../support/pki.ts'

const REPO = path.resolve(import.meta.dirname, '../..')
const validateSchema = new Ajv2020({allErrors: true, strict: false}).compile(JSON.parse(readFileSync(path.join(REPO, 'schema/trust.schema.json'), 'utf8')))
const validate = async (text: string, file = '/t/trust.yaml') => validateTrustFile(await loadYamlSource(text, file))

const HEAD = 'version: 1\nkeys:\n  corp:\n    pki:\n'
const SCOPE = 'scopes:\n  "r.example.com/team":\n    policy: signed\n    keys: [corp]\n'
const CASES: Array<[name: string, text: string, error: null | [RegExp, number]]> = [
  ['roots file and email', `${HEAD}      caRootsFile: ca.pem\n      subjectEmail: release@example.com\n${SCOPE}`, null],
  ['inline roots, intermediates, hostname, explicit type', `version: 1\nkeys:\n  corp:\n    type: sigstore\n    pki:\n      caRootsData: "-----BEGIN CERTIFICATE-----"\n      caIntermediatesFile: int.pem\n      subjectHostname: build.example.com\n`, null],
  ['no subject', `${HEAD}      caRootsFile: ca.pem\n`, [/pki needs subjectEmail and\/or subjectHostname/, 4]],
  ['no roots', `${HEAD}      subjectEmail: a@example.com\n`, [/pki needs the CA roots/, 4]],
  ['roots twice', `${HEAD}      caRootsFile: ca.pem\n      caRootsData: x\n      subjectEmail: a@example.com\n`, [/caRootsFile and caRootsData cannot be used together/, 6]],
  ['intermediates twice', `${HEAD}      caRootsFile: ca.pem\n      caIntermediatesFile: i.pem\n      caIntermediatesData: x\n      subjectEmail: a@example.com\n`, [/caIntermediatesFile and caIntermediatesData/, 7]],
  ['typo', `${HEAD}      caRootsFile: ca.pem\n      subjectMail: a@example.com\n`, [/unknown key "subjectMail"/, 6]],
  ['gpg type', 'version: 1\nkeys:\n  corp:\n    type: gpg\n    pki: {caRootsFile: ca.pem, subjectEmail: a@example.com}\n', [/pki is a sigstore key source: its type must be sigstore/, 4]],
  ['pki and file', 'version: 1\nkeys:\n  corp:\n    file: k.pub\n    pki: {caRootsFile: ca.pem, subjectEmail: a@example.com}\n', [/pki is its own key source/, 3]],
  ['bad email', `${HEAD}      caRootsFile: ca.pem\n      subjectEmail: release\n`, [/subjectEmail "release" is not an email address/, 6]],
  ['url as hostname', `${HEAD}      caRootsFile: ca.pem\n      subjectHostname: https://build.example.com/\n`, [/is not a hostname/, 6]],
  ['pki beside another key', `${HEAD}      caRootsFile: ca.pem\n      subjectEmail: a@example.com\n  other: {type: sigstore, file: o.pub}\nscopes:\n  "r.example.com":\n    policy: signed\n    keys: [corp, other]\n`, [/key "corp" \(pki\) must be the only key of its scope/, 11]],
]
/** What the schema cannot judge: hostname syntax and key references. */
const SCHEMA_BLIND = new Set(['url as hostname', 'pki beside another key'])

describe('trust file pki:', () => {
  for (const [name, text, error] of CASES) {
    it(`${error ? 'refuses' : 'accepts'}: ${name}`, async () => {
      if (!error) {
        const trust = await validate(text)
        assert.ok(trust.keys[0].pki, 'the key has its pki source')
        assert.equal(trust.keys[0].type, 'sigstore')
        return
      }

      await assert.rejects(validate(text), (thrown: unknown) => {
        assert.ok(thrown instanceof TrustFileError, String(thrown))
        const located = thrown.message.split('\n').find((l) => error[0].test(l))
        assert.ok(located?.includes(`/t/trust.yaml:${error[1]}`), `expected ${error[0]} at line ${error[1]} in: ${thrown.message}`)
        return true
      })
    })

    if (!SCHEMA_BLIND.has(name)) {
      it(`schema/trust.schema.json agrees: ${name}`, () => {
        assert.equal(validateSchema(parse(text)), error === null, JSON.stringify(validateSchema.errors))
      })
    }
  }
})

describe('pki certificates on load', () => {
  let dir: string
  let root: TestCertificate
  let intermediate: TestCertificate
  let leaf: TestCertificate
  const year = 365 * 86_400_000

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'itpki-'))
    root = await makeRootCa(dir, 'root')
    intermediate = await makeIntermediateCa(dir, 'intermediate', root)
    leaf = await makeLeaf(dir, 'leaf', intermediate, {email: 'release@example.com'})
  })
  after(() => rm(dir, {recursive: true, force: true}))

  const check = (pem: string, now?: Date) => checkCaCertificates(Buffer.from(pem), {name: 'corp', where: '/t/ca.pem', now})

  it('a CA root: its SHA-256 fingerprint, subject and expiry', () => {
    const checked = check(root.certPem)
    assert.equal(checked.infos.length, 1)
    assert.match(checked.infos[0].fingerprint, /^[0-9A-F]{64}$/)
    assert.match(checked.infos[0].userIds[0], /CN=root/)
    assert.deepEqual(checked.problems, [])
    assert.match(checked.pem, /^-----BEGIN CERTIFICATE-----\n/)
  })

  it('refuses a signing (leaf) certificate, a private key, other PEM and garbage, naming the source', () => {
    assert.throws(() => check(leaf.certPem), /key "corp": \/t\/ca\.pem: certificate 1 \(.*CN=leaf\) is not a CA certificate/)
    assert.throws(() => check(readFileSync(root.keyFile, 'utf8')), /\/t\/ca\.pem holds a private key/)
    assert.throws(() => check('-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n'), /holds a PEM "PUBLIC KEY" block/)
    assert.throws(() => check('hello'), /\/t\/ca\.pem has no PEM certificate/)
    assert.throws(() => check('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), /certificate 1 does not parse as X\.509/)
  })

  it('an expired or not yet valid CA is a problem (apply refuses it, check reports it)', () => {
    assert.match(check(root.certPem, new Date(Date.now() + 11 * year)).problems.join('\n'), /certificate 1 \(.*CN=root\) expired on/)
    assert.match(check(root.certPem, new Date(Date.now() - year)).problems.join('\n'), /is not valid before/)
  })

  async function trustWith(body: string) {
    const file = path.join(dir, 'trust.yaml')
    await writeFile(file, `version: 1\nkeys:\n  corp:\n    pki:\n${body}${SCOPE}`)
    return validate(await readFile(file, 'utf8'), file)
  }

  it('loads roots and intermediates, installs both under the key dir, and pins the roots', async () => {
    const trust = await trustWith(`      caRootsFile: root.crt\n      caIntermediatesFile: intermediate.crt\n      subjectEmail: release@example.com\n`)
    const [key] = await loadKeys(trust, capabilitiesFor([5, 40], 'test'), {keyDir: '/etc/pki/containers'})
    assert.equal(key.hostPath, '/etc/pki/containers/corp.roots.pem')
    assert.equal(key.pki?.caIntermediates?.hostPath, '/etc/pki/containers/corp.intermediates.pem')
    assert.deepEqual(key.warnings, [])
    assert.deepEqual(installedKeyFiles([key]).map((k) => k.hostPath), ['/etc/pki/containers/corp.roots.pem', '/etc/pki/containers/corp.intermediates.pem'])
    const pinned = await trustWith(`      caRootsFile: root.crt\n      subjectEmail: release@example.com\n`)
    pinned.keys[0].fingerprints = ['0'.repeat(64)]
    await assert.rejects(loadKeys(pinned, capabilitiesFor([5, 40], 'test'), {keyDir: '/k'}), /fingerprint pin does not match the CA roots/)
  })

  it('an expired CA stops apply with the trust file and the line of the key', async () => {
    const trust = await trustWith(`      caRootsFile: root.crt\n      subjectEmail: release@example.com\n`)
    await assert.rejects(loadKeys(trust, capabilitiesFor([5, 40], 'test'), {keyDir: '/k', now: new Date(Date.now() + 11 * year)}), (error: Error & {location?: {file: string; line?: number}}) => {
      assert.match(error.message, /root\.crt: certificate 1 .* expired on/)
      assert.deepEqual([error.location?.file, error.location?.line], [path.join(dir, 'trust.yaml'), 3])
      return true
    })
    const missing = await trustWith(`      caRootsFile: nowhere.crt\n      subjectEmail: release@example.com\n`)
    await assert.rejects(loadKeys(missing, capabilitiesFor([5, 40], 'test'), {keyDir: '/k'}), (error: Error & {location?: {line?: number}}) => {
      assert.match(error.message, /key "corp": cannot read .*nowhere\.crt: ENOENT/)
      assert.equal(error.location?.line, 5)
      return true
    })
  })

  it('check: an expired CA is drift "expired", on the full path and from the fast path\'s cached certificates', async () => {
    const trust = await trustWith(`      caRootsFile: root.crt\n      caIntermediatesFile: intermediate.crt\n      subjectEmail: release@example.com\n`)
    const later = new Date(Date.now() + 11 * year)
    const keys = await loadKeys(trust, capabilitiesFor([5, 40], 'test'), {keyDir: '/k', strict: false, now: later})
    assert.deepEqual(keyDrift(keys, 30, later).drift.map((d) => [d.path, d.reasons]), [['/k/corp.roots.pem', ['expired']]])
    const fresh = await loadKeys(trust, capabilitiesFor([5, 40], 'test'), {keyDir: '/k'})
    assert.deepEqual(keyDrift(fresh, 30, new Date()).drift, [])
    assert.deepEqual(keyDrift(cachedKeys(fresh, later), 30, later).drift.map((d) => d.reasons), [['expired']])
  })

  it('becomes one sigstoreSigned pki requirement on 5.35+, refused on older engines naming the version needed', async () => {
    const trust = await trustWith(`      caRootsFile: root.crt\n      caIntermediatesFile: intermediate.crt\n      subjectEmail: release@example.com\n      subjectHostname: build.example.com\n`)
    const keys = await loadKeys(trust, capabilitiesFor([5, 40], 'test'), {keyDir: '/etc/pki/containers'})
    const build = (minor: number) => buildScopeRequirements(trust.scopes[0], new Map(keys.map((k) => [k.name, k])), capabilitiesFor([5, minor], `engine at 5.${minor}`), trust, '/etc/pki/containers')
    for (const minor of [23, 34]) assert.throws(() => build(minor), new RegExp(`containers/image 5\\.${minor} \\(engine at 5\\.${minor}\\) does not know sigstoreSigned pki \\(pki needs 5\\.35\\)`))
    const {requirements} = build(35)
    assert.deepEqual(requirements, [
      {
        type: 'sigstoreSigned',
        pki: {caRootsPath: '/etc/pki/containers/corp.roots.pem', caIntermediatesPath: '/etc/pki/containers/corp.intermediates.pem', subjectEmail: 'release@example.com', subjectHostname: 'build.example.com'},
        signedIdentity: {type: 'matchRepository'},
      },
    ])
    const text = serializePolicy({default: [{type: 'reject'}], transports: [{name: 'docker', scopes: [{scope: 'r.example.com/team', requirements}]}]})
    assert.doesNotThrow(() => parsePolicy(text, 'planned', {features: capabilitiesFor([5, 35], 'x').policy}))
  })
})

describe('native pki checks (src/sigstore/pki.ts)', () => {
  let dir: string
  let root: TestCertificate
  let intermediate: TestCertificate
  let leaf: TestCertificate

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'itpkn-'))
    root = await makeRootCa(dir, 'root')
    intermediate = await makeIntermediateCa(dir, 'intermediate', root)
    leaf = await makeLeaf(dir, 'leaf', intermediate, {email: 'release@example.com', hostname: 'build.example.com'})
  })
  after(() => rm(dir, {recursive: true, force: true}))

  const trust = (intermediates: TestCertificate[] = []) => ({
    roots: [new X509Certificate(root.certPem)],
    intermediates: intermediates.map((c) => new X509Certificate(c.certPem)),
    subjectEmail: 'release@example.com',
    subjectHostname: 'build.example.com',
  })

  it('an intermediate the signature carries completes the chain (all of the chain but its last certificate)', () => {
    assert.ok('key' in pkiSigner(trust(), leaf.certPem, intermediate.certPem + root.certPem))
    assert.ok('key' in pkiSigner(trust([intermediate]), leaf.certPem, undefined))
    assert.deepEqual(pkiSigner(trust(), leaf.certPem, intermediate.certPem), {refused: 'veryfing leaf certificate failed: x509: certificate signed by unknown authority'})
    assert.deepEqual(pkiSigner(trust(), leaf.certPem, undefined), {refused: 'veryfing leaf certificate failed: x509: certificate signed by unknown authority'})
  })

  it('weighs the constraints x509.Verify in Go weighs: a path length refuses, name constraints and unknown critical extensions are undecided', async () => {
    const CA = ['keyUsage=critical,keyCertSign,cRLSign']
    const signer = (r: TestCertificate, l: TestCertificate, chain?: string) => pkiSigner({...trust(), roots: [new X509Certificate(r.certPem)]}, l.certPem, chain)
    const short = await makeRootCa(dir, 'pathlen0', ['basicConstraints=critical,CA:TRUE,pathlen:0', ...CA])
    const below = await makeIntermediateCa(dir, 'below-pathlen0', short)
    const deepLeaf = await makeLeaf(dir, 'deep-leaf', below, {email: 'release@example.com', hostname: 'build.example.com'})
    assert.deepEqual(signer(short, deepLeaf, below.certPem + short.certPem), {refused: 'veryfing leaf certificate failed: x509: too many intermediates for path length constraint'})
    const direct = await makeLeaf(dir, 'direct-leaf', short, {email: 'release@example.com', hostname: 'build.example.com'})
    assert.ok('key' in signer(short, direct), 'pathlen:0 allows a leaf right below the root')

    const constrained = await makeRootCa(dir, 'named', ['basicConstraints=critical,CA:TRUE', ...CA, 'nameConstraints=critical,permitted;email:.good.example'])
    const outside = await makeLeaf(dir, 'outside-leaf', constrained, {email: 'release@example.com', hostname: 'build.example.com'})
    assert.match(JSON.stringify(signer(constrained, outside)), /"undecided":"certificate .*CN=named has name constraints, which containers\/image enforces/)
    const odd = await makeRootCa(dir, 'odd', ['basicConstraints=critical,CA:TRUE', ...CA, '1.2.3.4=critical,ASN1:NULL'])
    const oddLeaf = await makeLeaf(dir, 'odd-leaf', odd, {email: 'release@example.com', hostname: 'build.example.com'})
    assert.match(JSON.stringify(signer(odd, oddLeaf)), /"undecided":"certificate .*CN=odd has a critical extension 1\.2\.3\.4/)
  })

  it('refuses a leaf outside its validity period, two certificates as the leaf, and no certificate', () => {
    const later = new Date(Date.now() + 365 * 86_400_000)
    assert.match(JSON.stringify(pkiSigner(trust([intermediate]), leaf.certPem, undefined, later)), /certificate has expired or is not yet valid/)
    assert.match(JSON.stringify(pkiSigner(trust([intermediate]), leaf.certPem + leaf.certPem, undefined)), /not exactly one PEM certificate/)
    assert.match(JSON.stringify(pkiSigner(trust([intermediate]), undefined, undefined)), /missing dev\.sigstore\.cosign\/certificate/)
  })
})
