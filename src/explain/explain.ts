import {configPaths, crioPolicyFor, readCrioConfig} from '../host/detect.js'
import type {HostRoot} from '../host/paths.js'
import {readHostFile, readRegistriesDir} from '../host/snapshot.js'
import {inspectGpgKeys} from '../keys/gpg.js'
import {checkCaCertificates} from '../keys/pki.js'
import {checkSigstoreKey} from '../keys/sigstore.js'
import {ImagetrustError} from '../lib/errors.js'
import {effectiveRule} from '../policy/effective.js'
import {parsePolicy} from '../policy/parse.js'
import {parseImageReference, referenceString} from '../policy/reference.js'
import type {PolicyRequirement} from '../policy/types.js'
import {type LookasideResolution, resolveLookaside} from '../registries-d/lookup.js'

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
  registriesD: {dir: string} & LookasideResolution
  /** CRI-O's policy file for this pull (per namespace when one is given). */
  crio?: {policy: string; namespace?: string; configFiles: string[]}
  warnings: string[]
}

export interface KeyBehind {
  /** keyPath as written in policy.json, or "keyData". */
  source: string
  fingerprints: string[]
  userIds: string[]
  /** Present for a sigstore pki requirement's CA files (userIds are then the certificates' subjects). */
  role?: 'ca-roots' | 'ca-intermediates'
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

/** A pki requirement's CA files: each certificate's SHA-256 fingerprint and subject. */
async function caFilesBehind(root: HostRoot, pki: Record<string, string>): Promise<KeyBehind[]> {
  const out: KeyBehind[] = []
  const files = [['ca-roots', pki.caRootsPath], ['ca-intermediates', pki.caIntermediatesPath]] as const
  for (const [role, source] of files.filter(([, p]) => p !== undefined && p !== '') as Array<[KeyBehind['role'], string]>) {
    const bytes = (await readHostFile(root, source)).content
    if (!bytes) {
      out.push({source, role, fingerprints: [], userIds: [], error: `${root.resolve(source)} does not exist: every pull under this scope fails`})
      continue
    }

    try {
      const {infos, problems} = checkCaCertificates(bytes, {name: source, where: root.resolve(source)})
      out.push({source, role, fingerprints: infos.map((i) => i.fingerprint), userIds: infos.flatMap((i) => i.userIds), ...(problems.length > 0 ? {error: problems.join('; ')} : {})})
    } catch (error) {
      out.push({source, role, fingerprints: [], userIds: [], error: (error as Error).message})
    }
  }

  return out
}

export async function keysBehind(root: HostRoot, requirements: PolicyRequirement[]): Promise<KeyBehind[]> {
  const out: KeyBehind[] = []
  for (const requirement of requirements) {
    if (requirement.type !== 'signedBy' && requirement.type !== 'sigstoreSigned') continue
    const sigstore = requirement.type === 'sigstoreSigned'
    if (sigstore && requirement.pki) out.push(...(await caFilesBehind(root, requirement.pki)))
    const paths = [...(requirement.keyPath ? [requirement.keyPath] : []), ...(requirement.keyPaths ?? [])]
    for (const p of paths) out.push(await describeKey(root, p, (await readHostFile(root, p)).content, sigstore))
    const datas = [...(requirement.keyData ? [requirement.keyData] : []), ...((requirement as {keyDatas?: string[]}).keyDatas ?? [])]
    for (const data of datas) out.push(await describeKey(root, 'keyData', Buffer.from(data.replaceAll(/\s/g, ''), 'base64'), sigstore))
  }

  return out
}

export async function explainImage(root: HostRoot, image: string, options: {namespace?: string} = {}): Promise<Explanation> {
  const ref = parseImageReference(image)
  if (typeof ref === 'string') throw new ImagetrustError(`invalid image reference "${image}": ${ref}`)
  const crio = await readCrioConfig(root)
  if (options.namespace !== undefined && !crio) throw new ImagetrustError(`--namespace is for CRI-O, and no CRI-O configuration was found under ${root.resolve('/etc/crio')}`)
  // With a namespace, evaluate the file CRI-O would use for it.
  const policyHostPath = options.namespace === undefined ? root.layout.policy : crioPolicyFor(crio!, options.namespace)
  const policyFile = await readHostFile(root, policyHostPath)
  if (!policyFile.content) throw new ImagetrustError(`${policyFile.realPath} does not exist: containers/image refuses every pull without a policy`)
  const {policy, warnings} = parsePolicy(policyFile.content, policyFile.realPath)
  const resolution = effectiveRule(policy, ref)
  const registries = await readRegistriesDir(root, root.layout.registriesD)
  warnings.push(...registries.warnings)
  for (const report of await configPaths(root)) if (report.shadows) warnings.push(`${report.path} shadows ${report.shadows}`)
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
    registriesD: {dir: root.resolve(root.layout.registriesD), ...resolveLookaside(registries.files, ref)},
    crio: crio ? {policy: crioPolicyFor(crio, options.namespace), namespace: options.namespace, configFiles: crio.files} : undefined,
    warnings,
  }
}
