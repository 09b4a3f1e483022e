/**
 * A registries.d section looked up in the fast parser's value (no yaml
 * Document parsed) is the one the Document gives, over random registries.d
 * files: scope names from a small pool, some of them YAML numbers, booleans
 * or null when unquoted, written by three YAML writers.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import fc from 'fast-check'
import jsYaml from 'js-yaml'
import {stringify} from 'yaml'

import {resolveLookaside} from '../../src/registries-d/lookup.ts'
import {parseRegistriesFile, type RegistriesFile} from '../../src/registries-d/read.ts'

const SCOPES = ['registry.example.com', 'registry.example.com/team', 'registry.example.com/team/app', 'quay.example.com', '5000', '1.5', 'true', 'null', '10.0.0.1:5000/x']
const REFERENCES = [
  {domain: 'registry.example.com', path: 'team/app'},
  {domain: 'registry.example.com', path: 'other'},
  {domain: 'quay.example.com', path: 'x'},
  {domain: '10.0.0.1:5000', path: 'x'},
  {domain: 'elsewhere.example.com', path: 'y'},
  // Not registries, but scopes a careless file could hold: `5000:` unquoted is a number to the Document.
  ...['5000', '1.5', 'true', 'null'].map((domain) => ({domain, path: 'x'})),
]

const section = fc.dictionary(
  fc.constantFrom('lookaside', 'lookaside-staging', 'sigstore', 'sigstore-staging', 'use-sigstore-attachments', 'lookasid'),
  fc.oneof(fc.webUrl(), fc.boolean(), fc.constant(null)),
  {maxKeys: 4},
)
const registries = fc.record(
  {
    docker: fc.option(fc.dictionary(fc.constantFrom(...SCOPES), fc.option(section, {nil: null}), {maxKeys: 5}), {nil: null}),
    'default-docker': fc.option(section, {nil: null}),
    other: fc.constant('x'),
  },
  {requiredKeys: []},
)

/** Block YAML with every key plain (unquoted), so that `5000:` or `true:` is a number or a boolean to the parser. */
function plainKeys(value: Record<string, unknown>, indent = ''): string {
  return Object.entries(value)
    .map(([key, item]) => (item !== null && typeof item === 'object' ? `${indent}${key}:\n${plainKeys(item as Record<string, unknown>, `${indent}  `)}` : `${indent}${key}: ${JSON.stringify(item)}\n`))
    .join('')
}

const writers = {yaml: (v: object) => stringify(v), 'js-yaml': (v: object) => jsYaml.dump(v), 'plain keys': (v: object) => plainKeys(v as Record<string, unknown>)}

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
})
