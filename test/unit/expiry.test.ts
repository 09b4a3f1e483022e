import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, it} from 'node:test'

import {Ajv2020} from 'ajv/dist/2020.js'
import {parse} from 'yaml'

import {expiringEntries, expiryReport, nextExpiry, parseUntil, trustAsOf} from '../../src/trustfile/expiry.ts'
import {TrustFileError, validateTrustFile} from '../../src/trustfile/validate.ts'
import {loadYamlSource} from '../../src/trustfile/yaml-source.ts'

const REPO = path.resolve(import.meta.dirname, '../..')
const validateSchema = new Ajv2020({allErrors: true, strict: false}).compile(JSON.parse(readFileSync(path.join(REPO, 'schema/trust.schema.json'), 'utf8')))

async function validate(text: string) {
  return validateTrustFile(await loadYamlSource(text, '/t/trust.yaml'))
}

/** Each row: the value as written, and the instant it means (ISO, UTC) or the message refusing it. */
const UNTIL: Array<[unknown, string | RegExp]> = [
  ['2027-01-31', '2027-01-31T00:00:00.000Z'],
  ['2028-02-29', '2028-02-29T00:00:00.000Z'],
  ['2027-01-31T12:30:00Z', '2027-01-31T12:30:00.000Z'],
  ['2027-01-31t12:30:00z', '2027-01-31T12:30:00.000Z'],
  ['2027-01-31 12:30:00Z', '2027-01-31T12:30:00.000Z'],
  ['2027-01-31T12:30:00.25Z', '2027-01-31T12:30:00.250Z'],
  ['2027-01-31T01:00:00+02:00', '2027-01-30T23:00:00.000Z'],
  ['2027-01-31T23:00:00-05:30', '2027-02-01T04:30:00.000Z'],
  [new Date('2027-01-31T00:00:00Z'), '2027-01-31T00:00:00.000Z'],
  ['2027-02-29', /not a valid date/],
  ['2027-13-01', /not a valid date/],
  ['2027-01-31T24:00:00Z', /not a valid time/],
  ['2027-01-31T12:60:00Z', /not a valid time/],
  ['2027-01-31T12:00:00+25:00', /not a valid time/],
  ['2027-01-31T12:00:00', /has no time zone: add Z/],
  ['2027-01-31T12:00', /has no time zone/],
  ['31.01.2027', /must be a date \(2027-01-31\) or an RFC 3339 time/],
  ['2027-1-31', /must be a date/],
  ['tomorrow', /must be a date/],
  [20_270_131, /must be a date .* not 20270131/],
  [null, /not null/],
]

describe('until: dates and times', () => {
  for (const [value, expected] of UNTIL) {
    it(`${typeof expected === 'string' ? 'reads' : 'refuses'} ${value instanceof Date ? 'a YAML timestamp' : JSON.stringify(value)}`, () => {
      const got = parseUntil(value)
      if (typeof expected === 'string') {
        assert.ok(got instanceof Date, String(got))
        assert.equal(got.toISOString(), expected)
      } else {
        assert.equal(typeof got, 'string')
        assert.match(got as string, expected)
      }
    })
  }
})

const HEAD = 'version: 1\nkeys:\n  old: {file: old.asc}\n  new: {file: new.asc}\nscopes:\n'

describe('until: in the trust file', () => {
  it('reads an unquoted YAML date as the date, not a Date object or a local time (fast parser)', async () => {
    const trust = await validate(`${HEAD}  "quay.io/vendor":\n    policy: accept\n    until: 2027-01-31\n    reason: "vendor has no signatures yet (TICKET-12)"\n`)
    assert.equal(trust.scopes[0].until, '2027-01-31T00:00:00.000Z')
    assert.equal(trust.scopes[0].reason, 'vendor has no signatures yet (TICKET-12)')
  })

  it('reads it the same through the precise parser (a file with an anchor), and an explicit !!timestamp', async () => {
    const trust = await validate(`${HEAD}  "quay.io/vendor": &x\n    policy: accept\n    until: 2027-01-31\n  "quay.io/other":\n    policy: accept\n    until: !!timestamp 2027-01-31T10:00:00+01:00\n`)
    assert.deepEqual(trust.scopes.map((s) => s.until), ['2027-01-31T00:00:00.000Z', '2027-01-31T09:00:00.000Z'])
  })

  it('reads until and reason on a key', async () => {
    const trust = await validate('version: 1\nkeys:\n  old:\n    file: old.asc\n    until: "2027-03-01T00:00:00Z"\n    reason: rotated to new\n')
    assert.deepEqual([trust.keys[0].until, trust.keys[0].reason], ['2027-03-01T00:00:00.000Z', 'rotated to new'])
  })

  const BAD: Array<[string, string, RegExp, number]> = [
    ['malformed date on a scope', `${HEAD}  "quay.io/vendor":\n    policy: accept\n    until: 2027-02-30\n`, /until "2027-02-30" is not a valid date/, 8],
    ['time without zone on a key', 'version: 1\nkeys:\n  old:\n    file: old.asc\n    until: 2027-01-31T10:00:00\n', /has no time zone/, 5],
    ['a number (precise parser)', `${HEAD}  "quay.io/vendor": &a\n    policy: accept\n    until: 20270131\n`, /not 20270131/, 8],
    ['a multi-line reason', `${HEAD}  "quay.io/vendor":\n    policy: accept\n    until: 2027-01-31\n    reason: "one\\ntwo"\n`, /reason must be one line/, 9],
    ['an empty reason', `${HEAD}  "quay.io/vendor":\n    policy: accept\n    reason: ""\n`, /reason must be a non-empty string/, 8],
  ]
  for (const [name, text, message, line] of BAD) {
    it(`refuses ${name}, with the file and line`, async () => {
      await assert.rejects(validate(text), (thrown: unknown) => {
        assert.ok(thrown instanceof TrustFileError, String(thrown))
        assert.match(thrown.message, message)
        assert.ok(thrown.message.includes(`/t/trust.yaml:${line}`), `line ${line} in: ${thrown.message}`)
        return true
      })
    })
  }

  it('schema/trust.schema.json agrees on the shape of until', () => {
    assert.ok(validateSchema(parse(`${HEAD}  "q.io/v":\n    policy: accept\n    until: "2027-01-31"\n    reason: why\n`)), JSON.stringify(validateSchema.errors))
    assert.ok(validateSchema(parse(`${HEAD}  "q.io/v":\n    policy: accept\n    until: "2027-01-31T10:00:00+02:00"\n`)), JSON.stringify(validateSchema.errors))
    assert.ok(!validateSchema(parse(`${HEAD}  "q.io/v":\n    policy: accept\n    until: "2027-01-31T10:00:00"\n`)))
    assert.ok(!validateSchema(parse(`${HEAD}  "q.io/v":\n    policy: accept\n    until: 20270131\n`)))
  })
})

