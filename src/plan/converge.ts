import {stat} from 'node:fs/promises'
import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import {capabilitiesOf, detectEngines, type EngineInfo, readCrioConfig} from '../host/detect.js'
import {HOST_PATHS, type HostRoot, hostRoot, trustFilePath} from '../host/paths.js'
import {planInputs, recordFingerprint} from './fingerprint-inputs.js'
import {ImagetrustError} from '../lib/errors.js'
import {managedPaths} from '../host/managed-paths.js'
import {expectedOwner} from '../host/owner.js'
import {readHostViews} from '../host/engine-view-read.js'
import {registriesEntries} from '../host/parse-cache.js'
import {type HostSnapshot, readHostFile, readHostSnapshot} from '../host/snapshot.js'
import {loadKeys} from '../keys/load.js'
import {installedKeyFiles} from '../keys/pki.js'
import type {LoadedKey} from '../keys/types.js'
import {expiringEntries, trustAsOf} from '../trustfile/expiry.js'
import {reloadTrustFile} from '../trustfile/load.js'
import type {TrustFile} from '../trustfile/types.js'
import {removeFile, removeStaleTempFiles, writeFileAtomic} from '../fs/atomic.js'
import {type BackupManifest, createBackup, markRolledBack, newBackupId, removeIncompleteBackups, restoreBackup} from './backup.js'
import {beginJournal, endJournal, interruptedApply, journalHostPath, recoverInterrupted} from './journal.js'
import {acquireLock} from '../fs/lock.js'
import {combinedKeyringPath, plan} from './plan.js'
import {readRegistriesDirs, registriesViews} from './registries-views.js'
import {parseState} from '../host/state.js'
import {createStaging, inspectStaging, type SigningResult, type SigningSetup, withoutStaging} from './staging.js'
import type {FileAction, FileChange, Plan, PolicyTarget, PreparedPlan} from './types.js'

/** The shared front half of every command: trust file + host → plan. */
export interface ConvergeOptions {
  root: string
  /** Manage the invoking user's files (~/.config/containers) instead of the system's. */
  user?: boolean
  config?: string
  replaceInvalid?: boolean
  capabilities?: Capabilities
  /** Refuse unusable keys (apply). Off for check, which reports them instead. */
  strictKeys?: boolean
  /** Foreign scopes that override the trust file's rules, to take over (apply --take-over). */
  takeOver?: string[]
  /** Keys already loaded by this run (the plan after apply's writes): not fetched again. */
  loadedKeys?: LoadedKey[]
  /** The trust file as this run already read it: not parsed again while the file is unchanged. */
  loadedTrust?: TrustFile
  /** The desired state as of this time (entries whose until has passed are left out); default: now. */
  at?: Date
  /** The engines this run already found: not asked for their versions again. */
  foundEngines?: EngineInfo[]
}

export type {PreparedPlan} from './types.js'

/**
 * The policy files to write: the managed one (system or user); CRI-O's
 * signature_policy when it points elsewhere; one file per CRI-O namespace.
 */
export async function policyTargets(root: HostRoot, trust: TrustFile): Promise<PolicyTarget[]> {
  const {layout} = root
  const targets: PolicyTarget[] = [{hostPath: layout.policy, role: layout.kind}]
  if (layout.kind === 'user') {
    if (trust.crioNamespaces.length > 0) throw new ImagetrustError('crio.namespaces are system-wide: apply them without --user', {location: {file: trust.file, line: trust.crioNamespaces[0].line}})
    return targets
  }

  const crio = await readCrioConfig(root)
  // The same file written another way (/etc/containers/./policy.json) is the same target.
  const signaturePolicy = crio?.signaturePolicy && path.posix.normalize(crio.signaturePolicy)
  if (signaturePolicy && signaturePolicy !== layout.policy) targets.push({hostPath: signaturePolicy, role: 'crio'})
  const dir = crio?.signaturePolicyDir ?? HOST_PATHS.crioPolicyDir
  for (const {namespace} of trust.crioNamespaces) targets.push({hostPath: `${dir}/${namespace}.json`, role: 'crio-namespace', namespace})
  return targets
}

