import {readFile, stat} from 'node:fs/promises'

import type {Capabilities} from '../host/capabilities.js'
import {capabilitiesOf, detectEngines} from '../host/detect.js'
import {HOST_PATHS, HostRoot} from '../host/paths.js'
import {readHostSnapshot} from '../host/snapshot.js'
import {loadKeys} from '../keys/load.js'
import type {LoadedKey} from '../keys/types.js'
import {loadTrustFile} from '../trustfile/load.js'
import type {TrustFile} from '../trustfile/types.js'
import {removeFile, writeFileAtomic} from './atomic.js'
import {createBackup} from './backup.js'
import {acquireLock} from './lock.js'
import {combinedKeyringPath, plan} from './plan.js'
import {LOCK_HOST_PATH, STATE_HOST_PATH, parseState} from './state.js'
import type {FileAction, Plan} from './types.js'

/** The shared front half of every command: trust file + host → plan. */
export interface ConvergeOptions {
  root: string
  config?: string
  replaceInvalid?: boolean
  capabilities?: Capabilities
  /** Refuse unusable keys (apply). Off for check, which reports them instead. */
  strictKeys?: boolean
}

export interface PreparedPlan {
  root: HostRoot
  trust: TrustFile
  keys: LoadedKey[]
  plan: Plan
}

export function trustFilePath(options: {root: string; config?: string}): string {
  return options.config ?? new HostRoot(options.root).resolve(HOST_PATHS.trustFile)
}

export async function preparePlan(options: ConvergeOptions): Promise<PreparedPlan> {
  const root = new HostRoot(options.root)
  const trust = await loadTrustFile(trustFilePath(options))
  const capabilities = options.capabilities ?? capabilitiesOf(await detectEngines())
  const keys = await loadKeys(trust, capabilities, {strict: options.strictKeys ?? true})
  const keyPaths = new Set(keys.map((k) => k.hostPath))
  const byName = new Map(keys.map((k) => [k.name, k]))
  for (const scope of trust.scopes) {
    if (scope.keys.length > 1) keyPaths.add(combinedKeyringPath(scope.keys.map((n) => byName.get(n)!)))
  }

  const stateText = await readFile(root.resolve(STATE_HOST_PATH), 'utf8').catch(() => null)
  if (stateText) for (const p of parseState(stateText, root.resolve(STATE_HOST_PATH)).keyFiles) keyPaths.add(p)
  const host = await readHostSnapshot(root, [...keyPaths], capabilities.policy)
  return {root, trust, keys, plan: await plan({trust, keys, host, capabilities, replaceInvalid: options.replaceInvalid})}
}

export interface ApplyResult {
  changed: boolean
  files: Array<{path: string; action: FileAction}>
  backup: string | null
  warnings: string[]
  dryRun: boolean
}

const WRITE_ORDER = {key: 0, 'registries.d': 1, policy: 2, state: 3} as const

/** Lock, re-plan against the host as it is now, back up, then write each file atomically. */
export interface ApplyOptions extends ConvergeOptions {
  dryRun?: boolean
  lockTimeoutMs?: number
  /** Runs inside the lock after planning; returning false writes nothing (preflight verification). */
  gate?: (prepared: PreparedPlan) => Promise<boolean>
}

export async function applyTrust(options: ApplyOptions): Promise<ApplyResult & {prepared: PreparedPlan; blocked?: boolean}> {
  const root = new HostRoot(options.root)
  const lock = options.dryRun ? undefined : await acquireLock(root.resolve(LOCK_HOST_PATH), options.lockTimeoutMs ?? 60_000)
  try {
    const prepared = await preparePlan(options)
    const changes = [...prepared.plan.changes].sort((a, b) => WRITE_ORDER[a.kind] - WRITE_ORDER[b.kind])
    const files = changes.map((c) => ({path: root.resolve(c.hostPath), action: c.action}))
    const base = {changed: changes.length > 0, files, warnings: prepared.plan.warnings, dryRun: Boolean(options.dryRun), prepared}
    if (options.dryRun) return {...base, backup: null}
    if (options.gate && !(await options.gate(prepared))) return {...base, changed: false, files: [], backup: null, blocked: true}
    if (changes.length === 0) return {...base, backup: null}
    const backup = await createBackup(root, changes)
    for (const change of changes) {
      const realPath = root.resolve(change.hostPath)
      if (change.after === null) {
        await removeFile(realPath)
        continue
      }

      // Mode and owner of an existing file are kept; key files are always 0644.
      const current = await stat(realPath).catch(() => undefined)
      const mode = change.kind === 'key' || !current ? change.mode : current.mode & 0o7777
      await writeFileAtomic(realPath, change.after, {mode, uid: current?.uid, gid: current?.gid})
    }

    return {...base, backup: backup.id}
  } finally {
    await lock?.release()
  }
}

