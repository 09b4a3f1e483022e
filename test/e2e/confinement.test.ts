/**
 * --root confines every read and write, as openat2(RESOLVE_IN_ROOT) would:
 * symlinked directories, `..` in paths read from files (state.json, backup
 * manifests, crio.conf) never reach outside the root; such paths that are not
 * ones imagetrust manages are refused with the file and JSON path. Inputs are
 * bounded: a FIFO or an endless key never hangs or fills the memory.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {symlinkSync, writeFileSync} from 'node:fs'
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {makeKey} from '../support/hostroot.ts'
import {imagetrust, TIMED_OUT} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

const DEBIAN = '{\n    "default": [\n        {\n            "type": "insecureAcceptAnything"\n        }\n    ]\n}\n'
/** Enough `..` to climb from any sandbox to / when joined naively. */
const CLIMB = '/..'.repeat(24)
const escape = (s: string) => s.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex')

describe('confinement under --root', () => {
  let dir: string
  /** Outside every root: nothing may appear, change or vanish here. */
  let outside: string
  let key: {publicKey: string; fingerprint: string}

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-confine-'))
    outside = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-outside-'))
    await writeFile(path.join(outside, 'victim'), 'not yours\n')
    await writeFile(path.join(outside, 'secret'), 'do not copy me\n')
    key = await makeKey('acme')
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
    await rm(outside, {recursive: true, force: true})
  })

  /** A sandbox with Debian's policy.json and a trust file trusting one key (or the given trust file). */
  async function sandbox(name: string, trust?: string): Promise<{root: string; config: string; ws: string}> {
    const ws = path.join(dir, name)
    const root = path.join(ws, 'root')
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/containers/policy.json'), DEBIAN)
    await writeFile(path.join(ws, 'acme.asc'), key.publicKey)
    const config = path.join(ws, 'trust.yaml')
    await writeFile(
      config,
      trust ??
        ['version: 1', 'default: reject', 'keys:', `  acme: {file: acme.asc, fingerprint: ${key.fingerprint}}`, 'scopes:', '  "registry.example.com/apps":', '    policy: signed', '    keys: [acme]', '    lookaside: https://sigs.example.com/apps', ''].join('\n'),
    )
    return {root, config, ws}
  }

  async function assertOutsideUntouched(before: Record<string, string>): Promise<void> {
    assert.deepEqual(await hashTree(outside), before, `something was written, changed or removed in ${outside}`)
  }

  // Each target exists outside, holding bait: what a naive follow would write beside, or sweep away as a dead run's leftover.
  for (const [what, hostDir, bait, written] of [
    ['the key directory', 'etc/pki/containers', '.acme.gpg.imagetrust-999999999-0a1b2c3d', 'acme.gpg'],
    ['registries.d', 'etc/containers/registries.d', '.imagetrust.yaml.imagetrust-999999999-0a1b2c3d', 'imagetrust.yaml'],
    ['the state directory', 'var/lib/imagetrust', 'lock.999999999', 'state.json'],
    ['the backups directory', 'var/lib/imagetrust/backups', 'precious/data', undefined],
  ] as const) {
    it(`${what} symlinked out of the root: apply writes inside the root (the link re-rooted), touches nothing outside`, async () => {
      const {root, config} = await sandbox(`link-${hostDir.replaceAll('/', '-')}`)
      const target = path.join(outside, hostDir.replaceAll('/', '-'))
      await mkdir(path.dirname(path.join(target, bait)), {recursive: true})
      await writeFile(path.join(target, bait), 'bait\n')
      await mkdir(path.dirname(path.join(root, hostDir)), {recursive: true})
      await symlink(target, path.join(root, hostDir))
      const before = await hashTree(outside)
      const result = await imagetrust(['apply', '--root', root, '-c', config])
      assert.equal(result.code, 0, result.stderr)
      await assertOutsideUntouched(before)
      // The absolute link is read as the host would read it from the root: /outside/..., under the root.
      const inRoot = await readdir(path.join(root, target))
      assert.ok(written ? inRoot.includes(written) : inRoot.length === 1, `${written ?? 'a backup'} not in ${path.join(root, target)}: ${inRoot.join(', ')}`)
    })
  }

  it('a tampered state.json (keyFiles, generatedPolicies with ..) is refused, located; nothing outside is deleted', async () => {
    for (const [field, value] of [
      ['keyFiles', `${CLIMB}${outside}/victim`],
      ['keyFiles', '/etc/pki/containers/../../../etc/shadow'],
      ['generatedPolicies', `${CLIMB}${outside}/victim`],
      ['generatedPolicies', '/etc/crio/policies/../../../tmp/x.json'],
    ]) {
      const {root, config} = await sandbox(`state-${field}-${value.length}`)
      assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
      const statePath = path.join(root, 'var/lib/imagetrust/state.json')
      const state = JSON.parse(await readFile(statePath, 'utf8'))
      state[field] = [value]
      await writeFile(statePath, JSON.stringify(state, null, 2) + '\n')
      const [rootBefore, outsideBefore] = [await hashTree(root), await hashTree(outside)]
      // A trust file without the key: apply would delete every key file the state lists.
      await writeFile(config, 'version: 1\ndefault: reject\n')
      const result = await imagetrust(['apply', '--root', root, '-c', config])
      assert.equal(result.code, 1, `${field}: ${value}: ${result.stderr}`)
      const line = (await readFile(statePath, 'utf8')).split('\n').findIndex((l) => l.includes(`"${field}"`)) + 2
      assert.match(result.stderr, new RegExp(`${escape(statePath)}:${line}:\\d+ \\(\\$\\.${field}\\[0\\]\\): ".*" is not`))
      await assertOutsideUntouched(outsideBefore)
      assert.deepEqual(await hashTree(root), rootBefore)
    }
  })

  it('a malformed state.json is a located error, exit 1, the host unchanged', async () => {
    for (const [field, value, message] of [
      ['keyFiles', [1], /\(\$\.keyFiles\[0\]\): expected a string, got 1/],
      ['keyFiles', null, /\(\$\.keyFiles\): expected an array, got null/],
      ['policies', {'/etc/containers/policy.json': {scopes: 'x', localTransports: []}}, /\(\$\.policies\["\/etc\/containers\/policy\.json"\]\.scopes\): expected an array, got "x"/],
      ['registriesD', {ownedScopes: [], foreignEdits: [{file: 1}], carriedOver: []}, /\(\$\.registriesD\.foreignEdits\[0\]\): "scope" is missing/],
    ] as const) {
      const {root, config} = await sandbox(`bad-state-${field}-${JSON.stringify(value).length}`)
      assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
      const statePath = path.join(root, 'var/lib/imagetrust/state.json')
      const state = JSON.parse(await readFile(statePath, 'utf8'))
      state[field] = value
      await writeFile(statePath, JSON.stringify(state, null, 2) + '\n')
      const before = await hashTree(root)
      const result = await imagetrust(['apply', '--root', root, '-c', config])
      assert.equal(result.code, 1, result.stderr)
      assert.match(result.stderr, new RegExp(`${escape(statePath)}:\\d+:\\d+ `))
      assert.match(result.stderr, message)
      assert.doesNotMatch(result.stderr, /TypeError/)
      assert.deepEqual(await hashTree(root), before)
      // The lock was released: the next run is not blocked.
      assert.doesNotMatch((await imagetrust(['apply', '--root', root, '-c', config, '--lock-timeout', '1'])).stderr, /holds the lock/)
    }
  })

  /** A sandbox after one apply, whose newest backup manifest `edit` changes. */
  async function withBackup(name: string, edit: (manifest: {files: Array<Record<string, unknown>>} & Record<string, unknown>) => void) {
    const {root, config} = await sandbox(name)
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    const backups = path.join(root, 'var/lib/imagetrust/backups')
    const [id] = await readdir(backups)
    const manifestPath = path.join(backups, id, 'manifest.json')
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'))
    edit(manifest)
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2) + '\n')
    return {root, manifestPath}
  }

  it('a tampered backup manifest (hostPath or blob leading out) is refused by rollback, located; nothing outside is read or written', async () => {
    const cases: Array<[string, (m: {files: Array<Record<string, unknown>>}) => void, RegExp]> = [
      // Would delete the victim (it "did not exist" before the apply).
      ['hostPath', (m) => m.files.push({hostPath: `${CLIMB}${outside}/victim`, existed: false, afterSha256: sha256('not yours\n')}), /\(\$\.files\[\d+\]\.hostPath\): ".*" is not a file imagetrust manages/],
      // Would write the policy's old content over the victim.
      ['hostPath', (m) => (m.files.find((f) => f.blob)!.hostPath = `/etc/containers/../../../../../../../..${outside}/victim`), /\.hostPath\): ".*" is not a file imagetrust manages/],
      // Would copy the secret into the root's policy.json.
      ['blob', (m) => (m.files.find((f) => f.blob)!.blob = `../../../../../../../../../../../../..${outside}/secret`), /\.blob\): a blob is a file name inside the backup directory/],
    ]
    for (const [i, [field, edit, message]] of cases.entries()) {
      const {root, manifestPath} = await withBackup(`manifest-${i}`, edit)
      const [rootBefore, outsideBefore] = [await hashTree(root), await hashTree(outside)]
      const result = await imagetrust(['rollback', '--root', root, '--force'])
      assert.equal(result.code, 1, `${field}: ${result.stderr}${result.stdout}`)
      assert.match(result.stderr, new RegExp(`${escape(manifestPath)}:\\d+:\\d+ `))
      assert.match(result.stderr, message)
      await assertOutsideUntouched(outsideBefore)
      assert.deepEqual(await hashTree(root), rootBefore)
      assert.doesNotMatch(await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8'), /do not copy me/)
    }
  })

  it('a malformed backup manifest ("files": null, a wrong id) is a located error, exit 1, the host unchanged', async () => {
    for (const [i, [edit, message]] of [
      [(m: Record<string, unknown>) => (m.files = null), /\(\$\.files\): expected an array, got null/],
      [(m: Record<string, unknown>) => (m.id = '../../../..'), /\(\$\.id\): the id "\.\.\/\.\.\/\.\.\/\.\." is not its directory's name/],
      [(m: {files: Array<Record<string, unknown>>}) => (m.files[0].existed = 'yes'), /\(\$\.files\[0\]\.existed\): expected true or false, got "yes"/],
    ].entries()) {
      const {root, manifestPath} = await withBackup(`bad-manifest-${i}`, edit as (m: Record<string, unknown>) => void)
      const before = await hashTree(root)
      const result = await imagetrust(['rollback', '--root', root])
      assert.equal(result.code, 1, result.stderr)
      assert.match(result.stderr, new RegExp(`${escape(manifestPath)}:\\d+:\\d+ `))
      assert.match(result.stderr, message as RegExp)
      assert.doesNotMatch(result.stderr, /TypeError/)
      assert.deepEqual(await hashTree(root), before)
    }
  })

  it("crio.conf's signature_policy with .. stays in the root", async () => {
    const {root, config} = await sandbox('crio-climb')
    await mkdir(path.join(root, 'etc/crio'), {recursive: true})
    await writeFile(path.join(root, 'etc/crio/crio.conf'), `[crio.image]\nsignature_policy = "${CLIMB}${outside}/p.json"\n`)
    const before = await hashTree(outside)
    const result = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(result.code, 0, result.stderr)
    await assertOutsideUntouched(before)
    // Written where CRI-O, reading from the root, would find it.
    JSON.parse(await readFile(path.join(root, outside, 'p.json'), 'utf8'))
  })

  for (const [what, make, message] of [
    ['a FIFO', (file: string) => execFileSync('mkfifo', [file]), /is a FIFO, not a regular file/],
    ['/dev/zero', (file: string) => symlinkSync('/dev/zero', file), /is a character device, not a regular file/],
    ['a 2 MiB file', (file: string) => writeFileSync(file, Buffer.alloc(2 * 1024 * 1024, 'A')), /is larger than 1 MiB/],
  ] as const) {
    it(`a key file that is ${what} is refused at once, located, the host unchanged`, async () => {
      const {root, config, ws} = await sandbox(`key-${what.replaceAll(/\W/g, '')}`)
      const keyFile = path.join(ws, 'acme.asc')
      await rm(keyFile)
      make(keyFile)
      const before = await hashTree(root)
      const started = Date.now()
      const result = await imagetrust(['apply', '--root', root, '-c', config], undefined, {timeoutMs: 30_000})
      assert.notEqual(result.code, TIMED_OUT, 'apply hung')
      assert.equal(result.code, 1, result.stderr)
      assert.match(result.stderr, new RegExp(`${escape(config)}:4: key "acme": ${escape(keyFile)} `))
      assert.match(result.stderr, message)
      assert.ok(Date.now() - started < 20_000)
      assert.deepEqual(await hashTree(root), before)
    })
  }
})
