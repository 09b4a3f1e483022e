import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseDocument} from 'yaml'

import {answersFromFlags, missingFlags, normalizeLookaside, scopeOfImage, scopeProblem} from '../../src/init/core.ts'
import {rejectImpact} from '../../src/init/host.ts'
import {suggestKeyName} from '../../src/init/keys.ts'
import {editTrustDocument, renderTrustFile} from '../../src/init/render.ts'
import type {InitAnswers} from '../../src/init/types.ts'
import {colorDiff, colorEnabled} from '../../src/lib/color.ts'
import {suggest} from '../../src/lib/suggest.ts'
import {validateTrustFile} from '../../src/trustfile/validate.ts'
import {loadYamlSource} from '../../src/trustfile/yaml-source.ts'

const FPR = '7C0142B7EA5C7977ADB07789C60D470ADECBC6C3'
const answers = (over: Partial<InitAnswers> = {}): InitAnswers => ({
  default: 'reject',
  keys: [{name: 'acme', type: 'gpg', content: 'x', fingerprints: [FPR], keys: [{fingerprint: FPR, algorithm: 'ed25519', userIds: ['Acme <ops@acme.example>']}], origin: 'test', warnings: []}],
  scopes: [{scope: 'registry.example.com:5000/team', key: 'acme', lookaside: 'https://sigs.example.com', test: {signed: 'registry.example.com:5000/team/app:1'}}],
  ...over,
})