const TRUST = `version: 1
default: reject
keys:
  old: {file: old.asc, until: 2027-01-31, reason: rotated}
  new: {file: new.asc}
  solo: {file: solo.asc, until: 2027-06-01}
scopes:
  "quay.io/vendor":
    policy: accept
    until: 2027-01-31T12:00:00Z
    reason: vendor signs from February
  "registry.example.com/team":
    policy: signed
    keys: [old, new]
  "registry.example.com/solo":
    policy: signed
    keys: [solo]
    identity: matchRepository
    test: {signed: "registry.example.com/solo/app:1", unsigned: "registry.example.com/solo/u:1"}
crio:
  namespaces:
    vendor-ns: {scopes: ["quay.io/vendor", "registry.example.com/team"]}
`

describe('the desired state as of a time', () => {
  it('before any until: unchanged (the same object)', async () => {
    const trust = await validate(TRUST)
    const asOf = trustAsOf(trust, new Date('2027-01-30T23:59:59.999Z'))
    assert.equal(asOf.trust, trust)
    assert.deepEqual(asOf.expired, [])
  })

  it('at the until itself the entry is gone: a date ends at 00:00 UTC of that day', async () => {
    const asOf = trustAsOf(await validate(TRUST), new Date('2027-01-31T00:00:00.000Z'))
    assert.deepEqual(asOf.expired.map((e) => e.name), ['old'])
    assert.deepEqual(asOf.trust.keys.map((k) => k.name), ['new', 'solo'])
    assert.deepEqual(asOf.trust.scopes.find((s) => s.scope === 'registry.example.com/team')?.keys, ['new'])
    assert.match(asOf.notes.join('\n'), /scope "registry.example.com\/team" no longer trusts expired key\(s\) "old"/)
  })

  it('an expired accept exception is left out, also from the CRI-O namespace that listed it; lines are kept', async () => {
    const asOf = trustAsOf(await validate(TRUST), new Date('2027-01-31T12:00:00Z'))
    assert.deepEqual(asOf.trust.scopes.map((s) => s.scope), ['registry.example.com/team', 'registry.example.com/solo'])
    assert.deepEqual(asOf.trust.crioNamespaces[0].scopes, ['registry.example.com/team'])
    assert.equal(asOf.trust.crioNamespaces[0].line, 22)
    assert.equal(asOf.trust.scopes[0].line, 12)
    assert.deepEqual(asOf.expired.map((e) => [e.what, e.name, e.reason]), [['key', 'old', 'rotated'], ['scope', 'quay.io/vendor', 'vendor signs from February']])
  })

  it("a signed scope whose only key expired rejects everything, and says so loudly", async () => {
    const asOf = trustAsOf(await validate(TRUST), new Date('2027-06-01T00:00:00Z'))
    const solo = asOf.trust.scopes.find((s) => s.scope === 'registry.example.com/solo')!
    assert.deepEqual({policy: solo.policy, keys: solo.keys, identity: solo.identity, test: solo.test}, {policy: 'reject', keys: [], identity: undefined, test: {unsigned: 'registry.example.com/solo/u:1'}})
    assert.match(asOf.notes.join('\n'), /scope "registry.example.com\/solo" REFUSES EVERY IMAGE: its only key\(s\) "solo" expired/)
  })

  it('check: expired entries are drift with their reason; those within --expiry-warn days are warnings', async () => {
    const entries = expiringEntries(await validate(TRUST))
    const report = expiryReport(entries, new Date('2027-01-31T06:00:00Z'), 200)
    assert.deepEqual(report.drift.map((d) => d.entry.name), ['old'])
    assert.match(report.drift[0].detail, /key "old" expired on 2027-01-31T00:00:00.000Z: rotated/)
    assert.deepEqual(report.warnings, [
      'key "solo" expires on 2027-06-01T00:00:00.000Z, in 120 day(s)',
      'scope "quay.io/vendor" (accept) expires on 2027-01-31T12:00:00.000Z, in 0 day(s): vendor signs from February',
    ])
    assert.equal(expiryReport(entries, new Date('2027-01-31T06:00:00Z'), 0).warnings.length, 0)
    assert.equal(nextExpiry(entries, new Date('2027-01-31T06:00:00Z')), '2027-01-31T12:00:00.000Z')
    assert.equal(nextExpiry(entries, new Date('2027-06-01T00:00:00Z')), undefined)
  })
})
