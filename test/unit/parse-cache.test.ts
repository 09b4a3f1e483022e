/**
 * The policy and registries.d files apply leaves parsed for status: a text
 * found in the cache gives what parsing it gives (over random registries.d
 * files, as in registries-lookup.test.ts), and a damaged or foreign cache
 * is ignored.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import fc from 'fast-check'

import {policyKey, readParseCache, registriesEntries, writeParseCache} from '../../src/host/parse-cache.ts'
import {parsePolicy} from '../../src/policy/parse.ts'
import {resolveLookaside} from '../../src/registries-d/lookup.ts'
import {parseRegistriesFile, type RegistriesFile} from '../../src/registries-d/read.ts'
import {REFERENCES, registries, writers} from '../support/registries-arbitraries.ts'


const lookups = (files: RegistriesFile[]) => REFERENCES.map((ref) => resolveLookaside(files, ref))

describe('the parse cache', () => {
  let dir: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'itpc-'))
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('gives a known registries.d text what parsing it gives', async () => {
    await fc.assert(
      fc.asyncProperty(registries, fc.constantFrom(...(Object.keys(writers) as Array<keyof typeof writers>)), async (value, writer) => {
        const text = writers[writer](value)
        const parse = () => parseRegistriesFile('a.yaml', '/etc/containers/registries.d/a.yaml', text, '/r/etc/containers/registries.d/a.yaml').catch(() => undefined)
        const fresh = await parse()
        if (!fresh) return
        const known = new Map(Object.entries(JSON.parse(JSON.stringify(registriesEntries([fresh.file])))))
        const again = await parseRegistriesFile('a.yaml', '/etc/containers/registries.d/a.yaml', text, '/r/etc/containers/registries.d/a.yaml', known as never)
        assert.deepEqual(again.warnings, fresh.warnings)
        assert.deepEqual([...again.file.scopes], [...fresh.file.scopes])
        assert.equal(again.file.defaultDocker, fresh.file.defaultDocker)
        assert.deepEqual(lookups([again.file]), lookups([fresh.file]))
      }),
      {numRuns: 200},
    )
  })

  it('keeps policies and registries.d files in the cache, and ignores a damaged one', async () => {
    const signed = [{type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['/k.gpg', '/l.gpg'], signedIdentity: {type: 'remapIdentity', prefix: 'a.example.com', signedPrefix: 'b.example.com'}}]
    const sigstore = [{type: 'sigstoreSigned', pki: {caRootsPath: '/ca.pem', subjectEmail: 'a@example.com'}, signedIdentity: {type: 'matchRepository'}}]
    const docker = {'registry.example.com': signed, 'sig.example.com/x': sigstore, 'r.example.com': [{type: 'reject'}]}
    const policy = JSON.stringify({default: [{type: 'reject'}], transports: {docker, 'docker-daemon': {'': [{type: 'insecureAcceptAnything'}]}}}, null, 2)
    const registriesText = 'docker:\n  registry.example.com:\n    lookaside: https://sigs.example.com\n    lookasid: typo\n'
    const file = (await parseRegistriesFile('a.yaml', '/etc/containers/registries.d/a.yaml', registriesText, '/r/a.yaml')).file
    const cache = path.join(dir, 'parse-cache.json')
    await writeParseCache(cache, {registries: registriesEntries([file]), policies: [{text: policy, policy: parsePolicy(policy, 'policy.json').policy}]})
    const known = await readParseCache(cache)
    assert.deepEqual(known.policies.get(policyKey(policy)), parsePolicy(policy, '/r/etc/containers/policy.json').policy)
    assert.equal(known.policies.size, 1)
    const again = await parseRegistriesFile('a.yaml', '/etc/containers/registries.d/a.yaml', registriesText, '/r/a.yaml', known.registries)
    assert.deepEqual(again.warnings, ['/r/a.yaml:4: docker "registry.example.com": unknown key "lookasid" is ignored by containers/image (typo?)'])
    assert.equal(known.registries.size, 1)
    await writeFile(cache, '{"version": 1, "imagetrust": "0.0.0-other", "registries": {}, "policies": {}}')
    assert.equal((await readParseCache(cache)).registries.size, 0)
    await writeFile(cache, 'not json')
    assert.equal((await readParseCache(cache)).policies.size, 0)
  })
})
