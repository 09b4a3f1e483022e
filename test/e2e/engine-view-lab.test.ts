/**
 * The engine view (src/host/engine-view.ts) against the lab's oracles: for
 * each layout, each containers/image version and each runner (root, and a
 * rootless uid run with setpriv), the policy.json and registries.d files the
 * library really opened (inotify) are the ones the view says it reads.
 */
import assert from 'node:assert/strict'
import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {engineView, type Runner} from '../../src/host/engine-view.ts'
import {readPathSnapshot} from '../../src/host/engine-view-read.ts'
import {HostRoot} from '../../src/host/paths.ts'
import {ORACLE_VERSIONS, type OracleAnswer, oracleBin, type OracleVersion} from '../support/lab-bin.ts'
import {mustRun} from '../support/lab.ts'

const ACCEPT = '{"default":[{"type":"insecureAcceptAnything"}]}\n'
const UID = 1000
/** Any docker:// image makes the library load registries.d; nothing listens on port 1. */
const IMAGE = 'docker://127.0.0.1:1/lab/app:1'

interface Layout {
  name: string
  files: string[]
  env?: Record<string, string>
}

const HOME_ROOT = '/root'
const HOME_USER = `/home/u${UID}`
const yaml = (scope: string) => `docker:\n  ${scope}:\n    lookaside: file:///tmp/${scope.replaceAll(/\W/g, '')}\n`

/** Files are created under the root; "~" is the runner's HOME (also under the root). */
const LAYOUTS: Layout[] = [
  {name: '/usr/share only', files: ['/usr/share/containers/policy.json']},
  {name: '/etc and /usr/share', files: ['/etc/containers/policy.json', '/usr/share/containers/policy.json']},
  {name: '~/.config and /etc', files: ['~/.config/containers/policy.json', '/etc/containers/policy.json']},
  {name: 'XDG_CONFIG_HOME', files: ['/xdg/containers/policy.json', '~/.config/containers/policy.json', '/etc/containers/policy.json'], env: {XDG_CONFIG_HOME: '/xdg'}},
  {name: 'CONTAINERS_POLICY_JSON', files: ['/env/policy.json', '/etc/containers/policy.json'], env: {CONTAINERS_POLICY_JSON: '/env/policy.json'}},
  {name: 'CONTAINERS_POLICY_JSON missing', files: ['/etc/containers/policy.json'], env: {CONTAINERS_POLICY_JSON: '/env/missing.json'}},
  {
    name: 'registries.d everywhere',
    files: [
      '/etc/containers/policy.json',
      '/usr/share/containers/registries.d/a.yaml',
      '/usr/share/containers/registries.d/v.yaml',
      '/usr/share/containers/registries.rootful.d/f.yaml',
      '/etc/containers/registries.d/v.yaml',
      '/etc/containers/registries.d/e.yaml',
      '/etc/containers/registries.rootful.d/r.yaml',
      '/etc/containers/registries.rootless.d/l.yaml',
      `/etc/containers/registries.rootless.d/${UID}/l.yaml`,
      `/etc/containers/registries.rootless.d/${UID}/m.yaml`,
    ],
  },
  {name: 'registries.d with the user directory', files: ['/etc/containers/policy.json', '/etc/containers/registries.d/e.yaml', '/usr/share/containers/registries.d/a.yaml', '~/.config/containers/registries.d/a.yaml']},
]

function fileContent(file: string): string {
  return file.endsWith('.yaml') ? yaml(`q${path.basename(file, '.yaml')}.example/${file.split('/').length}`) : ACCEPT
}

describe('the engine view matches what each containers/image version opens', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-engine-view-'))
    await chmod(dir, 0o755)
  })
  after(async () => rm(dir, {recursive: true, force: true}))

  for (const layout of LAYOUTS) {
    for (const [who, uid, home] of [['root', 0, HOME_ROOT], [`uid ${UID}`, UID, HOME_USER]] as const) {
      it(`${layout.name}, run by ${who}`, async () => {
        const root = path.join(dir, `${LAYOUTS.indexOf(layout)}-${uid}`)
        for (const file of layout.files) {
          const hostPath = file.replace(/^~/, home)
          await mkdir(path.dirname(root + hostPath), {recursive: true})
          await writeFile(root + hostPath, fileContent(hostPath))
        }

        // Real paths for the oracle: HOME and the variables point into the root.
        const real = (hostPath: string) => root + hostPath
        const env = {PATH: process.env.PATH, HOME: real(home), ...Object.fromEntries(Object.entries(layout.env ?? {}).map(([k, v]) => [k, real(v)]))}
        const runner: Runner = {uid, home, ...(layout.env?.XDG_CONFIG_HOME ? {xdgConfigHome: layout.env.XDG_CONFIG_HOME} : {}), ...(layout.env?.CONTAINERS_POLICY_JSON ? {policyEnv: layout.env.CONTAINERS_POLICY_JSON} : {})}
        const mismatches: string[] = []
        for (const version of ORACLE_VERSIONS) {
          const context = {engine: 'skopeo' as const, containersImage: version.split('.').map(Number) as [number, number], runner}
          const view = engineView(context, await readPathSnapshot(new HostRoot(root), [context]))
          const answer = await oracle(version, root, env, uid)
          const said = {policy: view.policy.reads ? real(view.policy.reads) : 'error', registries: view.registriesD.files.map((f) => real(f.path))}
          const saw = {policy: answer.policyError ? 'error' : answer.policyFiles[0], registries: answer.registriesFiles}
          // Before 5.40 the directory is read in its own (unsorted) order; from 5.40 sorted by name.
          if (version !== '5.40') {
            said.registries.sort()
            saw.registries.sort()
          }

          if (JSON.stringify(said) !== JSON.stringify(saw)) mismatches.push(`${version}: the view says ${JSON.stringify(said)}, the oracle opened ${JSON.stringify(saw)} (${answer.policyError ?? answer.registriesError ?? ''})`)
        }

        assert.deepEqual(mismatches, [])
      })
    }
  }
})

async function oracle(version: OracleVersion, root: string, env: NodeJS.ProcessEnv, uid: number): Promise<OracleAnswer> {
  const bin = await oracleBin(version)
  const args = ['--root', root, IMAGE]
  const {stdout} = uid === 0 ? await mustRun(bin, args, {env}) : await mustRun('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', bin, ...args], {env})
  return JSON.parse(stdout) as OracleAnswer
}
