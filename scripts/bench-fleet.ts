/**
 * The fleet part of `npm run bench`: the wall time of converging five hosts over
 * real SSH with the Ansible role (test/support/fleet.ts: an sshd per host, each in
 * its own mount namespace, no Node.js there), forks 5. Cold: fresh hosts, so the
 * role installs the single executable and converges; warm: the same run again,
 * which changes nothing.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {Fleet} from '../test/support/fleet.ts'
import {fleetPackages} from '../test/support/fleet-packages.ts'

export interface FleetBench {
  hosts: number
  coldMs: number
  warmMs: number
}

const trust = {
  version: 1,
  default: 'reject',
  keys: {},
  scopes: {'registry.example.com:5000/shop': {policy: 'reject'}, 'registry.example.com:5000/apps': {policy: 'accept'}},
}

export async function benchFleet(hosts = 5): Promise<FleetBench> {
  const {binary} = await fleetPackages(['binary'])
  const dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-bench-fleet-'))
  const names = Array.from({length: hosts}, (_, i) => `b${i + 1}`)
  const fleet = await Fleet.start(dir, names.map((name) => ({name, hideNode: true})))
  try {
    for (const h of names) await writeFile(fleet.path(h, '/etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    const vars = {imagetrust_become: false, imagetrust_install: 'binary', imagetrust_package: binary, imagetrust_trust: trust, imagetrust_check_timer: true}
    const converge = async (): Promise<number> => {
      const start = process.hrtime.bigint()
      const result = await fleet.play('site.yml', {}, vars)
      if (result.code !== 0) throw new Error(`site.yml failed:\n${result.output}`)
      return Number(process.hrtime.bigint() - start) / 1e6
    }

    return {hosts, coldMs: await converge(), warmMs: await converge()}
  } finally {
    await fleet.stop()
    await rm(dir, {recursive: true, force: true})
  }
}
