import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, it} from 'node:test'

import {Ajv2020} from 'ajv/dist/2020.js'
import {parse} from 'yaml'

import {TrustFileError, validateTrustFile} from '../../src/trustfile/validate.ts'
import {loadYamlSource} from '../../src/trustfile/yaml-source.ts'

const REPO = path.resolve(import.meta.dirname, '../..')
const schema = JSON.parse(readFileSync(path.join(REPO, 'schema/trust.schema.json'), 'utf8'))
const validateSchema = new Ajv2020({allErrors: true, strict: false}).compile(schema)

async function validate(text: string) {
  return validateTrustFile(await loadYamlSource(text, '/t/trust.yaml'))
}

const FPR = '7C0142B7EA5C7977ADB07789C60D470ADECBC6C3'
const HEAD = `version: 1\nkeys:\n  acme: {type: gpg, file: k.asc}\n  cos: {type: sigstore, file: c.pub}\nscopes:\n`

/** Each row: a trust file, and null (valid) or the expected message and line. */
const CASES: Array<[name: string, text: string, error: null | [RegExp, number]]> = [
  ['minimal', 'version: 1\n', null],
  ['full example', readFileSync(path.join(REPO, 'templates/trust.yaml'), 'utf8'), null],
  ['signed scope', `${HEAD}  "registry.example.com:5000":\n    policy: signed\n    keys: [acme]\n`, null],
  ['identity object', `${HEAD}  "r.example.com/a":\n    policy: signed\n    keys: [acme]\n    identity: {type: exactRepository, dockerRepository: r.example.com/b}\n`, null],
  ['url with pin', `version: 1\nkeys:\n  k: {url: "https://example.com/k.asc", fingerprint: ${FPR}}\n`, null],
  ['wildcard scope', `${HEAD}  "*.example.com":\n    policy: reject\n`, null],
  ['wrong version', 'version: 2\n', [/version must be 1/, 1]],
  ['unknown top key', 'version: 1\nscope: {}\n', [/unknown key "scope"/, 2]],
  ['bad default', 'version: 1\ndefault: deny\n', [/default must be reject or accept/, 2]],
  ['bad policy', `${HEAD}  "r.example.com":\n    policy: signd\n`, [/policy must be signed, reject or accept/, 7]],
  ['typo in scope key', `${HEAD}  "r.example.com":\n    policy: accept\n    lookasid: http://x\n`, [/unknown key "lookasid"/, 8]],
  ['undefined key', `${HEAD}  "r.example.com":\n    policy: signed\n    keys: [nobody]\n`, [/key "nobody" is not defined/, 8]],
  ['signed without keys', `${HEAD}  "r.example.com":\n    policy: signed\n`, [/policy: signed needs at least one key/, 6]],
  ['keys on accept', `${HEAD}  "r.example.com":\n    policy: accept\n    keys: [acme]\n`, [/keys are only used with policy: signed/, 8]],
  ['gpg and sigstore mixed', `${HEAD}  "r.example.com":\n    policy: signed\n    keys: [acme, cos]\n`, [/cannot share a scope/, 8]],
  ['short-name scope', `${HEAD}  busybox:\n    policy: reject\n`, [/short name, which never matches/, 6]],
  ['scope with scheme', `${HEAD}  "https://r.example.com":\n    policy: reject\n`, [/without a URL scheme/, 6]],
  ['bad lookaside scheme', `${HEAD}  "r.example.com":\n    policy: accept\n    lookaside: ftp://x.example.com\n`, [/lookaside "ftp:\/\/x.example.com" must use http:\/\/ or https:\/\/ or file:\/\//, 8]],
  ['http staging', `${HEAD}  "r.example.com":\n    policy: accept\n    lookasideStaging: http://x.example.com\n`, [/lookasideStaging .* must use file:\/\//, 8]],
  ['attachments not bool', `${HEAD}  "r.example.com":\n    policy: accept\n    sigstoreAttachments: "yes"\n`, [/sigstoreAttachments must be true or false/, 8]],
  ['bad identity name', `${HEAD}  "r.example.com":\n    policy: signed\n    keys: [acme]\n    identity: matchEverything\n`, [/identity "matchEverything" must be one of/, 9]],
  ['identity without tag', `${HEAD}  "r.example.com":\n    policy: signed\n    keys: [acme]\n    identity: {type: exactReference, dockerReference: r.example.com/x}\n`, [/contains neither a tag nor digest/, 9]],
  ['bad test image', `${HEAD}  "r.example.com":\n    policy: accept\n    test: {signed: "r.example.com/UP:1"}\n`, [/test image "r.example.com\/UP:1"/, 8]],
  ['http key url', `version: 1\nkeys:\n  k: {url: "http://example.com/k.asc", fingerprint: ${FPR}}\n`, [/url "http:\/\/example.com\/k.asc" must use https:\/\//, 3]],
  ['url without pin', 'version: 1\nkeys:\n  k: {url: "https://example.com/k.asc"}\n', [/needs a fingerprint pin/, 3]],
  ['two key sources', 'version: 1\nkeys:\n  k: {file: a, data: b}\n', [/exactly one of file, url, data \(found 2\)/, 3]],
  ['no key source', 'version: 1\nkeys:\n  k: {type: gpg}\n', [/exactly one of file, url, data \(found 0\)/, 3]],
  ['bad key type', 'version: 1\nkeys:\n  k: {type: x509, file: a}\n', [/type must be gpg or sigstore/, 3]],
  ['bad key name', 'version: 1\nkeys:\n  Acme Key: {file: a}\n', [/key name "Acme Key" must match/, 3]],
  ['bad fingerprint', 'version: 1\nkeys:\n  k: {file: a, fingerprint: ABCD}\n', [/fingerprint "ABCD" must be 40 \(v4\) or 64 \(v6\) hexadecimal digits/, 3]],
  ['not a mapping', '- a\n- b\n', [/must be a YAML mapping/, 1]],
]

describe('trust file validation', () => {
  for (const [name, text, error] of CASES) {
    it(`${error ? 'refuses' : 'accepts'}: ${name}`, async () => {
      if (!error) {
        await validate(text)
        return
      }

      await assert.rejects(validate(text), (thrown: unknown) => {
        assert.ok(thrown instanceof TrustFileError, String(thrown))
        assert.match(thrown.message, error[0])
        const located = thrown.message.split('\n').find((l) => error[0].test(l))
        assert.ok(located?.includes(`/t/trust.yaml:${error[1]}`), `expected line ${error[1]} on the matching message in: ${thrown.message}`)
        return true
      })
    })
  }

  it('collects every problem, each with its own line', async () => {
    await assert.rejects(validate('version: 3\nkeys:\n  k: {type: gpg}\nscopes:\n  "r.example.com":\n    policy: nope\n'), (thrown: TrustFileError) => {
      assert.equal(thrown.problems.length, 3)
      assert.deepEqual(thrown.problems.map((p) => p.line), [1, 3, 6])
      return true
    })
  })

  it('reports YAML syntax errors and duplicate keys with their line', async () => {
    await assert.rejects(loadYamlSource('version: 1\nscopes:\n  a.example.com: {policy: accept}\n  a.example.com: {policy: reject}\n', '/t/trust.yaml'), /\/t\/trust\.yaml:4:\d+: Map keys must be unique/)
    await assert.rejects(loadYamlSource('version: 1\nkeys: [unclosed\n', '/t/trust.yaml'), /\/t\/trust\.yaml:\d+/)
  })

  // The published schema and the validator must agree on structure: every row the
  // schema can judge (scope syntax, key references and URL schemes are beyond it).
  const SCHEMA_BLIND = new Set(['undefined key', 'gpg and sigstore mixed', 'short-name scope', 'identity without tag', 'bad test image', 'bad fingerprint', 'bad identity name'])
  for (const [name, text, error] of CASES) {
    if (SCHEMA_BLIND.has(name) || name === 'not a mapping') continue
    it(`schema/trust.schema.json agrees: ${name}`, () => {
      const valid = validateSchema(parse(text))
      assert.equal(valid, error === null, JSON.stringify(validateSchema.errors))
    })
  }
})
