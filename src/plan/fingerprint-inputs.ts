import {readFileSync} from 'node:fs'
import path from 'node:path'

import {HOST_PATHS, type HostRoot} from '../host/paths.js'
import type {PreparedPlan} from './converge.js'
import {digestInputs, type InputSet, writeFingerprint} from './fingerprint.js'

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {version: string}).version

/** What is not a file but still decides the plan: imagetrust's version, the layout, the root. */
export function fingerprintContext(root: HostRoot): string {
  return JSON.stringify({imagetrust: VERSION, root: root.root, layout: root.layout})
}

/** Every input plan() read for this host, as real paths; undefined when one cannot be hashed (a key fetched from a URL). */
export function planInputs(prepared: PreparedPlan): InputSet | undefined {
  const {root, trust, targets} = prepared
  if (trust.keys.some((k) => k.url !== undefined)) return undefined
  const state = prepared.plan.state
  const files = [
    trust.file,
    ...trust.keys.filter((k) => k.file !== undefined).map((k) => path.resolve(trust.dir, k.file!)),
    ...targets.map((t) => root.resolve(t.hostPath)),
    ...state.generatedPolicies.map((p) => root.resolve(p)),
    ...state.keyFiles.map((p) => root.resolve(p)),
    root.resolve(root.statePath),
    root.resolve(HOST_PATHS.crioConf),
  ]
  const dirs: InputSet['dirs'] = [
    {dir: root.resolve(root.layout.registriesD), suffixes: ['.yaml']},
    {dir: root.resolve(HOST_PATHS.crioConfD), suffixes: ['.conf']},
  ]
  if (root.layout.kind === 'user') dirs.push({dir: root.resolve(HOST_PATHS.registriesD), suffixes: ['.yaml']})
  else {
    files.push(root.resolve(path.posix.join(root.layout.home, '.config/containers/policy.json')))
    dirs.push({dir: root.resolve(path.posix.join(root.layout.home, '.config/containers/registries.d')), suffixes: ['.yaml']})
  }

  return {files: [...new Set(files)], dirs}
}

/** After an apply that leaves the host in sync: remember its inputs for check's fast path. */
export async function recordFingerprint(prepared: PreparedPlan): Promise<void> {
  const inputs = planInputs(prepared)
  if (!inputs) return
  await writeFingerprint(prepared.root, {
    version: 1,
    trustFile: prepared.trust.file,
    digest: await digestInputs(inputs, fingerprintContext(prepared.root)),
    inputs,
    warnings: prepared.plan.warnings,
    keys: prepared.keys.map((k) => ({name: k.name, hostPath: k.hostPath, keys: k.keys})),
  })
}
