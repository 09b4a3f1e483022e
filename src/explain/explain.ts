import {crioPolicyFor, detectEngines, type EngineInfo, readCrioConfig} from '../host/detect.js'
import {type EngineView, viewsDiffer} from '../host/engine-view.js'
import {configPathReports, readHostViews, viewWarnings} from '../host/engine-view-read.js'
import type {HostRoot} from '../host/paths.js'
import {readHostFile, readRegistriesDir} from '../host/snapshot.js'
import {inspectGpgKeys} from '../keys/gpg.js'
import {checkSigstoreKey} from '../keys/sigstore.js'
import {ImagetrustError} from '../lib/errors.js'
import {effectiveRule} from '../policy/effective.js'
import {parsePolicy} from '../policy/parse.js'
import {type DockerReference, parseImageReference, referenceString} from '../policy/reference.js'
import type {PolicyRequirement} from '../policy/types.js'
import {effectiveFiles} from '../registries-d/layers.js'
import {type LookasideResolution, resolveLookaside} from '../registries-d/lookup.js'
import {readRegistriesDirs, registriesViews} from '../plan/registries-views.js'
import type {RegistriesFile} from '../registries-d/read.js'

/** What containers/image would do for a pull of one image, and why. */
export interface Explanation {
  image: string
  /** The fully expanded reference containers/image matches against. */
  reference: string
  policy: {
    file: string
    /** The scope used: a key, "" (transport default), or null (global default). */
    scope: string | null
    tried: Array<{scope: string; present: boolean}>
    requirements: PolicyRequirement[]
    keys: KeyBehind[]
  }
  /** The registries.d files the explained engine loads (a merge across directories from containers/image 5.40). */
  registriesD: {dir: string; files: string[]} & LookasideResolution
  /** CRI-O's policy file for this pull (per namespace when one is given). */
  crio?: {policy: string; namespace?: string; configFiles: string[]}
  /** Each engine found, as it reads the host: shown whenever their views differ. */
  engines: EngineExplanation[]
  enginesDiffer: boolean
  warnings: string[]
}

export interface KeyBehind {
  /** keyPath as written in policy.json, or "keyData". */
  source: string
  fingerprints: string[]
  userIds: string[]
  error?: string
}

async function describeKey(root: HostRoot, source: string, bytes: Uint8Array | null, sigstore: boolean): Promise<KeyBehind> {
  if (!bytes) return {source, fingerprints: [], userIds: [], error: `${root.resolve(source)} does not exist: every pull under this scope fails`}
  try {
    if (sigstore) return {source, fingerprints: [checkSigstoreKey(bytes, {name: source}).info.fingerprint], userIds: []}
    const {keys} = await inspectGpgKeys(bytes, {name: source})
    return {source, fingerprints: keys.map((k) => k.fingerprint), userIds: keys.flatMap((k) => k.userIds)}
  } catch (error) {
    return {source, fingerprints: [], userIds: [], error: (error as Error).message}
  }
}

export async function keysBehind(root: HostRoot, requirements: PolicyRequirement[]): Promise<KeyBehind[]> {
  const out: KeyBehind[] = []
  for (const requirement of requirements) {
    if (requirement.type !== 'signedBy' && requirement.type !== 'sigstoreSigned') continue
    const sigstore = requirement.type === 'sigstoreSigned'
    const paths = [...(requirement.keyPath ? [requirement.keyPath] : []), ...(requirement.keyPaths ?? [])]
    for (const p of paths) out.push(await describeKey(root, p, (await readHostFile(root, p)).content, sigstore))
    const datas = [...(requirement.keyData ? [requirement.keyData] : []), ...((requirement as {keyDatas?: string[]}).keyDatas ?? [])]
    for (const data of datas) out.push(await describeKey(root, 'keyData', Buffer.from(data.replaceAll(/\s/g, ''), 'base64'), sigstore))
  }

  return out
}

/** One engine's answer for the image, where the engines read different files. */
export interface EngineExplanation {
  engine: string
  version?: string
  service?: string
  containersImage: string
  /** The policy file it reads (real path), or null when it finds none. */
  policyFile: string | null
  policyError?: string
  /** The scope its policy uses for this image, when the file parses. */
  scope?: string | null
  registriesFiles: string[]
  lookaside?: string
}

async function registriesOf(root: HostRoot, view: EngineView): Promise<RegistriesFile[]> {
  // Read as plan reads them: a name that is not UTF-8 is still a file the engine loads.
  const [reading] = registriesViews([view])
  return effectiveFiles(reading, await readRegistriesDirs(root, [reading]))
}

