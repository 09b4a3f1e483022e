/**
 * key add / list / remove with keys made by real gpg (ed25519, rsa, expired,
 * revoked, signing subkey, no signing key, secret) and cosign-style PEM keys
 * made with node:crypto. Every refusal has its case, and none writes anything.
 */
import assert from 'node:assert/strict'
import {generateKeyPairSync} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKind, type MadeGpgKey, makeGpgKey, stopGpgAgent} from '../support/gpg.ts'
import {imagetrust, runIsolated} from '../support/lab.ts'
import {hashTree} from '../support/tree.ts'

const TRUST = `# Our image trust, reviewed by the platform team.
version: 1
default: reject   # nothing unsigned
keys: {}
scopes:
  # The apps registry.
  "registry.example.com/apps":
    policy: accept
`

describe('imagetrust key', () => {
  let dir: string
  const keys = {} as Record<GpgKind, MadeGpgKey>

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-keys-'))
    for (const kind of ['ed25519', 'rsa', 'expired', 'revoked', 'subkey-signing', 'no-signing', 'expires-soon'] as const) {
      keys[kind] = await makeGpgKey(dir, kind.replaceAll('-', ''), kind)
      await writeFile(path.join(dir, `${kind}.asc`), keys[kind].publicArmored)
    }

    await writeFile(path.join(dir, 'secret.asc'), keys.ed25519.secretArmored)
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  /** A fresh workspace: trust file, empty root. */
  async function workspace(name: string, trust = TRUST): Promise<{config: string; root: string; ws: string}> {
    const ws = path.join(dir, name)
    await mkdir(path.join(ws, 'root/etc/containers'), {recursive: true})
    await writeFile(path.join(ws, 'root/etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    const config = path.join(ws, 'trust.yaml')
    await writeFile(config, trust)
    return {config, root: path.join(ws, 'root'), ws}
  }

  function key(ws: {config: string; root: string}, args: string[], input?: string) {
    const cli = path.resolve(import.meta.dirname, '../../bin/run.js')
    return runIsolated(process.execPath, [cli, 'key', ...args, '--root', ws.root, '-c', ws.config], {input})
  }

  for (const kind of ['ed25519', 'rsa'] as const) {
    it(`adds a ${kind} key, pinned, keeping the trust file's comments and order`, async () => {
      const ws = await workspace(`add-${kind}`)
      const added = await key(ws, ['add', 'acme', path.join(dir, `${kind}.asc`), '--scope', 'registry.example.com/signed', '--json'])
      assert.equal(added.code, 0, added.stderr)
      const result = JSON.parse(added.stdout)
      assert.equal(result.keys[0].fingerprint, keys[kind].fingerprint)
      assert.match(result.keys[0].algorithm, kind === 'rsa' ? /rsa/ : /eddsa|ed25519/i)
      const text = await readFile(ws.config, 'utf8')
      assert.match(text, /^# Our image trust, reviewed by the platform team\.\nversion: 1\ndefault: reject +# nothing unsigned\nkeys:\n {2}acme:\n/)
      assert.match(text, /# The apps registry\.\n {2}"registry\.example\.com\/apps":/)
      assert.match(text, new RegExp(`acme:\\n\\s+type: gpg\\n\\s+file: keys/acme.asc\\n\\s+fingerprint: ${keys[kind].fingerprint}`))
      assert.match(text, /registry\.example\.com\/signed:\n\s+policy: signed\n\s+keys:\n\s+- acme/)
      assert.match(await readFile(path.join(ws.ws, 'keys/acme.asc'), 'utf8'), /^-----BEGIN PGP PUBLIC KEY BLOCK-----/)
    })
  }

  const REFUSALS: Array<[name: string, source: () => string, extra: string[], message: RegExp]> = [
    ['an expired key', () => path.join(dir, 'expired.asc'), [], /expired on 2020-01-02/],
    ['a revoked key', () => path.join(dir, 'revoked.asc'), [], /is revoked/],
    ['a key that cannot sign', () => path.join(dir, 'no-signing.asc'), [], /has no valid signing-capable key/],
    ['a secret key', () => path.join(dir, 'secret.asc'), [], /is a secret \(private\) key; only public keys are accepted/],
    ['a fingerprint mismatch, showing both', () => path.join(dir, 'ed25519.asc'), ['--fingerprint', '0'.repeat(40)], /pinned: 0{40}\n\s+found: +[0-9A-F]{40}/],
    ['an http:// URL', () => 'http://127.0.0.1:9/k.asc', [], /only fetched over https:\/\//],
    ['an https:// URL without a pin', () => 'https://127.0.0.1:9/k.asc', [], /must be pinned \(there is no trust on first use\)/],
    ['a bogus file', () => path.join(dir, 'gnupg-ed25519/pubring.kbx'), ['--type', 'gpg'], /not a readable OpenPGP public key/],
    ['a missing file', () => path.join(dir, 'nope.asc'), [], /cannot read key file .*nope\.asc: ENOENT/],
    ['a bad key name', () => path.join(dir, 'ed25519.asc'), [], /must match/],
  ]
  for (const [name, source, extra, message] of REFUSALS) {
    it(`refuses ${name}, exit 1, nothing written`, async () => {
      const ws = await workspace(`refuse-${name.replaceAll(/\W+/g, '-')}`)
      const before = await hashTree(ws.ws)
      const keyName = name === 'a bad key name' ? 'Bad Name' : 'k'
      const result = await key(ws, ['add', keyName, source(), ...extra])
      assert.equal(result.code, 1, result.stdout)
      assert.match(result.stderr, message)
      assert.deepEqual(await hashTree(ws.ws), before)
    })
  }

  it('no secret key material reaches the root, the state file, the backups or the output', async () => {
    const ws = await workspace('no-secret')
    const refused = await key(ws, ['add', 'leak', path.join(dir, 'secret.asc'), '--apply'])
    const piped = await key(ws, ['add', 'leak', '-'], keys.ed25519.secretArmored)
    for (const result of [refused, piped]) {
      assert.equal(result.code, 1)
      assert.doesNotMatch(result.stdout + result.stderr, /PRIVATE KEY BLOCK|lQ|xVg/)
    }

    // A good add and apply, so backups and state exist, then look at every byte.
    assert.equal((await key(ws, ['add', 'acme', path.join(dir, 'ed25519.asc'), '--scope', 'registry.example.com/signed', '--apply'])).code, 0)
    const secretBody = keys.ed25519.secretArmored.split('\n').filter((l) => l.length > 40)[1]
    for (const file of Object.keys(await hashTree(ws.ws))) {
      const text = await readFile(path.join(ws.ws, file), 'latin1')
      assert.doesNotMatch(text, /PRIVATE KEY/, file)
      assert.ok(!text.includes(secretBody), `${file} holds secret key bytes`)
    }

    assert.ok((await readdir(path.join(ws.root, 'var/lib/imagetrust/backups'))).length > 0)
  })

  it('warns when only a subkey can sign and containers/image is older than 5.37', async () => {
    const ws = await workspace('subkey')
    const result = await key(ws, ['add', 'sub', path.join(dir, 'subkey-signing.asc')])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /can sign only with a subkey; containers\/image 5\.\d+ .* rejects subkey signatures/)
  })

  it('shows each key of a file with several keys; the pin must list all of them', async () => {
    const ws = await workspace('multi')
    const both = path.join(dir, 'both.asc')
    await writeFile(both, keys.ed25519.publicArmored + keys.rsa.publicArmored)
    const onePin = await key(ws, ['add', 'pair', both, '--fingerprint', keys.ed25519.fingerprint])
    assert.equal(onePin.code, 1)
    assert.match(onePin.stderr, /fingerprint pin does not match/)
    const ok = await key(ws, ['add', 'pair', both, '--fingerprint', keys.ed25519.fingerprint, '--fingerprint', keys.rsa.fingerprint])
    assert.equal(ok.code, 0, ok.stderr)
    assert.ok(ok.stdout.includes(keys.ed25519.fingerprint) && ok.stdout.includes(keys.rsa.fingerprint))
    assert.match(await readFile(ws.config, 'utf8'), new RegExp(`fingerprint:\\n\\s+- ${keys.ed25519.fingerprint}\\n\\s+- ${keys.rsa.fingerprint}`))
  })

  it('reads a key from standard input', async () => {
    const ws = await workspace('stdin')
    const result = await key(ws, ['add', 'piped', '-', '--json'], keys.rsa.publicArmored)
    assert.equal(result.code, 0, result.stderr)
    assert.equal(JSON.parse(result.stdout).keys[0].fingerprint, keys.rsa.fingerprint)
  })

  describe('sigstore public keys (node:crypto PEM)', () => {
    const KINDS: Array<[string, () => {publicKey: string; privateKey: string}]> = [
      ['ECDSA P-256', () => pem(generateKeyPairSync('ec', {namedCurve: 'P-256'}))],
      ['ECDSA P-384', () => pem(generateKeyPairSync('ec', {namedCurve: 'P-384'}))],
      ['Ed25519', () => pem(generateKeyPairSync('ed25519'))],
      ['RSA 3072', () => pem(generateKeyPairSync('rsa', {modulusLength: 3072}))],
    ]
    for (const [name, make] of KINDS) {
      it(`accepts ${name}, refuses its private key`, async () => {
        const ws = await workspace(`sig-${name.replaceAll(/\W/g, '')}`)
        const pair = make()
        await writeFile(path.join(ws.ws, 'cosign.pub'), pair.publicKey)
        await writeFile(path.join(ws.ws, 'cosign.key'), pair.privateKey)
        const refused = await key(ws, ['add', 'cos', path.join(ws.ws, 'cosign.key'), '--type', 'sigstore'])
        assert.equal(refused.code, 1)
        assert.match(refused.stderr, /is a private key; only the public key/)
        const added = await key(ws, ['add', 'cos', path.join(ws.ws, 'cosign.pub'), '--json'])
        assert.equal(added.code, 0, added.stderr)
        assert.equal(JSON.parse(added.stdout).type, 'sigstore')
      })
    }

    it("refuses cosign's encrypted private key format", async () => {
      const ws = await workspace('sig-encrypted')
      const encrypted = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from('{"kdf":{"name":"scrypt"},"cipher":{"name":"nacl/secretbox"},"ciphertext":"AAAA"}').toString('base64')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`
      await writeFile(path.join(ws.ws, 'cosign.key'), encrypted)
      const result = await key(ws, ['add', 'cos', path.join(ws.ws, 'cosign.key'), '--type', 'sigstore'])
      assert.equal(result.code, 1)
      assert.match(result.stderr, /private key/)
    })

    it('refuses P-521, which sigstore does not use', async () => {
      const ws = await workspace('sig-p521')
      await writeFile(path.join(ws.ws, 'k.pub'), pem(generateKeyPairSync('ec', {namedCurve: 'P-521'})).publicKey)
      const result = await key(ws, ['add', 'cos', path.join(ws.ws, 'k.pub'), '--type', 'sigstore'])
      assert.equal(result.code, 1)
      assert.match(result.stderr, /curve secp521r1 is not supported/)
    })

    it('apply writes sigstoreSigned with matchRepository and turns on sigstore attachments', async () => {
      const ws = await workspace('sig-apply')
      await writeFile(path.join(ws.ws, 'cosign.pub'), pem(generateKeyPairSync('ec', {namedCurve: 'P-256'})).publicKey)
      const result = await key(ws, ['add', 'cos', path.join(ws.ws, 'cosign.pub'), '--scope', 'quay.example.com/acme', '--apply'])
      assert.equal(result.code, 0, result.stderr)
      const policy = JSON.parse(await readFile(path.join(ws.root, 'etc/containers/policy.json'), 'utf8'))
      assert.deepEqual(policy.transports.docker['quay.example.com/acme'], [
        {type: 'sigstoreSigned', keyPath: '/etc/pki/containers/cos.pub', signedIdentity: {type: 'matchRepository'}},
      ])
      assert.match(await readFile(path.join(ws.root, 'etc/containers/registries.d/imagetrust.yaml'), 'utf8'), /quay\.example\.com\/acme:\n\s+use-sigstore-attachments: true/)
      assert.match(await readFile(path.join(ws.root, 'etc/pki/containers/cos.pub'), 'utf8'), /^-----BEGIN PUBLIC KEY-----/)
    })
  })

  it('key list shows each key with its status: missing, valid, changed, expires-soon, expired, revoked', async () => {
    const trust = [
      'version: 1',
      'keys:',
      '  good: {file: ../ed25519.asc}',
      '  soon: {file: ../expires-soon.asc}',
      '  old: {file: ../expired.asc}',
      '  gone: {file: ../revoked.asc}',
      'scopes:',
      '  "registry.example.com/a":',
      '    policy: signed',
      '    keys: [good]',
      '',
    ].join('\n')
    const ws = await workspace('list', trust)
    const statuses = async () => {
      const listed = await key(ws, ['list', '--json'])
      assert.equal(listed.code, 0, listed.stderr)
      return Object.fromEntries(JSON.parse(listed.stdout).keys.map((k: {name: string; status: string}) => [k.name, k.status]))
    }

    assert.deepEqual(await statuses(), {good: 'missing', soon: 'missing', old: 'expired', gone: 'revoked'})
    // Apply refuses expired and revoked keys; list them after installing the good ones.
    await writeFile(ws.config, trust.replace(/ {2}old: .*\n {2}gone: .*\n/, ''))
    assert.equal((await imagetrust(['apply', '--root', ws.root, '-c', ws.config])).code, 0)
    await writeFile(ws.config, trust)
    assert.deepEqual(await statuses(), {good: 'valid', soon: 'expires-soon', old: 'expired', gone: 'revoked'})
    await writeFile(path.join(ws.root, 'etc/pki/containers/good.gpg'), keys.rsa.publicArmored)
    const listed = JSON.parse((await key(ws, ['list', '--json'])).stdout).keys[0]
    assert.equal(listed.status, 'changed')
    assert.deepEqual(listed.scopes, ['registry.example.com/a'])
    assert.equal(listed.installedPath, path.join(ws.root, 'etc/pki/containers/good.gpg'))
    assert.equal(listed.keys[0].fingerprint, keys.ed25519.fingerprint)
    assert.deepEqual(listed.keys[0].userIds, ['ed25519 signer <ed25519@example.test>'])
  })

  it('check exits 2 for an expired key and warns about one that expires soon', async () => {
    const ws = await workspace('check-expiry', 'version: 1\nkeys:\n  soon: {file: ../expires-soon.asc}\n')
    assert.equal((await imagetrust(['apply', '--root', ws.root, '-c', ws.config])).code, 0)
    const soon = await imagetrust(['check', '--root', ws.root, '-c', ws.config])
    assert.equal(soon.code, 0)
    assert.match(soon.stderr, /key "soon" .* expires on \d{4}-\d\d-\d\d, in \d day\(s\)/)
    const quiet = await imagetrust(['check', '--root', ws.root, '-c', ws.config, '--expiry-warn', '5'])
    assert.doesNotMatch(quiet.stderr, /expires on/)
    await writeFile(ws.config, 'version: 1\nkeys:\n  soon: {file: ../expires-soon.asc}\n  old: {file: ../expired.asc}\n')
    const expired = await imagetrust(['check', '--root', ws.root, '-c', ws.config, '--json'])
    assert.equal(expired.code, 2)
    const drift = JSON.parse(expired.stdout).drift
    assert.deepEqual(
      drift.filter((d: {reasons: string[]}) => d.reasons.includes('expired')).map((d: {path: string}) => d.path),
      [path.join(ws.root, 'etc/pki/containers/old.gpg')],
    )
  })

  it('key remove refuses while a scope uses the key; --force drops it, but never empties a signed scope', async () => {
    const ws = await workspace('remove')
    assert.equal((await key(ws, ['add', 'a', path.join(dir, 'ed25519.asc'), '--scope', 'registry.example.com/s'])).code, 0)
    assert.equal((await key(ws, ['add', 'b', path.join(dir, 'rsa.asc'), '--scope', 'registry.example.com/s', '--scope', 'registry.example.com/only-b'])).code, 0)
    const refused = await key(ws, ['remove', 'a'])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /key "a" is used by scope\(s\) "registry\.example\.com\/s"/)
    const emptying = await key(ws, ['remove', 'b', '--force'])
    assert.equal(emptying.code, 1)
    assert.match(emptying.stderr, /scope "registry\.example\.com\/only-b" would have no key left/)
    const forced = await key(ws, ['remove', 'a', '--force', '--json'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.deepEqual(JSON.parse(forced.stdout).droppedFrom, ['registry.example.com/s'])
    const text = await readFile(ws.config, 'utf8')
    assert.doesNotMatch(text, /^ {2}a:/m)
    assert.match(text, /^# Our image trust, reviewed by the platform team\.$/m)
    await assert.rejects(readFile(path.join(ws.ws, 'keys/a.asc')), {code: 'ENOENT'})
    assert.equal((await key(ws, ['remove', 'ghost'])).code, 1)
  })

  describe('gpg never reads a value the user gave as one of its options', () => {
    it('key create --uid=--logger-file=FILE makes a key with that user ID and writes no FILE', async () => {
      const {config} = await workspace('uid-option')
      const home = path.join(dir, 'uid-option/gnupg')
      const log = path.join(dir, 'uid-option/LOG')
      try {
        const created = await imagetrust(['key', 'create', 'made', '--gnupg-home', home, '-c', config, `--uid=--logger-file=${log}`, '--json'])
        assert.equal(created.code, 0, created.stdout + created.stderr)
        assert.equal(JSON.parse(created.stdout).uid, `--logger-file=${log}`)
        await assert.rejects(readFile(log), 'gpg took the user ID for --logger-file')
        const listing = await runIsolated('gpg', ['--homedir', home, '--batch', '--with-colons', '--list-keys'])
        assert.ok(listing.stdout.split('\n').some((l) => l.startsWith('uid:') && l.split(':')[9] === `--logger-file=${log}`), listing.stdout)
      } finally {
        await stopGpgAgent(home)
      }
    })

    it('key create refuses a user ID with a newline (exit 64), making no key', async () => {
      const {config} = await workspace('uid-newline')
      const home = path.join(dir, 'uid-newline/gnupg')
      const created = await imagetrust(['key', 'create', 'made', '--gnupg-home', home, '-c', config, '--uid', 'a\nb', '--json'])
      assert.equal(created.code, 64, created.stdout)
      assert.match(JSON.parse(created.stdout).error.message, /one line of printable text/)
    })

    it('init --key gpg:--logger-file=FILE is a key ID that is not found, not an option', async () => {
      const {root} = await workspace('init-option')
      const log = path.join(dir, 'init-option/LOG')
      const home = path.join(dir, 'init-option/gnupg')
      await mkdir(home, {mode: 0o700})
      const init = await imagetrust(['init', '--root', root, '--yes', '--no-apply', '--scope', 'registry.example.com/apps', '--key', `gpg:--logger-file=${log}`, '--lookaside', 'https://sigs.example.com', '--default', 'reject'], {...process.env, GNUPGHOME: home, HOME: path.join(dir, 'init-option')})
      assert.notEqual(init.code, 0)
      await assert.rejects(readFile(log), 'gpg took the key ID for --logger-file')
      assert.match(init.stderr, /no public key "--logger-file=/)
      await stopGpgAgent(home)
    })
  })
})

function pem(pair: {publicKey: {export(o: object): string | Buffer}; privateKey: {export(o: object): string | Buffer}}): {publicKey: string; privateKey: string} {
  return {
    publicKey: String(pair.publicKey.export({type: 'spki', format: 'pem'})),
    privateKey: String(pair.privateKey.export({type: 'pkcs8', format: 'pem'})),
  }
}