export async function preparePlan(options: ConvergeOptions): Promise<PreparedPlan> {
  const root = hostRoot(options)
  const source = await reloadTrustFile(trustFilePath(options), options.loadedTrust)
  const at = options.at ?? new Date()
  const asOf = trustAsOf(source, at)
  const loaded = asOf.trust
  const {isSigningHost} = await import('../keys/signer.js')
  const signing = isSigningHost(loaded)
  // Only the signing host stages signatures; pulling hosts apply the same file without lookaside-staging.
  const trust = loaded.signer && !signing ? withoutStaging(loaded) : loaded
  const engines = options.foundEngines ?? (await detectEngines())
  const capabilities = options.capabilities ?? capabilitiesOf(engines)
  const keys = options.loadedKeys ?? (await loadKeys(trust, capabilities, {strict: options.strictKeys ?? true, keyDir: root.layout.keyDir}))
  const signer = signing ? await signingSetup(root, trust, keys, capabilities) : undefined
  // A pki key installs its CA intermediates too: a key file of its own for the plan.
  const keyFiles = installedKeyFiles(keys)
  const keyPaths = new Set(keyFiles.map((k) => k.hostPath))
  const byName = new Map(keys.map((k) => [k.name, k]))
  for (const scope of trust.scopes) {
    if (scope.keys.length > 1) keyPaths.add(combinedKeyringPath(scope.keys.map((n) => byName.get(n)!), root.layout.keyDir))
  }

  const targets = await policyTargets(root, trust)
  const policyPaths = new Set(targets.map((t) => t.hostPath))
  const stateFile = await readHostFile(root, root.statePath)
  if (stateFile.content) {
    const previous = parseState(stateFile.content.toString('utf8'), stateFile.realPath, await managedPaths(root))
    for (const p of previous.keyFiles) keyPaths.add(p)
    for (const p of previous.generatedPolicies) policyPaths.add(p)
  }

  const {views, crio, units} = await readHostViews(root, engines)
  const host = await readHostSnapshot(root, {keyHostPaths: [...keyPaths], policyPaths: [...policyPaths], features: capabilities.policy, views})
  const registriesReading = registriesViews(views)
  const registries = {views: registriesReading, dirs: await readRegistriesDirs(root, registriesReading)}
  // A per-namespace policy CRI-O has that is not one we generate: pods there never see the trust file.
  const crioNamespacePolicies = (crio?.namespaces ?? []).filter((n) => !policyPaths.has(n.file))
  const planned = await plan({
    trust,
    keys: keyFiles,
    host,
    crioNamespacePolicies,
    capabilities,
    layout: root.layout,
    statePath: root.statePath,
    targets,
    replaceInvalid: options.replaceInvalid,
    takeOver: options.takeOver,
    owner: await expectedOwner(root),
    registries,
  })
  addViewFindings(planned, host)
  if (signer) planned.warnings.push(...signer.warnings)
  planned.warnings.push(...asOf.notes)
  planned.notes.push(...asOf.expired.map((e) => `${e.what} "${e.name}" expired on ${e.until}${e.reason ? ` (${e.reason})` : ''}: left out of what apply writes`))
  if (await interruptedApply(root)) planned.warnings.push(`an apply was interrupted before it finished (${root.resolve(journalHostPath(root))}): this plan sees its half-written files; the next apply rolls it back first`)
  const expiry = {at: at.toISOString(), source, entries: expiringEntries(source), expired: asOf.expired}
  const registriesParsed = registriesEntries([...host.registriesD.files, ...(host.systemRegistriesD?.files ?? []), ...[...registries.dirs.values()].flat()])
  return {root, trust, keys, targets, plan: planned, expiry, engines, views, serviceFiles: units.flatMap((u) => u.environmentFiles), registriesParsed, ...(signer ? {signer: signer.setup} : {})}
}

