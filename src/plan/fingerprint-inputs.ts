import {stat} from 'node:fs/promises'
import path from 'node:path'

import {packageVersion} from '../lib/assets.js'
import {ENGINES, findOnPath} from '../host/detect.js'
import {type EngineContext, type EngineView, pathsToProbe} from '../host/engine-view.js'
import {expectedOwner} from '../host/owner.js'
import {UNIT_DIRS} from '../host/unit-env.js'
import {HOST_PATHS, type HostRoot, managedDirs, stateInputs} from '../host/paths.js'
import type {PreparedPlan} from './types.js'
import {planDrift} from './drift.js'
import {nextExpiry} from '../trustfile/expiry.js'
import {readRegularFile} from '../fs/read-bounded.js'
import {digestInputs, type InputSet, parseCachePath, writeFingerprint} from './fingerprint.js'

const VERSION = packageVersion()

/**
 * Which engine binaries are installed, and which build: apply derives policy
 * features (keyPaths or a combined keyring, lookaside key names) from their
 * versions, so a replaced engine must send check down the full path. A stat
 * per binary, not a `--version` run: check stays fast.
 */
async function engineStamps(): Promise<string[]> {
  return Promise.all(
    ENGINES.map(async (name) => {
      const found = await findOnPath(name)
      const info = found ? await stat(found).catch(() => undefined) : undefined
      // ctime too: a binary rewritten in place with its mtime put back (touch -r) still changes it.
      return info ? `${name}=${found}:${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}` : `${name}=absent`
    }),
  )
}

/** What is not a file but still decides the plan: imagetrust's version, the layout, the root, the engines, who must own the files. */
export async function fingerprintContext(root: HostRoot): Promise<string> {
  // The variables that change which policy.json or registries.d an engine run from this shell reads.
  const environment = {CONTAINERS_POLICY_JSON: process.env.CONTAINERS_POLICY_JSON ?? null, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME ?? null}
  return JSON.stringify({imagetrust: VERSION, root: root.root, layout: root.layout, engines: await engineStamps(), owner: await expectedOwner(root), environment})
}

/**
 * The inputs of what status reuses from the record (fingerprint.ts): the
 * trust file, the key and certificate files it names, the installed keys,
 * and state.json with what its validation depends on.
 */
export function reusedInputs(prepared: PreparedPlan): InputSet {
  const {root} = prepared
  const state = stateInputs(root)
  // The parse cache too (written just before): status trusts it only while it is what apply wrote.
  const files = [...trustInputs(prepared), ...prepared.keys.map((k) => root.resolve(k.hostPath)), ...prepared.plan.state.keyFiles.map((p) => root.resolve(p)), ...state.files, parseCachePath(root)]
  return {files: [...new Set(files)], dirs: state.dirs}
}

/** The trust file and the key and certificate files it names, as real paths. */
function trustInputs({trust}: PreparedPlan): string[] {
  return [
    trust.file,
    ...trust.keys.filter((k) => k.file !== undefined).map((k) => path.resolve(trust.dir, k.file!)),
    ...trust.keys.flatMap((k) => [k.pki?.caRoots.file, k.pki?.caIntermediates?.file]).filter((f) => f !== undefined).map((f) => path.resolve(trust.dir, f)),
  ]
}

