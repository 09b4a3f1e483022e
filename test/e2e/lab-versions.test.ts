/**
 * The version table measured: `imagetrust detect` maps each lab engine's own
 * `--version` to a containers/image version through capabilities.ts, and
 * that must be the version the binary was really built with (`go version -m`).
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, rm, symlink} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {imagetrust, mustRun} from '../support/lab.ts'
import {ORACLE_VERSIONS, builtWithContainersImage, labBin, oracleBin} from '../support/lab-bin.ts'

const minor = (goVersion: string | undefined) => goVersion?.replace(/^v(\d+\.\d+)\..*$/, '$1')

describe('the version table, measured on the lab binaries', () => {
  let dir: string
  let engines: Array<{name: string; path: string; version: string; containersImage?: string}>

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-versions-'))
    const bin = path.join(dir, 'bin')
    await mkdir(bin)
    for (const tool of ['crio', 'skopeo']) await symlink(await labBin(tool), path.join(bin, tool))
    const result = await imagetrust(['detect', '--root', dir, '--json'], {...process.env, PATH: `${bin}:${process.env.PATH}`})
    assert.equal(result.code, 0, result.stderr)
    engines = JSON.parse(result.stdout).engines
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  for (const [tool, version] of [
    ['crio', '1.36.3'],
    ['skopeo', '1.23.0'],
  ] as const) {
    it(`${tool} ${version}: detect's containers/image is the one it was built with`, async () => {
      const engine = engines.find((e) => e.name === tool && e.path.startsWith(dir))
      assert.ok(engine, `detect did not find the lab's ${tool}: ${JSON.stringify(engines)}`)
      assert.equal(engine.version, version)
      const built = minor(await builtWithContainersImage(await labBin(tool)))
      assert.ok(built, `go version -m names no containers/image in ${tool}`)
      assert.equal(engine.containersImage, built)
    })
  }

  for (const version of ORACLE_VERSIONS) {
    it(`the ${version} oracle is built with containers/image ${version}`, async () => {
      const bin = await oracleBin(version)
      assert.equal(minor(await builtWithContainersImage(bin)), version)
      assert.match((await mustRun(bin, ['--version'])).stdout, new RegExp(`image/v5 v${version.replace('.', '\\.')}\\.\\d+`))
    })
  }
})