/** What the engines' views add to a plan: $CONTAINERS_POLICY_JSON shadows (drift), and their warnings. */
function addViewFindings(planned: Plan, host: HostSnapshot): void {
  for (const shadow of host.environmentShadows) {
    planned.shadowedBy.push(shadow.realPath)
    planned.warnings.push(`$CONTAINERS_POLICY_JSON in ${shadow.setBy} makes ${shadow.engines.join(', ')} read ${shadow.realPath} instead of the managed policy: the trust file is not what those pulls use`)
  }

  planned.warnings.push(...host.viewWarnings)
}

/** The signing host: its private key checked against the trusted public key, its staging directories inspected. Reads only. */
async function signingSetup(root: HostRoot, trust: TrustFile, keys: LoadedKey[], capabilities: Capabilities): Promise<{setup: SigningSetup; warnings: string[]}> {
  const {checkSigner} = await import('../keys/signer.js')
  const report = await checkSigner(trust, keys, capabilities)
  const staging = await inspectStaging(root, trust)
  const owner = await stat(report.gnupgHome).then((s) => ({uid: s.uid, gid: s.gid}))
  const {warnings, ...rest} = report
  return {setup: {...rest, staging, owner}, warnings}
}

function signingResult(setup: SigningSetup, created: string[]): SigningResult {
  const {fingerprint, gnupgHome, scopes, testSigned} = setup
  return {fingerprint, gnupgHome, scopes, testSigned, staging: setup.staging.map((d) => ({scope: d.scope, path: d.path, created: created.includes(d.path)}))}
}


export interface ApplyResult {
  changed: boolean
  notes: string[]
  files: Array<{path: string; action: FileAction}>
  backup: string | null
  warnings: string[]
  dryRun: boolean
  /** Only on the signing host: its key and staging directories. */
  signer?: SigningResult
}

const WRITE_ORDER = {key: 0, 'registries.d': 1, policy: 2, state: 3} as const

export interface ApplyOptions extends ConvergeOptions {
  dryRun?: boolean
  lockTimeoutMs?: number
  /** Runs inside the lock after planning; returning false writes nothing (preflight verification). */
  gate?: (prepared: PreparedPlan) => Promise<boolean>
}

/** Lock, roll back an interrupted apply, re-plan against the host as it is now, back up, then write each file atomically. */
export async function applyTrust(options: ApplyOptions): Promise<ApplyResult & {prepared: PreparedPlan; blocked?: boolean}> {
  const root = hostRoot(options)
  const lock = options.dryRun ? undefined : await acquireLock(root.resolve(root.lockPath), options.lockTimeoutMs ?? 60_000)
  try {
    const recovered = options.dryRun ? [] : await cleanUpAfterKilledRuns(root)
    const prepared = await preparePlan(options)
    const changes = [...prepared.plan.changes].sort((a, b) => WRITE_ORDER[a.kind] - WRITE_ORDER[b.kind])
    const files = changes.map((c) => ({path: root.resolve(c.hostPath), action: c.action}))
    const missingStaging = prepared.signer?.staging.filter((d) => !d.exists) ?? []
    const base = {changed: changes.length > 0 || missingStaging.length > 0, files, notes: prepared.plan.notes, warnings: [...recovered, ...prepared.plan.warnings], dryRun: Boolean(options.dryRun), prepared}
    const signer = (created: string[]) => (prepared.signer ? {signer: signingResult(prepared.signer, created)} : {})
    if (options.dryRun) return {...base, backup: null, ...signer(missingStaging.map((d) => d.path))}
    if (options.gate && !(await options.gate(prepared))) return {...base, changed: false, files: [], backup: null, blocked: true}
    const created = prepared.signer ? (await createStaging(prepared.signer.staging, prepared.signer.owner)).map((d) => d.path) : []
    if (changes.length === 0) {
      await recordFingerprint(prepared)
      return {...base, backup: null, ...signer(created)}
    }

    const backup = await writeAll(root, changes)
    return {...base, warnings: [...recovered, ...(await recordSettled(options, prepared))], backup: backup.id, ...signer(created)}
  } finally {
    await lock?.release()
  }
}