describe('init', () => {
  it('scope problems are found as typed, with the normalised form for docker.io shorthands', () => {
    assert.equal(scopeProblem('registry.example.com/team'), undefined)
    assert.match(scopeProblem('busybox')!, /short name/)
    assert.match(scopeProblem('https://r.example.com')!, /without a URL scheme/)
    assert.match(scopeProblem('index.docker.io/library/busybox')!, /write "docker.io\/library\/busybox"/)
    assert.match(scopeProblem('r.example.com/UP')!, /invalid repository path component/)
  })

  it('the rendered trust file is valid, commented, and says what default does', async () => {
    for (const choice of ['reject', 'accept', 'unset'] as const) {
      const text = renderTrustFile(answers({default: choice}))
      const trust = validateTrustFile(await loadYamlSource(text, '/t/trust.yaml'))
      assert.equal(trust.default, choice === 'unset' ? undefined : choice)
      assert.match(text, /Local transports .*\n.*stay open/)
      assert.match(text, /# Acme <ops@acme.example>, ed25519, no expiry/)
      assert.equal(trust.scopes[0].test?.signed, 'registry.example.com:5000/team/app:1')
    }
  })

  it('editing an existing file keeps its comments and adds a key beside the current ones', async () => {
    const original = `# top comment\nversion: 1 # inline\nkeys:\n  # old key\n  old: {type: gpg, file: keys/old.asc}\nscopes:\n  # team scope\n  "registry.example.com:5000/team":\n    policy: signed\n    keys: [old]\n`
    const doc = parseDocument(original)
    const notes = editTrustDocument(doc, answers({default: undefined}))
    const text = doc.toString({lineWidth: 0, flowCollectionPadding: false})
    for (const comment of ['# top comment', '# inline', '# old key', '# team scope']) assert.ok(text.includes(comment), comment)
    assert.match(text, /keys: \[old, acme\]/)
    assert.match(notes.join('\n'), /added key "acme" beside/)
    validateTrustFile(await loadYamlSource(text, '/t/trust.yaml'))
  })

  it('every value it writes is a quoted YAML scalar: a " #" stays, and no value adds a scope', async () => {
    const lookaside = 'https://sigs.example.com/x #not-a-comment'
    const tricky = answers({scopes: [{scope: 'registry.example.com:5000/team', key: 'acme', lookaside, test: {signed: 'registry.example.com:5000/team/app:1', unsigned: 'registry.example.com:5000/team/other:1'}}]})
    for (const text of [renderTrustFile(tricky), (() => {
      const doc = parseDocument('version: 1\nkeys: {}\nscopes: {}\n')
      editTrustDocument(doc, tricky)
      return doc.toString()
    })()]) {
      const trust = validateTrustFile(await loadYamlSource(text, '/t/trust.yaml'))
      assert.deepEqual(trust.scopes.map((sc) => sc.scope), ['registry.example.com:5000/team'], text)
      assert.equal(trust.scopes[0].lookaside, lookaside, text)
    }
  })

  it('refuses a lookaside with a control character (the URL parser would drop a newline)', () => {
    for (const url of ['https://sigs.example.com\n  "docker.io":\n    policy: accept', 'https://sigs.example.com/\tx', 'https://sigs.example.com/\r']) {
      assert.throws(() => normalizeLookaside(url), /control character/)
    }

    assert.equal(normalizeLookaside('https://sigs.example.com/'), 'https://sigs.example.com')
  })

  it('a trust file whose lookaside holds a newline is refused, with its line', async () => {
    const text = 'version: 1\nscopes:\n  "r.example.com/a":\n    policy: accept\n    lookaside: "https://s.example.com\\ndocker.io: x"\n'
    const source = await loadYamlSource(text, '/t/trust.yaml')
    assert.throws(() => validateTrustFile(source), /\/t\/trust\.yaml:5.*lookaside .*control character/)
  })

  it("a key's user ID with a newline stays inside its one comment line, new file or edited", async () => {
    const evil = answers()
    evil.keys[0].keys[0].userIds = ['Mallory\nscopes:\n  "docker.io":\n    policy: accept\n#']
    const doc = parseDocument('version: 1\nkeys: {}\nscopes: {}\n')
    editTrustDocument(doc, evil)
    for (const text of [renderTrustFile(evil), doc.toString()]) {
      const trust = validateTrustFile(await loadYamlSource(text, '/t/trust.yaml'))
      assert.deepEqual(trust.scopes.map((sc) => sc.scope), ['registry.example.com:5000/team'], text)
      assert.match(text, /^ *# Mallory\\nscopes:\\n {2}"docker.io":\\n {4}policy: accept\\n#, ed25519, no expiry$/m)
    }
  })

  it('refuses a --key-name that is no plain file name before reading any key (exit 64)', async () => {
    for (const name of ['../../evil', 'a/b', 'UP', '']) {
      await assert.rejects(
        answersFromFlags({scope: ['r.example.com/x'], key: ['/nonexistent.asc'], 'key-name': [name]}, {capabilities: {} as never, log: () => undefined}),
        (error: Error & {exitCode?: number}) => /--key-name .* must match/.test(error.message) && error.exitCode === 64,
      )
    }
  })

  it('names every missing flag', () => {
    assert.deepEqual(missingFlags({}, {existing: false}), ['--scope', '--key', '--lookaside (or --sigstore-attachments)', '--default', '--yes'])
    assert.deepEqual(missingFlags({scope: ['a.example.com'], 'sigstore-attachments': true}, {existing: false}), ['--key', '--default', '--yes'])
    assert.deepEqual(missingFlags({}, {existing: true}), ['--scope', '--key', '--yes'])
  })

  it('a test image goes to the most specific scope it falls under', () => {
    assert.equal(scopeOfImage('r.example.com/team/app:1', ['r.example.com', 'r.example.com/team']), 'r.example.com/team')
    assert.equal(scopeOfImage('other.example.com/app:1', ['r.example.com']), undefined)
  })

  it("the impact of reject: local and running images from registries no scope lists; localhost/ images stay", () => {
    const impact = rejectImpact(
      {engines: [], configPaths: [], localImages: ['docker.io/library/alpine:3', 'r.example.com/team/app:1', 'localhost/built:1'], runningImages: ['quay.io/x/y:1']},
      ['r.example.com/team'],
    )
    assert.deepEqual(impact.images, ['docker.io/library/alpine:3'])
    assert.deepEqual(impact.running, ['quay.io/x/y:1'])
    assert.deepEqual(impact.registries, ['docker.io', 'quay.io'])
  })

  it('key names come from the user ID and never collide', () => {
    const keys = [{fingerprint: FPR, algorithm: 'x', userIds: ['Acme Ops <Ops.Team@acme.example>']}]
    assert.equal(suggestKeyName(keys, new Set()), 'ops.team')
    assert.equal(suggestKeyName(keys, new Set(['ops.team'])), 'ops.team-2')
    assert.equal(suggestKeyName([{fingerprint: FPR, algorithm: 'x', userIds: []}], new Set()), 'key')
  })
})

describe('colour and suggestions', () => {
  it('colours a diff only when enabled', () => {
    const diff = '--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n same'
    assert.equal(colorDiff(diff, false), diff)
    const coloured = colorDiff(diff, true)
    assert.match(coloured, /\u001B\[31m-old\u001B\[0m/)
    assert.match(coloured, /\u001B\[32m\+new\u001B\[0m/)
    assert.match(coloured, /\n same$/)
  })

  it('NO_COLOR and --no-color switch colour off even on a terminal', () => {
    const tty = {isTTY: true} as NodeJS.WriteStream
    const saved = process.env.NO_COLOR
    try {
      delete process.env.NO_COLOR
      assert.equal(colorEnabled({stream: tty}), true)
      assert.equal(colorEnabled({stream: {isTTY: false} as NodeJS.WriteStream}), false)
      assert.equal(colorEnabled({stream: tty, noColor: true}), false)
      process.env.NO_COLOR = '1'
      assert.equal(colorEnabled({stream: tty}), false)
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR
      else process.env.NO_COLOR = saved
    }
  })

  it('suggests close commands', () => {
    const ids = ['apply', 'check', 'detect', 'explain', 'init', 'key add', 'key list', 'key remove', 'plan', 'verify']
    assert.equal(suggest('chekc', ids)[0], 'check')
    assert.equal(suggest('key ad', ids)[0], 'key add')
    assert.deepEqual(suggest('zzzzzz', ids), [])
  })
})
