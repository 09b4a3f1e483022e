import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import fc from 'fast-check'
import {stringify} from 'yaml'

import {stringifyOwned} from '../../src/registries-d/merge.ts'

const reference = (docker: Record<string, Record<string, string | boolean>>) => stringify({docker}, {indent: 2, lineWidth: 0})

describe('imagetrust.yaml written directly', () => {
  it('is byte for byte what the yaml library writes, for scopes and values that need quoting too', () => {
    const awkward = ['true', 'yes', 'No', '123', '1e3', '0x1F', '0o17', 'null', '~', 'a: b', '#x', 'x:', '-x', '*.example.com', "it's", 'ü.example.com', ' lead', 'trail ', '', 'a\nb', '"q"', '[a]', '{a}', '@x', 'a #b', 'https://sigs.example.com/a b']
    for (const text of awkward) {
      for (const docker of [{[text]: {lookaside: 'https://sigs.example.com'}}, {'registry.example.com/x': {lookaside: text}}, {'registry.example.com/x': {[text]: 'v'}}]) {
        assert.equal(stringifyOwned(docker, stringify), reference(docker), JSON.stringify(docker))
      }
    }
  })

  it('agrees with the yaml library on generated scopes and values', () => {
    const chars = fc.constantFrom(...'abcz019.-_/:@+~=#! "\'*&%?[]{},\nü'.split(''))
    const text = fc.string({unit: chars, maxLength: 12})
    const section = fc.dictionary(fc.oneof(fc.constantFrom('lookaside', 'lookaside-staging', 'use-sigstore-attachments'), text), fc.oneof(text, fc.boolean()), {maxKeys: 3})
    fc.assert(
      fc.property(fc.dictionary(text, section, {minKeys: 1, maxKeys: 4}), (docker) => {
        assert.equal(stringifyOwned(docker, stringify), reference(docker))
      }),
      {numRuns: 2000},
    )
  })
})
