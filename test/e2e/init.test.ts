/**
 * `imagetrust init` end to end: the wizard driven in a real pseudo-terminal
 * (tmux), picking a key from a GnuPG keyring; the sandbox root it leaves
 * enforces (real skopeo pulls); Ctrl-C at three steps writes nothing; the
 * --yes form writes the same bytes; no terminal names every missing flag;
 * re-running on an existing trust file keeps its comments.
 */
import assert from 'node:assert/strict'
import {generateKeyPairSync} from 'node:crypto'
import {copyFile, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, REPO_ROOT, imagetrust} from '../support/lab.ts'
import {isolatedCli, Tmux} from '../support/tmux.ts'
import {hashTree} from '../support/tree.ts'

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/distro')
/** An accept exception's end, a month from now (a UTC date). */
const UNTIL = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10)
const REASON = 'vendor CI signs from next month'

describe('imagetrust init', () => {
  let lab: Lab
  let alpha: GpgKey
  let scope: string
  const images = {signed: '', unsigned: '', vendor: ''}
  const sessions: Tmux[] = []
  let wizardRoot = ''

  before(async () => {
    lab = await Lab.started('imagetrust-init-')
    alpha = await lab.makeGpgKey('alpha')
    await lab.buildImage('localhost/tiny:1', 'init tiny')
    ;[images.signed, images.unsigned, images.vendor] = await Promise.all([
      lab.push('localhost/tiny:1', 'apps/signed:1', alpha),
      lab.push('localhost/tiny:1', 'apps/unsigned:1'),
      lab.push('localhost/tiny:1', 'vendor/app:1'),
    ])
    scope = `${lab.registry}/apps`
  })

  after(async () => {
    for (const session of sessions) await session.kill()
    await lab?.stop()
  })

  async function newRoot(name: string): Promise<string> {
    const root = path.join(lab.dir, name)
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await copyFile(path.join(FIXTURES, 'debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
    return root
  }

  const env = () => ({GNUPGHOME: alpha.home, HOME: path.join(lab.dir, 'init-home'), TERM: 'xterm-256color'})

  async function wizard(name: string, root: string): Promise<Tmux> {
    await mkdir(env().HOME, {recursive: true})
    const command = await isolatedCli(lab.dir, name, ['init', '--root', root, '--no-tls-verify', '--engine', 'skopeo'], REPO_ROOT)
    const session = await Tmux.start(lab.dir, name, command, env())
    sessions.push(session)
    return session
  }

  /** Answers steps 2 to 6 the way a user would, up to the plan question. */
  async function answerUpToPlan(t: Tmux, stopAt?: 'scope' | 'key-confirm'): Promise<void> {
    await t.waitFor(/Registry or namespace to protect:/)
    if (stopAt === 'scope') return
    // Typed scope syntax is checked as it is typed.
    await t.send('reg.example.com/UP')
    await t.waitFor(/reg\.example\.com\/UP +✗ invalid scope .*invalid repository path component "UP"/)
    await t.send(...Array.from({length: 'reg.example.com/UP'.length}, () => 'BSpace'))
    await t.answer(scope)
    await t.waitFor(/Protect another registry or namespace\?/)
    await t.answer('n')
    await t.waitFor(/Which key signs the images of/)
    await t.answer('') // first choice: the GnuPG keyring
    await t.waitFor(/Pick the key:/)
    await t.waitFor(new RegExp(alpha.fingerprint))
    await t.answer('')
    const shown = await t.waitFor(/Trust this key for/)
    assert.match(shown, new RegExp(`fingerprint: ${alpha.fingerprint.replaceAll(/(.{4})/g, '$1 ').trim()}`))
    assert.match(shown, /user IDs: +alpha signer <alpha@example.test>/)
    assert.match(shown, /algorithm: +\S+/)
    assert.match(shown, /expires: +never/)
    if (stopAt === 'key-confirm') return
    await t.answer('y')
    await t.waitFor(/Name for this key/)
    await t.answer('')
    await t.waitFor(/Lookaside URL/)
    await t.answer(lab.lookasideUrl)
    await t.waitFor(/Default for unlisted registries:/)
    const explained = await t.screen()
    assert.match(explained, /Local transports .* stay open/)
    assert.match(explained, /Impact of reject/)
    await t.answer('') // reject
    // An exception: the vendor's unsigned images are accepted for a month.
    await t.waitFor(/Accept a registry or namespace unsigned for a while/)
    await t.answer('y')
    await t.waitFor(/Registry or namespace to accept unsigned:/)
    await t.answer(`${lab.registry}/vendor`)
    await t.waitFor(/Accept .*\/vendor unsigned until:/)
    await t.answer('2020-01-01')
    await t.waitFor(/has already passed/)
    await t.send(...Array.from({length: 10}, () => 'BSpace'))
    await t.answer(UNTIL)
    await t.waitFor(/Why/)
    await t.answer(REASON)
    await t.waitFor(/Another exception\?/)
    await t.answer('n')
    await t.waitFor(/Signed test image under/)
    await t.answer(images.signed)
    await t.waitFor(/Unsigned test image under/)
    await t.answer(images.unsigned)
    await t.waitFor(/Write the trust file and apply this plan\?/)
  }

  it('the wizard in a real terminal: keyring key confirmed, trust file, coloured plan, apply, verify; the root enforces', async () => {
    const root = await newRoot('root-wizard')
    const t = await wizard('full', root)
    await answerUpToPlan(t)
    const plan = await t.screen()
    assert.match(plan, /\+\+\+ .*etc\/containers\/policy\.json/)
    assert.match(plan, /# What happens to an image from a registry that no scope below lists/)
    // The diff is coloured on a terminal: added lines green.
    assert.match(await t.screen({escapes: true}), /\u001B\[32m\+/)
    await t.answer('') // write and apply
    const status = await t.waitExit(90_000)
    const screen = await t.screen()
    assert.equal(status, 0, screen)
    assert.match(screen, /Applied: \d+ file\(s\) changed/)
    assert.match(screen, /2 confirmed, 0 not enforced, 0 broken/)
    assert.match(screen, /imagetrust check.*timer/)
    assert.match(screen, /Ansible role/)
    assert.match(screen, /key add/)
    wizardRoot = root

    const trust = await readFile(path.join(root, 'etc/imagetrust/trust.yaml'), 'utf8')
    assert.match(trust, new RegExp(`fingerprint: ${alpha.fingerprint}`))
    assert.match(trust, /^default: reject$/m)
    const good = await lab.pull(root, images.signed, 'skopeo')
    assert.equal(good.code, 0, `signed image refused: ${good.stderr}`)
    const bad = await lab.pull(root, images.unsigned, 'skopeo')
    assert.notEqual(bad.code, 0, 'the unsigned image was accepted')
    assert.match(bad.stderr, /A signature was required, but no signature exists/)
    // The exception lets the vendor's unsigned image in, until its date.
    assert.match(trust, new RegExp(`"${lab.registry}/vendor":\\n    policy: accept\\n    until: ${UNTIL}\\n    reason: "${REASON}"`))
    assert.equal((await lab.pull(root, images.vendor, 'skopeo')).code, 0, 'the exception did not let the vendor image in')
  })

  it('--yes with flags writes the same trust file and key copy as the prompts, byte for byte', async () => {
    assert.ok(wizardRoot, 'needs the wizard run')
    const root = await newRoot('root-yes')
    const result = await imagetrust(
      [
        'init', '--root', root, '--yes', '--no-tls-verify', '--engine', 'skopeo',
        '--scope', scope, '--key', `gpg:${alpha.fingerprint}`, '--lookaside', lab.lookasideUrl, '--default', 'reject',
        '--test-signed', images.signed, '--test-unsigned', images.unsigned,
        '--accept', `${lab.registry}/vendor`, '--until', UNTIL, '--reason', REASON,
      ],
      {...process.env, ...env()},
    )
    assert.equal(result.code, 0, result.stderr + result.stdout)
    for (const file of ['etc/imagetrust/trust.yaml', 'etc/imagetrust/keys/alpha.asc', 'etc/containers/policy.json', 'etc/containers/registries.d/imagetrust.yaml']) {
      assert.equal(await readFile(path.join(root, file), 'utf8'), await readFile(path.join(wizardRoot, file), 'utf8'), file)
    }
  })

  for (const step of ['scope', 'key-confirm', 'plan'] as const) {
    it(`Ctrl-C at the ${step} step changes no file`, async () => {
      const root = await newRoot(`root-cancel-${step}`)
      const before = await hashTree(lab.dir, {exclude: /^(tmux|layer-|isolated-|registry-data|lookaside|podman|init-home|signer-home|gnupg-|etc-upper-)/})
      const t = await wizard(`cancel-${step}`, root)
      await answerUpToPlan(t, step === 'plan' ? undefined : step)
      await t.send('C-c')
      const status = await t.waitExit(20_000)
      const screen = await t.screen()
      assert.equal(status, 1, screen)
      assert.match(screen, /nothing was written, the host is unchanged/)
      assert.deepEqual(await hashTree(lab.dir, {exclude: /^(tmux|layer-|isolated-|registry-data|lookaside|podman|init-home|signer-home|gnupg-|etc-upper-)/}), before)
    })
  }

  it('with no terminal and no --yes, names every missing flag and exits 1 without waiting', async () => {
    const root = await newRoot('root-noterm')
    const before = await hashTree(root)
    const none = await imagetrust(['init', '--root', root], {...process.env, ...env()})
    assert.equal(none.code, 1)
    for (const flag of ['--scope', '--key', '--lookaside', '--default', '--yes']) assert.match(none.stderr, new RegExp(`${flag}\\b`), none.stderr)
    const some = await imagetrust(['init', '--root', root, '--scope', scope, '--default', 'reject'], {...process.env, ...env()})
    assert.equal(some.code, 1)
    assert.match(some.stderr, /missing --key, --lookaside \(or --sigstore-attachments\), --yes/)
    const yes = await imagetrust(['init', '--root', root, '--yes', '--scope', scope], {...process.env, ...env()})
    assert.equal(yes.code, 1)
    assert.match(yes.stderr, /missing --key, --lookaside \(or --sigstore-attachments\), --default/)
    assert.deepEqual(await hashTree(root), before)
  })

  it('re-running on an existing trust file adds a scope and keeps every comment', async () => {
    const root = await newRoot('root-rerun')
    const config = path.join(root, 'etc/imagetrust/trust.yaml')
    const first = await imagetrust(['init', '--root', root, '--yes', '--no-verify', '--scope', scope, '--key', `gpg:${alpha.fingerprint}`, '--lookaside', lab.lookasideUrl, '--default', 'reject'], {...process.env, ...env()})
    assert.equal(first.code, 0, first.stderr)
    const handWritten = `${await readFile(config, 'utf8')}# ops: keep this note (hand-written)\n`.replace('keys:\n', 'keys: # ops: pinned keys only\n')
    await writeFile(config, handWritten)
    const again = await imagetrust(['init', '--root', root, '--yes', '--no-verify', '--scope', `${lab.registry}/other`, '--key', `gpg:${alpha.fingerprint}`, '--lookaside', lab.lookasideUrl], {...process.env, ...env()})
    assert.equal(again.code, 0, again.stderr)
    const after = await readFile(config, 'utf8')
    const comments = (text: string) => text.split('\n').flatMap((line) => (line.includes('#') ? [line.slice(line.indexOf('#')).trim()] : []))
    for (const comment of comments(handWritten)) assert.ok(comments(after).includes(comment), `comment lost: ${comment}\n${after}`)
    assert.match(after, new RegExp(`"?${lab.registry}/other"?:\\n    policy: signed\\n    keys: \\[alpha\\]`))
    assert.equal((after.match(/^ {2}alpha:/gm) ?? []).length, 1, 'the same key was added twice')
  })

  it('the wizard on an existing trust file adds a scope (same key recognised), keeping every comment', async () => {
    const root = await newRoot('root-wizard-edit')
    const config = path.join(root, 'etc/imagetrust/trust.yaml')
    const first = await imagetrust(['init', '--root', root, '--yes', '--no-verify', '--scope', scope, '--key', `gpg:${alpha.fingerprint}`, '--lookaside', lab.lookasideUrl, '--default', 'reject'], {...process.env, ...env()})
    assert.equal(first.code, 0, first.stderr)
    const handWritten = `${await readFile(config, 'utf8')}# ops: hand-written note\n`
    await writeFile(config, handWritten)
    const t = await wizard('edit', root)
    await t.waitFor(/already has a trust file/)
    await t.waitFor(/What do you want to do\?/)
    await t.answer('') // add a scope
    await t.waitFor(/Registry or namespace to protect:/)
    await t.answer(`${lab.registry}/more`)
    await t.waitFor(/Protect another registry or namespace\?/)
    await t.answer('n')
    await t.waitFor(/Which key signs the images of/)
    await t.answer('')
    await t.waitFor(/Pick the key:/)
    await t.answer('')
    await t.waitFor(/Trust this key for/)
    await t.answer('y')
    await t.waitFor(/This is the key "alpha" already listed/)
    await t.waitFor(/Lookaside URL/)
    await t.answer(lab.lookasideUrl)
    await t.waitFor(/5\. Exceptions/)
    await t.waitFor(/Accept a registry or namespace unsigned for a while/)
    await t.answer('')
    await t.waitFor(/Signed test image under/)
    await t.answer('')
    await t.waitFor(/Unsigned test image under/)
    await t.answer('')
    await t.waitFor(/Write the trust file and apply this plan\?/)
    await t.answer('')
    const status = await t.waitExit(60_000)
    assert.equal(status, 0, await t.screen())
    const after = await readFile(config, 'utf8')
    const comments = (text: string) => text.split('\n').flatMap((line) => (line.includes('#') ? [line.slice(line.indexOf('#')).trim()] : []))
    for (const comment of comments(handWritten)) assert.ok(comments(after).includes(comment), `comment lost: ${comment}\n${after}`)
    assert.match(after, new RegExp(`${lab.registry}/more"?:\\n    policy: signed\\n    keys: \\[alpha\\]`))
    assert.equal((after.match(/^ {2}alpha:/gm) ?? []).length, 1)
    assert.match(await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8'), new RegExp(`"${lab.registry}/more"`))
  })

  it('--yes --accept puts until and reason on an accept scope (new, or already there); a bad or past until is a usage error', async () => {
    const root = await newRoot('root-exception')
    const config = path.join(root, 'etc/imagetrust/trust.yaml')
    await mkdir(path.dirname(config), {recursive: true})
    await writeFile(config, `version: 1\ndefault: reject\nscopes:\n  # ops: the legacy registry, for now\n  "${lab.registry}/legacy":\n    policy: accept\n`)
    const before = await hashTree(root)
    for (const [until, message] of [['2027-02-30', /--until: until "2027-02-30" is not a valid date/], ['2020-01-01', /has already passed/]] as const) {
      const bad = await imagetrust(['init', '--root', root, '--yes', '--no-verify', '--accept', `${lab.registry}/legacy`, '--until', until], {...process.env, ...env()})
      assert.equal(bad.code, 64, bad.stderr)
      assert.match(bad.stderr, message)
    }

    assert.equal((await imagetrust(['init', '--root', root, '--yes', '--accept', `${lab.registry}/legacy`], {...process.env, ...env()})).code, 1)
    assert.deepEqual(await hashTree(root), before)
    const result = await imagetrust(
      ['init', '--root', root, '--yes', '--no-verify', '--accept', `${lab.registry}/legacy`, '--accept', `${lab.registry}/vendor`, '--until', UNTIL, '--reason', REASON],
      {...process.env, ...env()},
    )
    assert.equal(result.code, 0, result.stderr)
    const after = await readFile(config, 'utf8')
    assert.match(after, /# ops: the legacy registry, for now/)
    for (const name of ['legacy', 'vendor']) assert.match(after, new RegExp(`${lab.registry}/${name}"?:\\n    policy: accept\\n    until: "?${UNTIL}"?\\n    reason: "?${REASON}"?`), after)
    assert.equal((await lab.pull(root, images.vendor, 'skopeo')).code, 0)
  })

  it('--yes with a sigstore public key and attachments; --no-apply writes only the trust file and key copy', async () => {
    const root = await newRoot('root-sigstore')
    const before = await hashTree(path.join(root, 'etc/containers'))
    const pem = generateKeyPairSync('ec', {namedCurve: 'P-256'}).publicKey.export({type: 'spki', format: 'pem'}) as string
    await writeFile(path.join(lab.dir, 'cosign.pub'), pem)
    const result = await imagetrust(['init', '--root', root, '--yes', '--no-apply', '--scope', 'quay.example.com/acme', '--key', path.join(lab.dir, 'cosign.pub'), '--key-name', 'cosign', '--sigstore-attachments', '--default', 'reject'], {...process.env, ...env()})
    assert.equal(result.code, 0, result.stderr)
    const trust = await readFile(path.join(root, 'etc/imagetrust/trust.yaml'), 'utf8')
    assert.match(trust, /cosign:\n {4}type: sigstore\n {4}file: keys\/cosign.pub/)
    assert.match(trust, /sigstoreAttachments: true/)
    assert.equal(await readFile(path.join(root, 'etc/imagetrust/keys/cosign.pub'), 'utf8'), pem)
    assert.deepEqual(await hashTree(path.join(root, 'etc/containers')), before)
    assert.match(result.stdout, /Not applied: run `imagetrust apply`/)
  })
})
