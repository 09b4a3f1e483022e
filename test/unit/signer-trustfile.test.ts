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

const FPR = '7C0142B7EA5C7977ADB07789C60D470ADECBC6C3'
const OTHER = 'AAAABBBBCCCCDDDDEEEEFFFF0000111122223333'
const keys = (pin = FPR) => `version: 1\nkeys:\n  acme: {type: gpg, file: k.asc, fingerprint: ${pin}}\n  loose: {type: gpg, file: l.asc}\n`
const scope = (body: string) => `scopes:\n  "r.example.com/apps":\n${body}`
const SIGNED = '    policy: signed\n    keys: [acme]\n    lookaside: http://sigs.example.com\n    lookasideStaging: file:///var/lib/containers/sigstore-staging\n'

/** Each row: a trust file; null (valid) or the message and its line; whether the schema can judge it. */
const CASES: Array<[name: string, text: string, error: null | [RegExp, number], schemaJudges: boolean]> = [
  ['signer with its scope', `${keys()}signer:\n  fingerprint: ${FPR}\n  gnupgHome: ~/.gnupg\n  hosts: [build01]\n${scope(SIGNED)}`, null, true],
  ['signer, unpinned key (checked at apply)', `${keys()}signer: {fingerprint: ${FPR}}\n${scope(SIGNED.replace('[acme]', '[loose]'))}`, null, true],
  ['signer without fingerprint', `${keys()}signer: {gnupgHome: /x}\n${scope(SIGNED)}`, [/signer needs fingerprint/, 5], true],
  ['signer with an unknown key', `${keys()}signer: {fingerprint: ${FPR}, keyring: /x}\n${scope(SIGNED)}`, [/unknown key "keyring"/, 5], true],
  ['signer with bad hosts', `${keys()}signer: {fingerprint: ${FPR}, hosts: []}\n${scope(SIGNED)}`, [/hosts must be a non-empty list/, 5], true],
  ['signer with a bad fingerprint', `${keys()}signer: {fingerprint: ABC}\n${scope(SIGNED)}`, [/fingerprint "ABC" must be 40/, 5], true],
  ['signer without a staging scope', `${keys()}signer: {fingerprint: ${FPR}}\n${scope(SIGNED.replace(/ +lookasideStaging.*\n/, ''))}`, [/no scope has lookasideStaging/, 5], false],
  ['signer scope not signed', `${keys()}signer: {fingerprint: ${FPR}}\n${scope('    policy: accept\n    lookaside: http://s.example.com\n    lookasideStaging: file:///s\n')}`, [/needs policy: signed, not accept/, 10], false],
  ['signer scope without lookaside', `${keys()}signer: {fingerprint: ${FPR}}\n${scope(SIGNED.replace(/ +lookaside: .*\n/, ''))}`, [/needs a lookaside: http\(s\) URL/, 10], false],
  ['signer key not trusted by its scope', `${keys(OTHER)}signer: {fingerprint: ${FPR}}\n${scope(SIGNED)}`, [new RegExp(`signer key ${FPR} is not a key that scope "r.example.com/apps" trusts \\(${OTHER}\\)`), 5], false],
]

describe('trust file: signer', () => {
  for (const [name, text, error, schemaJudges] of CASES) {
    it(`${error ? 'refuses' : 'accepts'}: ${name}`, async () => {
      const run = async () => validateTrustFile(await loadYamlSource(text, '/t/trust.yaml'))
      if (!error) {
        const trust = await run()
        assert.equal(trust.signer?.fingerprint, FPR)
        return
      }

      await assert.rejects(run(), (thrown: unknown) => {
        assert.ok(thrown instanceof TrustFileError, String(thrown))
        const located = thrown.message.split('\n').find((l) => error[0].test(l))
        assert.ok(located?.includes(`/t/trust.yaml:${error[1]}`), `expected ${error[0]} at line ${error[1]} in: ${thrown.message}`)
        return true
      })
    })

    if (schemaJudges) {
      it(`schema/trust.schema.json agrees: ${name}`, () => {
        assert.equal(validateSchema(parse(text)), error === null, JSON.stringify(validateSchema.errors))
      })
    }
  }

  it('a trust file without signer keeps lookasideStaging as before', async () => {
    const trust = await validateTrustFile(await loadYamlSource(`${keys()}${scope(SIGNED)}`, '/t/trust.yaml'))
    assert.equal(trust.signer, undefined)
    assert.equal(trust.scopes[0].lookasideStaging, 'file:///var/lib/containers/sigstore-staging')
  })
})
