/**
 * planRegistries across directories: where each trust-file section goes when
 * vendor directories define scopes (an override of the same name, never a
 * second definition), what an apply with an override leaves in state.json,
 * how it is released, and what is refused. Pure: files are built in memory,
 * views given as the engine view would give them.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {capabilitiesFor} from '../../src/host/capabilities.ts'
import {systemLayout, userLayout} from '../../src/host/paths.ts'
import type {HostSnapshot} from '../../src/host/snapshot.ts'
import {emptyState, type OwnershipState} from '../../src/host/state.ts'
import {contentDigest} from '../../src/plan/ownership.ts'
import {planRegistries, type RegistriesPlan} from '../../src/plan/plan-registries.ts'
import type {RegistriesView} from '../../src/registries-d/layers.ts'
import {parseRegistriesFile, type RegistriesFile} from '../../src/registries-d/read.ts'
import type {TrustFile} from '../../src/trustfile/types.ts'

const USR = '/usr/share/containers/registries.d'
const USR_ROOTFUL = '/usr/share/containers/registries.rootful.d'
const ETC = '/etc/containers/registries.d'
const ETC_ROOTFUL = '/etc/containers/registries.rootful.d'
const ROOT_HOME = '/root/.config/containers/registries.d'
const USER_HOME = '/home/u/.config/containers/registries.d'
const OURS = 'https://sigs.example.com'

const PODMAN6: RegistriesView = {label: 'podman 6.0.0 (containers/image 5.40)', merge: 'by-name', dirs: [USR, USR_ROOTFUL, ETC, ETC_ROOTFUL, ROOT_HOME]}
const CRIO: RegistriesView = {label: 'crio 1.36.3 (containers/image 5.38)', merge: 'single', dirs: [ETC, ROOT_HOME]}
const USER_PODMAN6: RegistriesView = {label: 'podman 6.0.0 (containers/image 5.40)', merge: 'by-name', dirs: [USR, USR_ROOTFUL, ETC, ETC_ROOTFUL, USER_HOME]}
const USER_SKOPEO19: RegistriesView = {label: 'skopeo 1.9.3 (containers/image 5.22)', merge: 'single', dirs: [ETC, USER_HOME]}

const VENDOR = ['# shipped by the distribution', 'docker:', '  registry.example.com/apps:', '    lookaside: https://vendor.example/sigs', '  registry.vendor.example:', '    lookaside: https://vendor.example/other', ''].join('\n')

function trust(scopes: string[]): TrustFile {
  return {
    version: 1,
    localTransports: 'accept',
    keys: [],
    scopes: scopes.map((scope, i) => ({scope, policy: 'accept', keys: [], lookaside: OURS, line: 10 + i})),
    crioNamespaces: [],
    file: '/work/trust.yaml',
    dir: '/work',
  }
}

async function dirsOf(layout: Record<string, Record<string, string>>): Promise<Map<string, RegistriesFile[]>> {
  const dirs = new Map<string, RegistriesFile[]>()
  for (const [dir, files] of Object.entries(layout)) {
    dirs.set(dir, await Promise.all(Object.entries(files).map(async ([name, text]) => (await parseRegistriesFile(name, `${dir}/${name}`, text)).file)))
  }

  return dirs
}

interface Case {
  layout: Record<string, Record<string, string>>
  views: RegistriesView[]
  scopes: string[]
  user?: boolean
  state?: OwnershipState
}

async function planFor(c: Case): Promise<RegistriesPlan> {
  const layout = c.user ? userLayout('/home/u') : systemLayout('/root')
  const dirs = await dirsOf(c.layout)
  const managedFiles = dirs.get(layout.registriesD) ?? []
  const host = {
    registriesD: {dirHostPath: layout.registriesD, files: managedFiles, warnings: []},
    state: {file: {hostPath: '/var/lib/imagetrust/state.json', realPath: '/x', content: null}, value: c.state ?? null},
  } as unknown as HostSnapshot
  return planRegistries({
    trust: trust(c.scopes),
    host,
    keysByName: new Map(),
    capabilities: capabilitiesFor([5, 40], 'test'),
    layout,
    previous: c.state ?? emptyState(),
    registries: {views: c.views, dirs},
  })
}

/** The state an apply of this plan leaves: what the next plan reads. */
function stateAfter(planned: RegistriesPlan): OwnershipState {
  const files = Object.fromEntries(planned.ownedFiles.map((f) => [f.hostPath, contentDigest(f.text)]))
  return {...emptyState(), registriesD: planned.state, files}
}

/** The layout after the plan's changes. */
function applied(layout: Record<string, Record<string, string>>, planned: RegistriesPlan): Record<string, Record<string, string>> {
  const out = structuredClone(layout)
  for (const change of planned.changes) {
    const dir = change.hostPath.slice(0, change.hostPath.lastIndexOf('/'))
    const name = change.hostPath.slice(dir.length + 1)
    out[dir] ??= {}
    if (change.after === null) delete out[dir][name]
    else out[dir][name] = change.after
  }

  return out
}

