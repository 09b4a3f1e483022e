/**
 * registries.d across directories, as each containers/image version reads
 * it: one table of directory layouts, the files each view loads (in order),
 * and what it finds defined twice. The rows marked "oracle" are the cases
 * test/e2e/registries-d-views.test.ts asks the lab's 5.38 and 5.40 oracles.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {describeConflict, effectiveFiles, hiddenFiles, type RegistriesView, viewConflicts} from '../../src/registries-d/layers.ts'
import {parseRegistriesFile, type RegistriesFile} from '../../src/registries-d/read.ts'

const USR = '/usr/share/containers/registries.d'
const USR_ROOTFUL = '/usr/share/containers/registries.rootful.d'
const ETC = '/etc/containers/registries.d'
const ETC_ROOTFUL = '/etc/containers/registries.rootful.d'
const USER = '/home/u/.config/containers/registries.d'

/** containers/image 5.40 for root: every directory, lowest first. */
const ROOT_540: RegistriesView = {label: 'podman 6.0 (5.40)', merge: 'by-name', dirs: [USR, USR_ROOTFUL, ETC, ETC_ROOTFUL, USER]}
/** Up to 5.39: the user's directory when it exists, else /etc. */
const ROOT_538: RegistriesView = {label: 'crio 1.36 (5.38)', merge: 'single', dirs: [ETC, USER]}

type Layout = Record<string, Record<string, string>>

async function dirsOf(layout: Layout): Promise<Map<string, RegistriesFile[]>> {
  const dirs = new Map<string, RegistriesFile[]>()
  for (const [dir, files] of Object.entries(layout)) {
    const parsed: RegistriesFile[] = []
    for (const [name, text] of Object.entries(files)) parsed.push((await parseRegistriesFile(name, `${dir}/${name}`, text)).file)
    dirs.set(dir, parsed)
  }

  return dirs
}

const scope = (name: string, lookaside = 'https://sigs.example') => `docker:\n  ${name}:\n    lookaside: ${lookaside}\n`
const DEFAULT_DOCKER = 'default-docker:\n  lookaside: https://default.example\n'

interface Row {
  name: string
  layout: Layout
  view: RegistriesView
  /** The files the view loads, in the order it reads them. */
  loads: string[]
  /** What it finds defined twice. */
  conflicts: string[]
}

