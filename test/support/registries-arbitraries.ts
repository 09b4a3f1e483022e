/**
 * Random registries.d files for property tests (registries-lookup, parse-cache): scope
 * names from a small pool, some of them YAML numbers, booleans or null when unquoted,
 * written by three YAML writers; and references to look up in them.
 */
import fc from 'fast-check'
import jsYaml from 'js-yaml'
import {stringify} from 'yaml'

const SCOPES = ['registry.example.com', 'registry.example.com/team', 'registry.example.com/team/app', 'quay.example.com', '5000', '1.5', 'true', 'null', '10.0.0.1:5000/x']
export const REFERENCES = [
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
export const registries = fc.record(
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

export const writers = {yaml: (v: object) => stringify(v), 'js-yaml': (v: object) => jsYaml.dump(v), 'plain keys': (v: object) => plainKeys(v as Record<string, unknown>)}
