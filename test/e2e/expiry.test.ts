/**
 * Scopes and keys that expire (until: in the trust file), end to end: a real
 * registry and lookaside on 127.0.0.1, real GPG signatures made by podman
 * push --sign-by, imagetrust applied to a sandbox root, and real podman and
 * skopeo pulls reading it. Until dates are picked relative to the real clock;
 * only check's test-only IMAGETRUST_TEST_NOW moves time forward, to see an
 * until pass after apply with nothing changed on disk.
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type GpgKey, Lab, imagetrust} from '../support/lab.ts'
import {assertMatchesSchema} from '../support/schema.ts'
import {Store} from '../support/store.ts'
import {hashTree} from '../support/tree.ts'

/** A UTC date (YYYY-MM-DD) this many days from today. */
function day(offset: number): string {
  return new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10)
}

interface Drift {
  path: string
  kind: string
  reasons: string[]
  detail?: string
  changes?: Array<{summary: string}>
  entry?: {what: string; name: string; until: string; reason?: string}
}

describe('scopes and keys that expire', () => {
  let lab: Lab
  let store: Store
  let alpha: GpgKey
  let beta: GpgKey
  const images = {byAlpha: '', byBeta: '', soloByAlpha: '', soloUnsigned: '', vendor: ''}

  before(async () => {
    lab = await Lab.started('ite-')
    store = await Store.create()
    ;[alpha, beta] = await Promise.all([lab.makeGpgKey('ealpha'), lab.makeGpgKey('ebeta')])
    await lab.buildImage('localhost/tiny:1', 'expiry tiny')
    images.byAlpha = await lab.push('localhost/tiny:1', 'apps/alpha:1', alpha)
    images.byBeta = await lab.push('localhost/tiny:1', 'apps/beta:1', beta)
    images.soloByAlpha = await lab.push('localhost/tiny:1', 'solo/app:1', alpha)
    images.soloUnsigned = await lab.push('localhost/tiny:1', 'solo/unsigned:1')
    images.vendor = await lab.push('localhost/tiny:1', 'vendor/app:1')
    await writeFile(path.join(lab.dir, 'alpha.asc'), alpha.publicArmored)
    await writeFile(path.join(lab.dir, 'beta.asc'), beta.publicArmored)
    // The vendor's unsigned image, pulled into a throw-away store as a host would have it (audit reads it).
    const acceptAll = path.join(lab.dir, 'accept-all.json')
    await writeFile(acceptAll, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    await store.podman(['pull', '--quiet', '--tls-verify=false', '--signature-policy', acceptAll, images.vendor])
  })

  after(async () => {
    await store?.cleanup()
    await lab?.stop()
  })

  async function newRoot(name: string): Promise<string> {
    const root = path.join(lab.dir, name)
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await copyFile(path.resolve(import.meta.dirname, '../fixtures/distro/debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
    return root
  }

  /** default: reject, apps signed by alpha (and beta), solo signed by alpha only, vendor accepted unsigned until vendorUntil. */
  async function writeTrust(name: string, options: {vendorUntil: string; alphaUntil?: string}): Promise<string> {
    const file = path.join(lab.dir, `${name}.yaml`)
    const alphaUntil = options.alphaUntil ? `, until: ${options.alphaUntil}, reason: "alpha is rotated out"` : ''
    await writeFile(
      file,
      [
        'version: 1',
        'default: reject',
        'keys:',
        `  alpha: {file: alpha.asc, fingerprint: ${alpha.fingerprint}${alphaUntil}}`,
        `  beta: {file: beta.asc, fingerprint: ${beta.fingerprint}}`,
        'scopes:',
        `  "${lab.registry}/apps":`,
        '    policy: signed',
        '    keys: [alpha, beta]',
        `    lookaside: ${lab.lookasideUrl}`,
        `  "${lab.registry}/solo":`,
        '    policy: signed',
        '    keys: [alpha]',
        `    lookaside: ${lab.lookasideUrl}`,
        `    test: {signed: "${images.soloByAlpha}", unsigned: "${images.soloUnsigned}"}`,
        `  "${lab.registry}/vendor":`,
        '    policy: accept',
        `    until: ${options.vendorUntil}`,
        '    reason: "vendor ships unsigned until their CI signs (TICKET-7)"',
        '',
      ].join('\n'),
    )
    return file
  }

  async function check(root: string, config: string, env: NodeJS.ProcessEnv = {}): Promise<{code: number; report: {inSync: boolean; drift: Drift[]; warnings: string[]; basis: string}}> {
    const result = await imagetrust(['check', '--root', root, '-c', config, '--json', '--expiry-warn', '30'], {...process.env, ...env})
    assert.ok(result.code === 0 || result.code === 2, result.stderr)
    const report = JSON.parse(result.stdout)
    assertMatchesSchema('check', report)
    return {code: result.code, report}
  }

  it('an accept exception lets the unsigned image in until its date, then apply closes it; check says expired, with the reason', async () => {
    const root = await newRoot('root-exception')
    const config = await writeTrust('exception', {vendorUntil: day(10)})
    const applied = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(applied.code, 0, applied.stderr)
    assert.equal((await lab.pull(root, images.vendor, 'podman')).code, 0, 'the exception did not let the unsigned vendor image in')

    const warned = await check(root, config)
    assert.equal(warned.code, 0)
    assert.ok(
      warned.report.warnings.some((w) => w.includes(`scope "${lab.registry}/vendor" (accept) expires on ${day(10)}T00:00:00.000Z`) && w.endsWith('vendor ships unsigned until their CI signs (TICKET-7)')),
      warned.report.warnings.join('\n'),
    )

    const status = await imagetrust(['status', '--root', root, '-c', config, '--json'])
    assert.equal(status.code, 0, status.stderr)
    const report = JSON.parse(status.stdout)
    assertMatchesSchema('status', report)
    const vendorScope = report.targets[0].scopes.find((s: {scope: string}) => s.scope === `${lab.registry}/vendor`)
    assert.deepEqual([vendorScope.until, vendorScope.reason], [`${day(10)}T00:00:00.000Z`, 'vendor ships unsigned until their CI signs (TICKET-7)'])
    assert.deepEqual(report.expiring, [{what: 'scope', name: `${lab.registry}/vendor`, until: `${day(10)}T00:00:00.000Z`, reason: 'vendor ships unsigned until their CI signs (TICKET-7)', policy: 'accept', expired: false}])

    // The date passes: written into the past, as time would make it.
    await writeTrust('exception', {vendorUntil: day(-1)})
    const drifted = await check(root, config)
    assert.equal(drifted.code, 2)
    const expired = drifted.report.drift.find((d) => d.reasons.includes('expired'))
    assert.deepEqual(expired?.entry, {what: 'scope', name: `${lab.registry}/vendor`, until: `${day(-1)}T00:00:00.000Z`, reason: 'vendor ships unsigned until their CI signs (TICKET-7)', policy: 'accept'})
    assert.equal(expired?.path, config)
    assert.match(expired?.detail ?? '', /expired on .*: vendor ships unsigned until their CI signs \(TICKET-7\)/)
    // The installed policy still lets it in: that is drift too.
    const content = drifted.report.drift.find((d) => d.path === path.join(root, 'etc/containers/policy.json'))
    assert.deepEqual(content?.reasons, ['content'], JSON.stringify(drifted.report.drift))
    // Not "added by hand": the change says the scope expired.
    assert.match(content?.changes?.[0]?.summary ?? '', /^scope docker:.*\/vendor expired on .* \(vendor ships unsigned until their CI signs \(TICKET-7\)\): the host still has it \(accept\); apply removes it$/)

    const reapplied = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(reapplied.code, 0, reapplied.stderr)
    assert.match(reapplied.stdout, /scope ".*\/vendor" expired on .*: left out of what apply writes/)
    const policy = JSON.parse(await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8'))
    assert.equal(policy.transports.docker[`${lab.registry}/vendor`], undefined)
    const refused = await lab.pull(root, images.vendor, 'podman')
    assert.notEqual(refused.code, 0, 'the expired exception still lets the unsigned image in')
    assert.match(refused.stderr, /Running image docker:\/\/.*vendor\/app:1 is rejected by policy/)

    // After apply: the fast path (nothing changed) still names the stale entry, and nothing else.
    const after = await check(root, config)
    assert.equal(after.code, 2)
    assert.equal(after.report.basis, 'unchanged since apply')
    assert.deepEqual(after.report.drift.map((d) => [d.reasons, d.entry?.name]), [[['expired'], `${lab.registry}/vendor`]])
  })

  it('check notices an until that passes after apply, with nothing changed on disk', async () => {
    const root = await newRoot('root-passing')
    // An RFC 3339 time with an offset, ten days ahead.
    const until = new Date(Date.now() + 10 * 86_400_000)
    const withOffset = new Date(until.getTime() + 2 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, '+02:00')
    const config = await writeTrust('passing', {vendorUntil: withOffset})
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    const before = await check(root, config)
    assert.deepEqual([before.code, before.report.basis], [0, 'unchanged since apply'])
    // Eleven days later (check's test-only clock): the same files, but the exception has ended.
    const later = await check(root, config, {IMAGETRUST_TEST_NOW: new Date(until.getTime() + 86_400_000).toISOString()})
    assert.equal(later.code, 2)
    assert.equal(later.report.basis, 'full plan')
    assert.deepEqual(later.report.drift.map((d) => d.reasons).sort(), [['content'], ['expired']])
  })

  it('an expired key stops being trusted; a scope left with no key refuses everything, loudly', async () => {
    const root = await newRoot('root-key')
    const config = await writeTrust('key', {vendorUntil: day(30), alphaUntil: day(5)})
    assert.equal((await imagetrust(['apply', '--root', root, '-c', config])).code, 0)
    for (const image of [images.byAlpha, images.byBeta, images.soloByAlpha]) assert.equal((await lab.pull(root, image, 'skopeo')).code, 0, image)

    await writeTrust('key', {vendorUntil: day(30), alphaUntil: day(0)})
    const applied = await imagetrust(['apply', '--root', root, '-c', config])
    assert.equal(applied.code, 0, applied.stderr)
    assert.match(applied.stderr, /scope ".*\/solo" REFUSES EVERY IMAGE: its only key\(s\) "alpha" expired/)
    assert.match(applied.stderr, /scope ".*\/apps" no longer trusts expired key\(s\) "alpha"/)
    const refused = await lab.pull(root, images.byAlpha, 'skopeo')
    assert.notEqual(refused.code, 0, 'an image signed only by the expired key was accepted')
    assert.match(refused.stderr, /rejected by policy|Source image rejected/)
    assert.equal((await lab.pull(root, images.byBeta, 'podman')).code, 0, 'the key still in force no longer works')
    const solo = await lab.pull(root, images.soloByAlpha, 'podman')
    assert.notEqual(solo.code, 0)
    assert.match(solo.stderr, /is rejected by policy/)
    const policy = JSON.parse(await readFile(path.join(root, 'etc/containers/policy.json'), 'utf8'))
    assert.deepEqual(policy.transports.docker[`${lab.registry}/solo`], [{type: 'reject'}])
    // verify no longer expects the rejecting scope's signed test image to be accepted; its unsigned one is still refused.
    const verified = await imagetrust(['verify', '--root', root, '-c', config, '--no-tls-verify', '--engine', 'skopeo', '--json'])
    assert.equal(verified.code, 0, verified.stdout + verified.stderr)
    assert.deepEqual(JSON.parse(verified.stdout).results.map((r: {image: string; expect: string; outcome: string}) => [r.image, r.expect, r.outcome]), [[images.soloUnsigned, 'reject', 'confirmed']])

    const drifted = await check(root, config)
    assert.equal(drifted.code, 2)
    assert.deepEqual(
      drifted.report.drift.map((d) => [d.kind, d.reasons, d.entry?.name, d.entry?.reason]),
      [['key', ['expired'], 'alpha', 'alpha is rotated out']],
    )
  })

  it('audit --candidate --at judges against the policy as it will be on that date', async () => {
    const root = await newRoot('root-audit')
    const config = await writeTrust('audit', {vendorUntil: day(20)})
    const audit = async (...extra: string[]) => {
      const result = await imagetrust(['audit', '--root', root, '-c', config, '--no-tls-verify', '--json', ...store.flags, '--candidate', ...extra])
      assert.equal(result.code, 0, result.stderr)
      const report = JSON.parse(result.stdout)
      assertMatchesSchema('audit', report)
      return report as {policy: {at?: string}; images: Array<{reference: string; outcome: string; scope: string | null}>}
    }

    const today = await audit()
    assert.deepEqual(today.images.map((i) => [i.reference, i.outcome]), [[images.vendor, 'accepted']])
    assert.equal(today.policy.at, undefined)
    const later = await audit('--at', day(21))
    assert.deepEqual(later.images.map((i) => [i.reference, i.outcome, i.scope]), [[images.vendor, 'refused', null]])
    assert.equal(later.policy.at, `${day(21)}T00:00:00.000Z`)
    // The day before the until, it still holds.
    assert.equal((await audit('--at', `${day(19)}T23:59:59Z`)).images[0].outcome, 'accepted')

    const bad = await imagetrust(['audit', '--root', root, '-c', config, '--candidate', '--at', '2027-02-30'])
    assert.equal(bad.code, 64, bad.stderr)
    assert.match(bad.stderr, /--at: "2027-02-30" is not a valid date/)
    assert.equal((await imagetrust(['audit', '--root', root, '-c', config, '--at', day(1)])).code, 64)
  })

  it('a malformed until is refused with the trust file and line, exit 1, and nothing written', async () => {
    const root = await newRoot('root-malformed')
    const config = await writeTrust('malformed', {vendorUntil: '2027-01-32'})
    const before = await hashTree(root)
    for (const command of ['apply', 'check', 'plan']) {
      const result = await imagetrust([command, '--root', root, '-c', config])
      assert.equal(result.code, 1, `${command}: ${result.stderr}`)
      assert.match(result.stderr, new RegExp(`${config}:18.*until "2027-01-32" is not a valid date`))
    }

    assert.deepEqual(await hashTree(root), before)
  })
})