async function explainEngine(root: HostRoot, view: EngineView, ref: DockerReference): Promise<EngineExplanation> {
  const base = {engine: view.engine, ...(view.version ? {version: view.version} : {}), ...(view.service ? {service: view.service} : {}), containersImage: view.containersImage}
  const registriesFiles = view.registriesD.files.map((f) => root.resolve(f.path))
  const lookaside = resolveLookaside(await registriesOf(root, view), ref).lookaside.value
  if (!view.policy.reads) return {...base, policyFile: null, policyError: view.policy.error, registriesFiles, lookaside: String(lookaside)}
  const file = await readHostFile(root, view.policy.reads)
  try {
    const scope = file.content ? effectiveRule(parsePolicy(file.content, file.realPath).policy, ref).scope : undefined
    return {...base, policyFile: file.realPath, ...(scope === undefined ? {} : {scope}), registriesFiles, lookaside: String(lookaside)}
  } catch (error) {
    return {...base, policyFile: file.realPath, policyError: (error as Error).message, registriesFiles, lookaside: String(lookaside)}
  }
}

export async function explainImage(root: HostRoot, image: string, options: {namespace?: string; engines?: EngineInfo[]} = {}): Promise<Explanation> {
  const ref = parseImageReference(image)
  if (typeof ref === 'string') throw new ImagetrustError(`invalid image reference "${image}": ${ref}`)
  const host = await readHostViews(root, options.engines ?? (await detectEngines()))
  const crio = host.crio ?? (await readCrioConfig(root))
  if (options.namespace !== undefined && !crio) throw new ImagetrustError(`--namespace is for CRI-O, and no CRI-O configuration was found under ${root.resolve('/etc/crio')}`)
  // The engine explained: CRI-O for a namespace, else the first command-line engine (as pulls from this shell).
  const crioView = host.views.find((v) => v.engine === 'crio')
  const explainable = options.namespace === undefined ? host.views.filter((v) => v.engine !== 'crio') : host.views.filter((v) => v.engine === 'crio')
  const view = explainable.find((v) => v.policy.reads) ?? explainable[0] ?? host.views.find((v) => v.policy.reads) ?? host.views[0]
  const namespaced = options.namespace === undefined ? undefined : crio!.namespaces.find((n) => n.namespace === options.namespace)?.file
  const policyHostPath = namespaced ?? view.policy.reads ?? (options.namespace === undefined ? root.layout.policy : crioPolicyFor(crio!, options.namespace))
  const policyFile = await readHostFile(root, policyHostPath)
  if (!policyFile.content) throw new ImagetrustError(`${policyFile.realPath} does not exist: containers/image refuses every pull without a policy`)
  const {policy, warnings} = parsePolicy(policyFile.content, policyFile.realPath)
  const resolution = effectiveRule(policy, ref)
  const registries = await registriesOf(root, view)
  warnings.push(...(await readRegistriesDir(root, root.layout.registriesD)).warnings)
  warnings.push(...configPathReports(root, host.views).filter((p) => p.shadows).map((p) => `${p.path} shadows ${p.shadows}`), ...viewWarnings(root, host.views, host.snapshot))
  const engines = await Promise.all(host.views.map((v) => explainEngine(root, v, ref)))
  const differ = host.views.some((v) => viewsDiffer(v, host.views[0]))
  if (differ) warnings.push(`the engines here read different files for this image: ${engines.map((e) => `${e.service ?? e.engine} reads ${e.policyFile ?? 'no policy'}`).join('; ')}`)
  return {
    image,
    reference: referenceString({...ref, tag: ref.digest ? ref.tag : (ref.tag ?? 'latest')}),
    policy: {
      file: policyFile.realPath,
      scope: resolution.scope,
      tried: resolution.tried,
      requirements: resolution.requirements,
      keys: await keysBehind(root, resolution.requirements),
    },
    registriesD: {dir: root.resolve(view.registriesD.merge === 'single' ? view.registriesD.dirs[0].path : root.layout.registriesD), files: registries.map((f) => f.displayPath), ...resolveLookaside(registries, ref)},
    crio: crio ? {policy: namespaced ?? crioView?.policy.reads ?? crioPolicyFor(crio, options.namespace), namespace: options.namespace, configFiles: crio.files} : undefined,
    engines,
    enginesDiffer: differ,
    warnings,
  }
}