/**
 * Under the lock, what a killed run left is ours to settle: an apply it
 * interrupted is rolled back (its journal), its temp files and an unfinished
 * backup are garbage. Returns what to tell the user.
 */
async function cleanUpAfterKilledRuns(root: HostRoot): Promise<string[]> {
  const dirs = [root.layout.registriesD, root.layout.keyDir, path.posix.dirname(root.layout.policy), root.layout.stateDir].map((d) => root.resolveFull(d))
  await removeStaleTempFiles(dirs)
  const recovered = await recoverInterrupted(root)
  await removeIncompleteBackups(root)
  return recovered
}

/**
 * The files of one apply commit as one unit: the journal, naming the
 * backup, is on disk before the first rename and gone after the last, so a
 * run killed in between is rolled back by the next one. A failed write
 * (disk full, read-only file system) is rolled back at once.
 */
async function writeAll(root: HostRoot, changes: FileChange[]): Promise<BackupManifest> {
  const id = newBackupId()
  await beginJournal(root, id)
  const backup = await createBackup(root, changes, id)
  try {
    crashPoint(0)
    for (const [i, change] of changes.entries()) {
      await writeChange(root, change)
      crashPoint(i + 1)
    }
  } catch (error) {
    const restored = await restoreBackup(root, backup).catch((restoreError: Error) => {
      throw new ImagetrustError(`${(error as Error).message}; restoring the backup ${backup.id} failed too: ${restoreError.message} (the next apply tries again)`, {cause: error})
    })
    await markRolledBack(root, backup)
    await endJournal(root)
    throw new ImagetrustError(`${(error as Error).message}\nnothing was changed: the ${restored} file(s) already written were restored from backup ${backup.id}`, {cause: error})
  }

  await endJournal(root)
  return backup
}

/**
 * Plans again against the host as written: the warnings an apply prints,
 * and those check's fast path answers, are the full plan's for the host it
 * leaves behind, not what the plan said before the writes. Those about the
 * change itself (a file left in place) are kept. A non-empty plan here is a
 * bug worth a loud warning, and gets no fingerprint.
 */
async function recordSettled(options: ApplyOptions, before: PreparedPlan): Promise<string[]> {
  const recordable = planInputs(before) !== undefined
  // A key from a URL is not fetched twice: the keys just installed are the ones the host has.
  const after = await preparePlan({...options, capabilities: before.plan.capabilities, foundEngines: before.engines, takeOver: undefined, loadedTrust: before.expiry.source, at: new Date(before.expiry.at), ...(recordable ? {} : {loadedKeys: before.keys})})
  const warnings = [...after.plan.warnings, ...before.plan.warnings.filter((w) => !after.plan.warnings.includes(w))]
  const left = after.plan.changes.filter((c) => c.kind !== 'state')
  if (left.length > 0) {
    warnings.push(`apply did not converge: a new plan still changes ${left.map((c) => after.root.resolve(c.hostPath)).join(', ')}; please report this`)
    return warnings
  }

  if (recordable) await recordFingerprint(after)
  return warnings
}

/**
 * For tests only: IMAGETRUST_TEST_CRASH_AFTER=N kills this run (SIGKILL, as
 * a power cut would: no cleanup) after the Nth file of an apply is renamed
 * or removed into place; 0 is just before the first.
 */
function crashPoint(done: number): void {
  const after = process.env.IMAGETRUST_TEST_CRASH_AFTER
  if (after !== undefined && after !== '' && Number(after) === done) process.kill(process.pid, 'SIGKILL')
}

async function writeChange(root: HostRoot, change: FileChange): Promise<void> {
  const realPath = root.resolve(change.hostPath)
  if (change.after === null) {
    await removeFile(realPath)
    return
  }

  // The plan decided the mode (and, for files we own, the owner); otherwise the owner is kept.
  const current = await stat(root.resolveFull(change.hostPath)).catch(() => undefined) // a final symlink's target, in the root
  await writeFileAtomic(realPath, change.after, {mode: change.mode, uid: change.owner?.uid ?? current?.uid, gid: change.owner?.gid ?? current?.gid})
}

export {trustFilePath} from '../host/paths.js'