/** Every input plan() read for this host, as real paths; undefined when one cannot be hashed (a key fetched from a URL). */
export function planInputs(prepared: PreparedPlan): InputSet | undefined {
  const {root, trust, targets} = prepared
  if (trust.keys.some((k) => k.url !== undefined)) return undefined
  const state = prepared.plan.state
  const files = [
    ...trustInputs(prepared),
    ...targets.map((t) => root.resolve(t.hostPath)),
    ...state.generatedPolicies.map((p) => root.resolve(p)),
    ...state.keyFiles.map((p) => root.resolve(p)),
    root.resolve(root.statePath),
    // A pending journal (an interrupted apply) is a warning of the full plan's.
    root.resolve(root.journalPath),
    root.resolve(HOST_PATHS.crioConf),
    // Their modes count: a directory opened to others is drift.
    ...managedDirs(root.layout).map((d) => root.resolve(d.dir)),
  ]
  const dirs: InputSet['dirs'] = [
    {dir: root.resolve(root.layout.registriesD), suffixes: ['.yaml']},
    {dir: root.resolve(HOST_PATHS.crioConfD), suffixes: ['.conf']},
    // A namespace policy appearing in CRI-O's policy directory changes what check reports.
    ...[...new Set([HOST_PATHS.crioPolicyDir, ...targets.filter((t) => t.role === 'crio-namespace').map((t) => path.posix.dirname(t.hostPath)), ...prepared.plan.namespaceShadows.map((n) => path.posix.dirname(n.file))])].map(
      (dir) => ({dir: root.resolve(dir), suffixes: ['.json']}),
    ),
  ]
  if (root.layout.kind === 'user') dirs.push({dir: root.resolve(HOST_PATHS.registriesD), suffixes: ['.yaml']})
  // Every file an engine here would read instead (engine-view.ts), and the service units whose environment decides.
  const probed = pathsToProbe(prepared.views.map(contextOf))
  files.push(...probed.files.map((p) => root.resolve(p)), ...prepared.serviceFiles.map((p) => root.resolve(p)))
  dirs.push(...probed.dirs.map((d) => ({dir: root.resolve(d), suffixes: ['.yaml']})))
  for (const unit of ['crio.service', 'podman.service']) {
    for (const dir of UNIT_DIRS) {
      files.push(root.resolve(path.posix.join(dir, unit)))
      dirs.push({dir: root.resolve(path.posix.join(dir, `${unit}.d`)), suffixes: ['.conf']})
    }
  }

  return {files: [...new Set(files)], dirs: dedupeDirs(dirs)}
}

function dedupeDirs(dirs: InputSet['dirs']): InputSet['dirs'] {
  const seen = new Map(dirs.map((d) => [`${d.dir}\0${d.suffixes.join(',')}`, d]))
  return [...seen.values()]
}

/** The context a view was made from: enough to list the paths it probes. */
function contextOf(view: EngineView): EngineContext {
  const [major, minor] = view.containersImage.split('.').map(Number)
  const {runner} = view
  const explicit = view.policy.candidates.find((c) => c.source === 'explicit')?.path
  return {engine: view.engine, containersImage: [major, minor], runner, ...(explicit ? {explicitPolicy: explicit} : {})}
}

/**
 * Remember the inputs of a plan of the host as it now is, and what check's
 * full path would say about them (warnings and drift included), for check's
 * fast path, and what status reuses (its own digest; and the files as
 * parsed). Call it with a plan made after the writes, never before them.
 */
export async function recordFingerprint(prepared: PreparedPlan): Promise<void> {
  await rememberParses(prepared)
  const inputs = planInputs(prepared)
  if (!inputs) return
  const {root} = prepared
  const context = await fingerprintContext(root)
  const reused = reusedInputs(prepared)
  await writeFingerprint(root, {
    version: 3,
    trustFile: prepared.trust.file,
    digest: await digestInputs(inputs, context, root),
    inputs,
    warnings: prepared.plan.warnings,
    drift: planDrift(prepared.plan, (p) => root.resolve(p)),
    keys: prepared.keys.map((k) => ({name: k.name, hostPath: k.hostPath, keys: k.keys, type: k.type})),
    expiries: prepared.expiry.entries,
    validUntil: nextExpiry(prepared.expiry.entries, new Date(prepared.expiry.at)),
    engines: prepared.engines,
    reused: {inputs: reused, digest: await digestInputs(reused, context, root)},
  })
}

/**
 * The policy and registries.d files as written, parsed as status parses them,
 * for status (host/parse-cache.ts); large ones are left out unread. Loaded
 * here, not above: check's fast path imports this module.
 */
async function rememberParses(prepared: PreparedPlan): Promise<void> {
  const {root} = prepared
  const [{PARSE_CACHE_FILE_LIMIT, writeParseCache}, {parsePolicy}] = await Promise.all([import('../host/parse-cache.js'), import('../policy/parse.js')])
  const parsed = async (hostPath: string) => {
    const text = (await readRegularFile(root.resolveFull(hostPath), PARSE_CACHE_FILE_LIMIT).catch(() => undefined))?.content.toString('utf8')
    if (text === undefined) return []
    try {
      return [{text, policy: parsePolicy(text, root.resolve(hostPath)).policy}]
    } catch {
      return []
    }
  }

  const policies = (await Promise.all(prepared.targets.map(async (t) => parsed(t.hostPath)))).flat()
  await writeParseCache(parseCachePath(root), {registries: prepared.registriesParsed, policies})
}