describe('registries.d plan across directories', () => {
  it('a scope a vendor file defines is overridden by a same-named file in /etc carrying its other entries, never a second definition', async () => {
    const layout = {[USR]: {'vendor.yaml': VENDOR}}
    const planned = await planFor({layout, views: [PODMAN6], scopes: ['registry.example.com/apps', 'registry.other.example']})
    assert.deepEqual(
      planned.changes.map((c) => [c.hostPath, c.action]),
      [
        [`${ETC}/imagetrust.yaml`, 'create'],
        [`${ETC}/vendor.yaml`, 'create'],
      ],
    )
    const override = planned.changes.find((c) => c.hostPath === `${ETC}/vendor.yaml`)!.after!
    assert.match(override, /# shipped by the distribution/, 'the vendor comments are kept')
    assert.match(override, /registry\.vendor\.example:\n {4}lookaside: https:\/\/vendor\.example\/other/, "the vendor's other entries are carried")
    assert.match(override, /registry\.example\.com\/apps:\n {4}lookaside: https:\/\/sigs\.example\.com\n/)
    const owned = planned.changes.find((c) => c.hostPath === `${ETC}/imagetrust.yaml`)!.after!
    assert.doesNotMatch(owned, /registry\.example\.com\/apps/)
    assert.deepEqual(planned.state.overrides, [{file: `${ETC}/vendor.yaml`, vendor: `${USR}/vendor.yaml`}])
    assert.ok(planned.ownedFiles.some((f) => f.hostPath === `${ETC}/vendor.yaml`), 'state.json records its digest: it is ours')
    assert.deepEqual(planned.broken, [])
  })

  it('is idempotent: the next plan, with the override in place, changes nothing', async () => {
    const layout = {[USR]: {'vendor.yaml': VENDOR}}
    const first = await planFor({layout, views: [PODMAN6], scopes: ['registry.example.com/apps']})
    const second = await planFor({layout: applied(layout, first), views: [PODMAN6], scopes: ['registry.example.com/apps'], state: stateAfter(first)})
    assert.deepEqual(second.changes, [])
    assert.deepEqual(second.state.overrides, first.state.overrides)
  })

  it('follows the vendor file: a package update shows up in the override at the next apply', async () => {
    const layout = {[USR]: {'vendor.yaml': VENDOR}}
    const first = await planFor({layout, views: [PODMAN6], scopes: ['registry.example.com/apps']})
    const updated = applied(layout, first)
    updated[USR]['vendor.yaml'] = VENDOR.replace('https://vendor.example/other', 'https://vendor.example/v2')
    const second = await planFor({layout: updated, views: [PODMAN6], scopes: ['registry.example.com/apps'], state: stateAfter(first)})
    assert.deepEqual(second.changes.map((c) => [c.hostPath, c.action]), [[`${ETC}/vendor.yaml`, 'update']])
    assert.match(second.changes[0].after!, /https:\/\/vendor\.example\/v2/)
  })

  it('releases the override when the trust file drops the scope: the vendor view comes back', async () => {
    const layout = {[USR]: {'vendor.yaml': VENDOR}}
    const first = await planFor({layout, views: [PODMAN6], scopes: ['registry.example.com/apps']})
    const released = await planFor({layout: applied(layout, first), views: [PODMAN6], scopes: [], state: stateAfter(first)})
    assert.deepEqual(released.changes.map((c) => [c.hostPath, c.action]), [[`${ETC}/vendor.yaml`, 'delete']])
    assert.equal(released.state.overrides, undefined)
  })

  it('leaves an override changed by hand in place when no longer needed, saying so', async () => {
    const layout = {[USR]: {'vendor.yaml': VENDOR}}
    const first = await planFor({layout, views: [PODMAN6], scopes: ['registry.example.com/apps']})
    const edited = applied(layout, first)
    edited[ETC]['vendor.yaml'] += '  registry.mine.example: {}\n'
    const released = await planFor({layout: edited, views: [PODMAN6], scopes: [], state: stateAfter(first)})
    assert.deepEqual(released.changes, [])
    assert.ok(released.warnings.some((w) => /vendor\.yaml is no longer needed, but it changed since imagetrust wrote it/.test(w)), released.warnings.join('\n'))
  })

  it('a vendor file in registries.rootful.d is overridden from /etc/containers/registries.d too', async () => {
    const planned = await planFor({layout: {[USR_ROOTFUL]: {'vendor.yaml': VENDOR}}, views: [PODMAN6], scopes: ['registry.example.com/apps']})
    assert.deepEqual(planned.state.overrides, [{file: `${ETC}/vendor.yaml`, vendor: `${USR_ROOTFUL}/vendor.yaml`}])
  })

  it('refuses a scope defined in a directory read after the managed one (registries.rootful.d in /etc): no file there can replace it', async () => {
    await assert.rejects(planFor({layout: {[ETC_ROOTFUL]: {'site.yaml': VENDOR}}, views: [PODMAN6], scopes: ['registry.example.com/apps']}), (error: Error) => {
      assert.match(error.message, /registries\.rootful\.d\/site\.yaml:3, which imagetrust does not manage and cannot replace from \/etc\/containers\/registries\.d \(podman 6\.0\.0 \(containers\/image 5\.40\) reads it after/)
      return true
    })
  })

  it('reports a scope defined in a vendor file and an /etc file as broken, and refuses to add a third', async () => {
    const layout = {[USR]: {'vendor.yaml': VENDOR}, [ETC]: {'site.yaml': 'docker:\n  registry.example.com/apps:\n    lookaside: https://site.example\n'}}
    const check = await planFor({layout, views: [PODMAN6], scopes: []})
    assert.deepEqual(check.broken, [{path: `${USR}/vendor.yaml`, detail: `docker scope "registry.example.com/apps" is defined both in ${ETC}/site.yaml:2 and ${USR}/vendor.yaml:3: containers/image fails every pull`}])
    await assert.rejects(planFor({layout, views: [PODMAN6], scopes: ['registry.example.com/apps']}), /already defined in two files/)
  })

  it('mixed host: CRI-O at 5.38 reads only /etc, podman 6 merges; the one override serves both, and their conflicts are told apart', async () => {
    const layout = {[USR]: {'vendor.yaml': VENDOR}}
    const planned = await planFor({layout, views: [PODMAN6, CRIO], scopes: ['registry.example.com/apps']})
    assert.deepEqual(planned.changes.map((c) => c.hostPath), [`${ETC}/vendor.yaml`])
    const broken = await planFor({layout: {...layout, [ETC]: {'a.yaml': 'default-docker:\n  lookaside: https://a\n', 'b.yaml': 'default-docker:\n  lookaside: https://b\n'}}, views: [PODMAN6, CRIO], scopes: []})
    assert.match(broken.broken[0].detail, /\(podman 6\.0\.0 \(containers\/image 5\.40\), crio 1\.36\.3 \(containers\/image 5\.38\)\)$/)
  })

  it('refuses a plan that would make an engine load a scope twice that it did not before', async () => {
    // CRI-O at 5.38 sees /etc/site.yaml's registry.vendor.example; the override would bring the vendor's in beside it.
    const layout = {[USR]: {'vendor.yaml': VENDOR}, [ETC]: {'site.yaml': 'docker:\n  registry.vendor.example:\n    lookaside: https://site.example\n'}}
    // Without podman 6 nobody reads the vendor file: the scope simply goes to imagetrust.yaml.
    const alone = await planFor({layout, views: [CRIO], scopes: ['registry.example.com/apps']})
    assert.deepEqual(alone.changes.map((c) => c.hostPath), [`${ETC}/imagetrust.yaml`])
    await assert.rejects(planFor({layout, views: [PODMAN6, CRIO], scopes: ['registry.example.com/apps']}), /afterwards crio 1\.36\.3 \(containers\/image 5\.38\) would fail every pull, because docker scope "registry\.vendor\.example" is defined both in/)
  })

  it('--user on 5.40: nothing is copied; a system entry of a trust-file scope is overridden in the user directory', async () => {
    const layout = {[USR]: {'vendor.yaml': VENDOR}, [ETC]: {'site.yaml': 'docker:\n  registry.site.example:\n    lookaside: https://site.example\n'}}
    const planned = await planFor({layout, views: [USER_PODMAN6], scopes: ['registry.example.com/apps', 'registry.other.example'], user: true})
    assert.deepEqual(planned.changes.map((c) => c.hostPath).sort(), [`${USER_HOME}/imagetrust.yaml`, `${USER_HOME}/vendor.yaml`])
    assert.deepEqual(planned.state.carriedOver, [])
    assert.deepEqual(planned.notes.filter((n) => /carried/.test(n)), [])
  })

  it('--user with an engine older than 5.40: the system files are carried over, as before, and 5.40 is still served', async () => {
    const layout = {[USR]: {'vendor.yaml': VENDOR}, [ETC]: {'site.yaml': 'docker:\n  registry.site.example:\n    lookaside: https://site.example\n'}}
    const planned = await planFor({layout, views: [USER_PODMAN6, USER_SKOPEO19], scopes: ['registry.example.com/apps'], user: true})
    assert.deepEqual(planned.changes.map((c) => c.hostPath).sort(), [`${USER_HOME}/site.yaml`, `${USER_HOME}/vendor.yaml`])
    assert.deepEqual(planned.state.carriedOver, [`${USER_HOME}/site.yaml`])
  })
})
