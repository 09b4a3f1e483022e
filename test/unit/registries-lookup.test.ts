/**
 * A registries.d section looked up in the fast parser's value (no yaml
 * Document parsed) is the one the Document gives, over random registries.d
 * files: scope names from a small pool, some of them YAML numbers, booleans
 * or null when unquoted, written by three YAML writers.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import fc from 'fast-check'
import {resolveLookaside} from '../../src/registries-d/lookup.ts'
import {parseRegistriesFile, type RegistriesFile} from '../../src/registries-d/read.ts'
import {parseYamlFast} from '../../src/trustfile/yaml-source.ts'
import {REFERENCES, registries, writers} from '../support/registries-arbitraries.ts'


/** The same lookups, asked of the Document alone. */
function documentOnly(file: RegistriesFile): RegistriesFile {
  const copy = Object.create(Object.getPrototypeOf(file), Object.getOwnPropertyDescriptors(file)) as RegistriesFile
  delete copy.value
  return copy
}

const lookups = (files: RegistriesFile[]) => REFERENCES.map((ref) => resolveLookaside(files, ref))

describe('registries.d lookups without the yaml Document', () => {
  it('finds the same section in the fast parser value as in the Document', async () => {
    await fc.assert(
      fc.asyncProperty(registries, fc.constantFrom(...(Object.keys(writers) as Array<keyof typeof writers>)), async (value, writer) => {
        const text = writers[writer](value)
        let parsed: RegistriesFile
        try {
          parsed = (await parseRegistriesFile('a.yaml', '/etc/containers/registries.d/a.yaml', text)).file
        } catch {
          return // refused either way: nothing to look up
        }

        assert.deepEqual(lookups([parsed]), lookups([documentOnly(parsed)]))
      }),
      {numRuns: 300},
    )
  })

  it('reads a text it just read once, and shares the value frozen: a file read back after an apply wrote it', async () => {
    const text = 'docker:\n  registry.example.com:\n    lookaside: https://sigs.example.com\n'
    const first = await parseYamlFast(text)
    const again = await parseYamlFast(`${text}`)
    assert.ok(first && again)
    assert.equal(again.value, first.value, 'parsed again')
    assert.ok(Object.isFrozen((first.value as {docker: object}).docker), 'a shared value must not be editable')
    const [a, b] = await Promise.all(['a.yaml', 'b.yaml'].map((name) => parseRegistriesFile(name, `/etc/containers/registries.d/${name}`, text)))
    assert.deepEqual([a.file.scopes.get('registry.example.com'), b.file.displayPath], [2, '/etc/containers/registries.d/b.yaml'])
    const other = await parseYamlFast(text.replace('sigs', 'other'))
    assert.notEqual(other?.value, first.value)
  })
})
