/**
 * The bad-input corpus: every broken input gives exit 1, a message naming the
 * file and the line (or position), and leaves the host tree byte-identical.
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {imagetrust} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

const CORPUS = path.resolve(import.meta.dirname, '../fixtures/bad-input')
const DEBIAN = '{\n    "default": [\n        {\n            "type": "insecureAcceptAnything"\n        }\n    ]\n}\n'
const escape = (s: string) => s.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')

interface Case {
  input: string
  message: string
  line: number
}

/** Puts the input where it belongs; returns the trust file to use and the file the error must name. */
async function install(input: string, ws: string, root: string): Promise<{config: string; names: string}> {
  const source = path.join(CORPUS, input)
  const [category, name] = input.split('/')
  const simpleTrust = async () => {
    const config = path.join(ws, 'trust.yaml')
    await writeFile(config, 'version: 1\nscopes:\n  "a.example.com":\n    policy: accept\n')
    return config
  }

  switch (category) {
    case 'policy': {
      await copyFile(source, path.join(root, 'etc/containers/policy.json'))
      return {config: await simpleTrust(), names: path.join(root, 'etc/containers/policy.json')}
    }

    case 'trust': {
      return {config: source, names: source}
    }

    case 'registries.d': {
      await mkdir(path.join(root, 'etc/containers/registries.d'), {recursive: true})
      await copyFile(source, path.join(root, 'etc/containers/registries.d', name))
      return {config: await simpleTrust(), names: path.join(root, 'etc/containers/registries.d', name)}
    }

    case 'state': {
      // imagetrust's own state file is input too: wrong types and paths it does not manage are refused.
      await mkdir(path.join(root, 'var/lib/imagetrust'), {recursive: true})
      await copyFile(source, path.join(root, 'var/lib/imagetrust/state.json'))
      return {config: await simpleTrust(), names: path.join(root, 'var/lib/imagetrust/state.json')}
    }

    case 'keys': {
      const config = path.join(ws, 'trust.yaml')
      await writeFile(config, `version: 1\nkeys:\n  k: {type: ${name.endsWith('.pub') ? 'sigstore' : 'gpg'}, file: ${source}}\n`)
      return {config, names: config}
    }

    default: {
      const ref = (await readFile(source, 'utf8')).trim()
      const config = path.join(ws, 'trust.yaml')
      await writeFile(config, `version: 1\nscopes:\n  "a.example.com":\n    policy: accept\n    test:\n      signed: "${ref}"\n`)
      return {config, names: config}
    }
  }
}

describe('bad-input corpus', () => {
  let dir: string
  let cases: Case[]

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-bad-'))
    const expectations = JSON.parse(await readFile(path.join(CORPUS, 'expectations.json'), 'utf8')) as Record<string, {message: string; line: number}>
    cases = Object.entries(expectations).map(([input, e]) => ({input, ...e}))
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('has at least 70 broken inputs across trust files, policy.json, registries.d, keys, image references and state.json', () => {
    assert.ok(cases.length >= 70, `${cases.length} inputs`)
    assert.deepEqual([...new Set(cases.map((c) => c.input.split('/')[0]))].sort(), ['keys', 'policy', 'refs', 'registries.d', 'state', 'trust'])
  })

  it('each one: exit 1, the file and line named, the host byte-identical', async () => {
    const failures: string[] = []
    const runOne = async (c: Case, i: number) => {
      const ws = path.join(dir, `case-${i}`)
      const root = path.join(ws, 'root')
      await mkdir(path.join(root, 'etc/containers'), {recursive: true})
      await writeFile(path.join(root, 'etc/containers/policy.json'), DEBIAN)
      const {config, names} = await install(c.input, ws, root)
      const before = await hashTree(root)
      const result = await imagetrust(['apply', '--root', root, '-c', config])
      const problems = []
      if (result.code !== 1) problems.push(`exit ${result.code}`)
      if (!new RegExp(`${escape(names)}:${c.line}(?!\\d)`).test(result.stderr)) problems.push(`no ${path.basename(names)}:${c.line}`)
      if (!result.stderr.includes(c.message)) problems.push(`no "${c.message}"`)
      if (JSON.stringify(await hashTree(root)) !== JSON.stringify(before)) problems.push('the host tree changed')
      if (problems.length > 0) failures.push(`${c.input}: ${problems.join('; ')}\n    ${result.stderr.trim().replaceAll('\n', '\n    ')}`)
    }

    // Four at a time: the machine has two cores and each run is mostly start-up.
    for (let i = 0; i < cases.length; i += 4) await Promise.all(cases.slice(i, i + 4).map((c, j) => runOne(c, i + j)))
    assert.deepEqual(failures, [], failures.join('\n'))
  })
})
