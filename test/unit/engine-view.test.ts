import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {type EngineContext, engineView, type PathSnapshot, pathsToProbe, policyView, registriesDView, type Runner, shadowingPolicies, viewsDiffer} from '../../src/host/engine-view.ts'

const ROOT: Runner = {uid: 0, home: '/root'}
const ALICE: Runner = {uid: 1000, home: '/home/alice'}

/** A throw-away host root for unit files: write(file, text) puts a file in it; removed after fn. */
async function inUnitRoot(
  fn: (tools: {dir: string; write: (file: string, text: string) => Promise<void>; readUnitEnvironment: typeof import('../../src/host/unit-env.ts').readUnitEnvironment; HostRoot: typeof import('../../src/host/paths.ts').HostRoot}) => Promise<void>,
): Promise<void> {
  const {mkdtemp, mkdir, writeFile, rm} = await import('node:fs/promises')
  const {tmpdir} = await import('node:os')
  const path = await import('node:path')
  const {HostRoot} = await import('../../src/host/paths.ts')
  const {readUnitEnvironment} = await import('../../src/host/unit-env.ts')
  const dir = await mkdtemp(path.join(tmpdir(), 'itunit-'))
  const write = async (file: string, text: string) => {
    await mkdir(path.dirname(path.join(dir, file)), {recursive: true})
    await writeFile(path.join(dir, file), text)
  }

  try {
    await fn({dir, write, readUnitEnvironment, HostRoot})
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

function snap(files: string[], dirs: Record<string, string[]> = {}): PathSnapshot {
  return {files: new Set(files), dirs: new Map(Object.entries(dirs))}
}

function ctx(cimage: [number, number], runner: Runner, extra: Partial<EngineContext> = {}): EngineContext {
  return {engine: 'skopeo', containersImage: cimage, runner, ...extra}
}

describe('engine view: the policy.json each version reads', () => {
  const ETC = '/etc/containers/policy.json'
  const SHARE = '/usr/share/containers/policy.json'
  const TABLE: Array<{name: string; context: EngineContext; files: string[]; reads?: string; candidates: string[]; error?: RegExp}> = [
    {name: '5.38 root: /etc', context: ctx([5, 38], ROOT), files: [ETC], reads: ETC, candidates: ['/root/.config/containers/policy.json', ETC]},
    {name: '5.38 root: ~/.config first', context: ctx([5, 38], ROOT), files: [ETC, '/root/.config/containers/policy.json'], reads: '/root/.config/containers/policy.json', candidates: ['/root/.config/containers/policy.json', ETC]},
    {name: '5.38: a lone /usr/share file is not read', context: ctx([5, 38], ROOT), files: [SHARE], candidates: ['/root/.config/containers/policy.json', ETC], error: /no policy\.json/},
    {name: '5.29 ignores XDG_CONFIG_HOME', context: ctx([5, 29], {...ALICE, xdgConfigHome: '/x'}), files: ['/x/containers/policy.json', ETC], reads: ETC, candidates: ['/home/alice/.config/containers/policy.json', ETC]},
    {name: '5.39 ignores CONTAINERS_POLICY_JSON', context: ctx([5, 39], {...ROOT, policyEnv: '/p.json'}), files: ['/p.json', ETC], reads: ETC, candidates: ['/root/.config/containers/policy.json', ETC]},
    {name: '5.40 falls back to /usr/share', context: ctx([5, 40], ROOT), files: [SHARE], reads: SHARE, candidates: ['/root/.config/containers/policy.json', ETC, SHARE]},
    {name: '5.40: /etc before /usr/share', context: ctx([5, 40], ROOT), files: [SHARE, ETC], reads: ETC, candidates: ['/root/.config/containers/policy.json', ETC, SHARE]},
    {name: '5.40 reads XDG_CONFIG_HOME', context: ctx([5, 40], {...ALICE, xdgConfigHome: '/x'}), files: ['/x/containers/policy.json', ETC], reads: '/x/containers/policy.json', candidates: ['/x/containers/policy.json', ETC, SHARE]},
    {name: '5.40: CONTAINERS_POLICY_JSON wins', context: ctx([5, 40], {...ROOT, policyEnv: '/p.json'}), files: ['/p.json', ETC], reads: '/p.json', candidates: ['/p.json']},
    {name: '5.40: CONTAINERS_POLICY_JSON missing is an error', context: ctx([5, 40], {...ROOT, policyEnv: '/p.json', policyEnvSource: 'crio.service'}), files: [ETC], candidates: ['/p.json'], error: /CONTAINERS_POLICY_JSON \(crio\.service\) names \/p\.json/},
    {name: 'an explicit path beats everything', context: ctx([5, 40], {...ROOT, policyEnv: '/p.json'}, {explicitPolicy: '/etc/crio/p.json'}), files: ['/p.json', ETC], candidates: ['/etc/crio/p.json'], error: /configured policy/},
  ]
  for (const row of TABLE) {
    it(row.name, () => {
      const view = policyView(row.context, snap(row.files))
      assert.equal(view.reads, row.reads)
      assert.deepEqual(
        view.candidates.map((c) => c.path),
        row.candidates,
      )
      if (row.error) assert.match(view.error ?? '', row.error)
      else assert.equal(view.error, undefined)
    })
  }
})

describe('engine view: the registries.d files each version loads', () => {
  const TABLE: Array<{name: string; context: EngineContext; dirs: Record<string, string[]>; files: string[]; merge: 'single' | 'by-name'; replaces?: Record<string, string[]>}> = [
    {name: '5.38: /etc only', context: ctx([5, 38], ROOT), dirs: {'/etc/containers/registries.d': ['a.yaml', 'b.yml'], '/usr/share/containers/registries.d': ['v.yaml']}, files: ['/etc/containers/registries.d/a.yaml'], merge: 'single'},
    {name: '5.38: the user directory replaces /etc', context: ctx([5, 38], ROOT), dirs: {'/etc/containers/registries.d': ['a.yaml'], '/root/.config/containers/registries.d': []}, files: [], merge: 'single'},
    {
      name: '5.40 root: merged by name, higher wins',
      context: ctx([5, 40], ROOT),
      dirs: {
        '/usr/share/containers/registries.d': ['a.yaml', 'v.yaml'],
        '/usr/share/containers/registries.rootful.d': ['r.yaml'],
        '/etc/containers/registries.d': ['v.yaml', 'e.yaml'],
        '/etc/containers/registries.rootless.d': ['x.yaml'],
        '/root/.config/containers/registries.d': ['a.yaml'],
      },
      files: ['/root/.config/containers/registries.d/a.yaml', '/etc/containers/registries.d/e.yaml', '/usr/share/containers/registries.rootful.d/r.yaml', '/etc/containers/registries.d/v.yaml'],
      merge: 'by-name',
      replaces: {'a.yaml': ['/usr/share/containers/registries.d/a.yaml'], 'v.yaml': ['/usr/share/containers/registries.d/v.yaml']},
    },
    {
      name: '5.40 rootless: rootless.d/UID above rootless.d above registries.d',
      context: ctx([5, 40], {...ALICE, xdgConfigHome: '/x'}),
      dirs: {
        '/etc/containers/registries.d': ['a.yaml'],
        '/etc/containers/registries.rootless.d': ['a.yaml'],
        '/etc/containers/registries.rootless.d/1000': ['a.yaml'],
        '/etc/containers/registries.rootful.d': ['b.yaml'],
        '/home/alice/.config/containers/registries.d': ['c.yaml'],
      },
      files: ['/etc/containers/registries.rootless.d/1000/a.yaml'],
      merge: 'by-name',
      replaces: {'a.yaml': ['/etc/containers/registries.d/a.yaml', '/etc/containers/registries.rootless.d/a.yaml']},
    },
  ]
  for (const row of TABLE) {
    it(row.name, () => {
      const view = registriesDView(row.context, snap([], row.dirs))
      assert.equal(view.merge, row.merge)
      assert.deepEqual(
        view.files.map((f) => f.path),
        row.files,
      )
      for (const [name, replaced] of Object.entries(row.replaces ?? {})) {
        assert.deepEqual(view.files.find((f) => f.name === name)?.replaces, replaced)
      }
    })
  }

  it('5.40 lists the directories lowest precedence first', () => {
    const view = registriesDView(ctx([5, 40], ALICE), snap([]))
    assert.deepEqual(
      view.dirs.map((d) => d.path),
      [
        '/usr/share/containers/registries.d',
        '/usr/share/containers/registries.rootless.d',
        '/usr/share/containers/registries.rootless.d/1000',
        '/etc/containers/registries.d',
        '/etc/containers/registries.rootless.d',
        '/etc/containers/registries.rootless.d/1000',
        '/home/alice/.config/containers/registries.d',
      ],
    )
  })
})

describe('engine view: shadowing and mixed hosts', () => {
  const managed = new Set(['/etc/containers/policy.json'])
  const host = snap(['/etc/containers/policy.json', '/root/.config/containers/policy.json', '/usr/share/containers/policy.json'])

  it("root's ~/.config shadows /etc on every version", () => {
    for (const cimage of [[5, 29], [5, 38], [5, 40]] as Array<[number, number]>) {
      const shadows = shadowingPolicies([engineView(ctx(cimage, ROOT), host)], managed)
      assert.deepEqual(shadows, [{engine: 'skopeo', path: '/root/.config/containers/policy.json', source: 'user'}], cimage.join('.'))
    }
  })

  it('CONTAINERS_POLICY_JSON shadows on 5.40 only', () => {
    const runner = {...ROOT, home: '/nohome', policyEnv: '/p.json'}
    assert.deepEqual(shadowingPolicies([engineView(ctx([5, 38], runner), host)], managed), [])
    assert.deepEqual(shadowingPolicies([engineView(ctx([5, 40], runner), host)], managed), [{engine: 'skopeo', path: '/p.json', source: 'environment'}])
  })

  it('/usr/share read because /etc is missing does not shadow /etc', () => {
    const view = engineView(ctx([5, 40], {...ROOT, home: '/nohome'}), snap(['/usr/share/containers/policy.json']))
    assert.deepEqual(shadowingPolicies([view], managed), [])
  })

  it('Podman at 5.40 and CRI-O at 5.38 differ on a /usr/share-only host', () => {
    const share = snap(['/usr/share/containers/policy.json'])
    const podman = engineView({engine: 'podman', containersImage: [5, 40], runner: ROOT}, share)
    const crio = engineView({engine: 'crio', containersImage: [5, 38], runner: ROOT}, share)
    assert.equal(podman.policy.reads, '/usr/share/containers/policy.json')
    assert.equal(crio.policy.reads, undefined)
    assert.ok(viewsDiffer(podman, crio))
    assert.ok(!viewsDiffer(podman, podman))
  })

  it('probes every candidate path', () => {
    const {files, dirs} = pathsToProbe([ctx([5, 40], ALICE), ctx([5, 29], ROOT)])
    assert.ok(files.includes('/usr/share/containers/policy.json'))
    assert.ok(files.includes('/root/.config/containers/policy.json'))
    assert.ok(dirs.includes('/etc/containers/registries.rootless.d/1000'))
  })
})

describe('service unit environments', () => {
  it('reads Environment= in [Service] as systemd does: quotes, several per line, an empty one resets', async () => {
    const {applyUnitText} = await import('../../src/host/unit-env.ts')
    const env: Record<string, string> = {}
    applyUnitText('[Unit]\nEnvironment=IGNORED=1\n[Service]\nEnvironment="CONTAINERS_POLICY_JSON=/a b.json" HOME=/srv\n# Environment=X=1\n', env)
    assert.deepEqual(env, {CONTAINERS_POLICY_JSON: '/a b.json', HOME: '/srv'})
    applyUnitText('[Service]\nEnvironment=\nEnvironment=XDG_CONFIG_HOME=/x\n', env)
    assert.deepEqual(env, {XDG_CONFIG_HOME: '/x'})
  })

  it('reads EnvironmentFile= under --root, after Environment= and overriding it, as crio.service names /etc/sysconfig/crio', async () => {
    await inUnitRoot(async ({dir, write, readUnitEnvironment, HostRoot}) => {
      await write('usr/lib/systemd/system/crio.service', '[Service]\nEnvironment=HOME=/unit\nEnvironmentFile=-/etc/sysconfig/crio\nEnvironmentFile=-/etc/sysconfig/missing\nExecStart=/usr/bin/crio $CRIO_CONFIG_OPTIONS\n')
      await write('usr/lib/systemd/system/crio.service.d/10-more.conf', '[Service]\nEnvironmentFile=/etc/default/crio\n')
      await write('etc/sysconfig/crio', '# CONTAINERS_POLICY_JSON=/commented.json\nCONTAINERS_POLICY_JSON="/srv/other policy.json"\nHOME=/from-file\n')
      // A file outside the root must never be read: the unit's path is a host path, resolved in the root.
      await write('etc/default-crio-decoy', 'XDG_CONFIG_HOME=/escaped\n')
      const unit = await readUnitEnvironment(new HostRoot(dir), 'crio.service')
      assert.deepEqual(unit?.env, {HOME: '/from-file', CONTAINERS_POLICY_JSON: '/srv/other policy.json'})
      assert.deepEqual(unit?.environmentFiles, ['/etc/sysconfig/crio', '/etc/sysconfig/missing', '/etc/default/crio'])
    })
  })

  it('takes the unit file from the first directory that has it, and drop-ins by name, a higher directory replacing a lower one', async () => {
    await inUnitRoot(async ({dir, write, readUnitEnvironment, HostRoot}) => {
      await write('etc/systemd/system/podman.service', '[Service]\nEnvironment=HOME=/etc-unit A=etc\n')
      await write('usr/lib/systemd/system/podman.service', '[Service]\nEnvironment=HOME=/lib-unit B=lib\n')
      await write('usr/lib/systemd/system/podman.service.d/10-a.conf', '[Service]\nEnvironment=A=lib-dropin\n')
      await write('usr/lib/systemd/system/podman.service.d/20-b.conf', '[Service]\nEnvironment=B=lib-20\n')
      await write('run/systemd/system/podman.service.d/20-b.conf', '[Service]\nEnvironment=B=run-20\n')
      await write('etc/systemd/system/podman.service.d/30-c.conf', '[Service]\nEnvironment=A=etc-30\n')
      const unit = await readUnitEnvironment(new HostRoot(dir), 'podman.service')
      assert.deepEqual(unit?.files, [
        '/etc/systemd/system/podman.service',
        '/usr/lib/systemd/system/podman.service.d/10-a.conf',
        '/run/systemd/system/podman.service.d/20-b.conf',
        '/etc/systemd/system/podman.service.d/30-c.conf',
      ])
      assert.deepEqual(unit?.env, {HOME: '/etc-unit', A: 'etc-30', B: 'run-20'})
      assert.equal(await readUnitEnvironment(new HostRoot(dir), 'crio.service'), undefined)
    })
  })
})