const ROWS: Row[] = [
  {
    name: 'oracle: a vendor file and imagetrust.yaml defining one scope: 5.40 fails',
    layout: {[USR]: {'vendor.yaml': scope('registry.example.com')}, [ETC]: {'imagetrust.yaml': scope('registry.example.com', 'https://ours.example')}},
    view: ROOT_540,
    loads: [`${ETC}/imagetrust.yaml`, `${USR}/vendor.yaml`],
    conflicts: [`docker scope "registry.example.com" is defined both in ${ETC}/imagetrust.yaml:2 and ${USR}/vendor.yaml:2`],
  },
  {
    name: 'oracle: the same layout on 5.38: /usr/share is not read',
    layout: {[USR]: {'vendor.yaml': scope('registry.example.com')}, [ETC]: {'imagetrust.yaml': scope('registry.example.com', 'https://ours.example')}},
    view: ROOT_538,
    loads: [`${ETC}/imagetrust.yaml`],
    conflicts: [],
  },
  {
    name: 'oracle: a same-named file in /etc replaces the vendor file: one definition',
    layout: {[USR]: {'vendor.yaml': scope('registry.example.com')}, [ETC]: {'vendor.yaml': scope('registry.example.com', 'https://ours.example')}},
    view: ROOT_540,
    loads: [`${ETC}/vendor.yaml`],
    conflicts: [],
  },
  {
    name: 'registries.rootful.d lies between /usr/share and /etc for root',
    layout: {[USR]: {'a.yaml': scope('a.example')}, [USR_ROOTFUL]: {'a.yaml': scope('b.example')}, [ETC]: {'b.yaml': scope('b.example')}},
    view: ROOT_540,
    loads: [`${USR_ROOTFUL}/a.yaml`, `${ETC}/b.yaml`],
    conflicts: [`docker scope "b.example" is defined both in ${USR_ROOTFUL}/a.yaml:2 and ${ETC}/b.yaml:2`],
  },
  {
    name: "/etc's registries.rootful.d replaces /etc/registries.d's file of that name",
    layout: {[ETC]: {'a.yaml': scope('a.example')}, [ETC_ROOTFUL]: {'a.yaml': scope('b.example')}},
    view: ROOT_540,
    loads: [`${ETC_ROOTFUL}/a.yaml`],
    conflicts: [],
  },
  {
    name: 'default-docker in two directories is a conflict too',
    layout: {[USR]: {'default.yaml': DEFAULT_DOCKER}, [ETC]: {'site.yaml': DEFAULT_DOCKER}},
    view: ROOT_540,
    loads: [`${USR}/default.yaml`, `${ETC}/site.yaml`],
    conflicts: [`default-docker is defined both in ${USR}/default.yaml:1 and ${ETC}/site.yaml:1`],
  },
  {
    name: 'files are read by name across directories, not directory by directory',
    layout: {[USR]: {'z.yaml': scope('z.example')}, [ETC]: {'a.yaml': scope('a.example')}, [USER]: {'m.yaml': scope('m.example')}},
    view: ROOT_540,
    loads: [`${ETC}/a.yaml`, `${USER}/m.yaml`, `${USR}/z.yaml`],
    conflicts: [],
  },
  {
    name: "the user's directory replaces every other one by name only (5.40)",
    layout: {[ETC]: {'a.yaml': scope('a.example'), 'b.yaml': scope('b.example')}, [USER]: {'a.yaml': scope('b.example')}},
    view: ROOT_540,
    loads: [`${USER}/a.yaml`, `${ETC}/b.yaml`],
    conflicts: [`docker scope "b.example" is defined both in ${USER}/a.yaml:2 and ${ETC}/b.yaml:2`],
  },
  {
    name: "up to 5.39 the user's directory replaces /etc's entirely",
    layout: {[ETC]: {'a.yaml': scope('a.example'), 'b.yaml': scope('b.example')}, [USER]: {'a.yaml': scope('b.example')}},
    view: ROOT_538,
    loads: [`${USER}/a.yaml`],
    conflicts: [],
  },
  {
    name: 'an existing empty user directory still replaces /etc (up to 5.39)',
    layout: {[ETC]: {'a.yaml': scope('a.example')}, [USER]: {}},
    view: ROOT_538,
    loads: [],
    conflicts: [],
  },
  {
    name: 'no directory at all: nothing loaded',
    layout: {},
    view: ROOT_540,
    loads: [],
    conflicts: [],
  },
]

describe('registries.d across directories (per containers/image version)', () => {
  for (const row of ROWS) {
    it(row.name, async () => {
      const dirs = await dirsOf(row.layout)
      assert.deepEqual(
        effectiveFiles(row.view, dirs).map((f) => f.hostPath),
        row.loads,
      )
      assert.deepEqual(
        viewConflicts([row.view], dirs).map((c) => describeConflict(c)),
        row.conflicts,
      )
    })
  }

  it('names the files a higher directory hides', async () => {
    const dirs = await dirsOf({[USR]: {'vendor.yaml': scope('a.example'), 'other.yaml': ''}, [ETC]: {'vendor.yaml': scope('a.example')}})
    assert.deepEqual(
      hiddenFiles(ROOT_540, dirs).map((f) => f.hostPath),
      [`${USR}/vendor.yaml`],
    )
  })

  it('reports a conflict once, with every view that loads it', async () => {
    const dirs = await dirsOf({[ETC]: {'a.yaml': scope('x.example'), 'b.yaml': scope('x.example')}})
    const conflicts = viewConflicts([ROOT_540, ROOT_538], dirs)
    assert.equal(conflicts.length, 1)
    assert.deepEqual(conflicts[0].views, [ROOT_540.label, ROOT_538.label])
  })
})
