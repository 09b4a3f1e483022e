import path from 'node:path'

import {readCrioConfig} from './detect.js'
import {HOST_PATHS, type HostRoot} from './paths.js'

/**
 * The host paths imagetrust may write or delete. A path read from one of its
 * own files (state.json, a backup manifest) is input like any other: one that
 * is not among these is refused, so a tampered file cannot steer a write or a
 * delete elsewhere, even without --root.
 */
export interface ManagedPaths {
  keyDir: string
  registriesD: string
  statePath: string
  /** Policy files patched in place: the layout's, and CRI-O's signature_policy. */
  policies: string[]
  /** Where CRI-O per-namespace policies are generated: the default and the configured signature_policy_dir. */
  generatedPolicyDirs: string[]
}

export async function managedPaths(root: HostRoot): Promise<ManagedPaths> {
  const {layout} = root
  const policies = [layout.policy]
  const generatedPolicyDirs: string[] = []
  if (layout.kind === 'system') {
    const crio = await readCrioConfig(root)
    if (crio?.signaturePolicy) policies.push(crio.signaturePolicy)
    generatedPolicyDirs.push(HOST_PATHS.crioPolicyDir)
    if (crio?.signaturePolicyDir) generatedPolicyDirs.push(crio.signaturePolicyDir)
  }

  return {keyDir: layout.keyDir, registriesD: layout.registriesD, statePath: root.statePath, policies, generatedPolicyDirs}
}

/** Absolute, without `.`, `..`, `//` or a trailing slash: compared as strings, such a path means what it says. */
export function isCanonicalHostPath(p: string): boolean {
  return p.startsWith('/') && p.length > 1 && path.posix.normalize(p) === p && !p.endsWith('/') && !p.includes('\0')
}

/** A direct child of `dir` (not hidden: temp files are), optionally with a suffix. */
function isChildOf(p: string, dir: string, suffix = ''): boolean {
  const name = path.posix.basename(p)
  return isCanonicalHostPath(p) && path.posix.dirname(p) === dir && !name.startsWith('.') && name.endsWith(suffix) && name.length > suffix.length
}

export function isKeyFilePath(managed: ManagedPaths, p: string): boolean {
  return isChildOf(p, managed.keyDir)
}

export function isGeneratedPolicyPath(managed: ManagedPaths, p: string): boolean {
  return managed.generatedPolicyDirs.some((dir) => isChildOf(p, dir, '.json'))
}

export function isRegistriesFilePath(managed: ManagedPaths, p: string): boolean {
  return isChildOf(p, managed.registriesD, '.yaml')
}

/** Any file an apply may back up and a rollback restore. */
export function isManagedFile(managed: ManagedPaths, p: string): boolean {
  return (
    p === managed.statePath ||
    managed.policies.includes(p) ||
    isGeneratedPolicyPath(managed, p) ||
    isKeyFilePath(managed, p) ||
    isRegistriesFilePath(managed, p)
  )
}

/** Why a path is refused, for error messages. */
export function describeManaged(managed: ManagedPaths): string {
  return [managed.statePath, ...managed.policies, ...managed.generatedPolicyDirs.map((d) => `${d}/*.json`), `${managed.keyDir}/*`, `${managed.registriesD}/*.yaml`].join(', ')
}
