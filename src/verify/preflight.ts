import {type HostRoot, hostRoot} from '../host/paths.js'
import {rollbackLatest, type RollbackResult} from '../plan/backup.js'
import {type ApplyOptions, type ApplyResult, applyTrust} from '../plan/converge.js'
import {acquireLock} from '../fs/lock.js'
import {liveContext, sandboxContext, type VerifyContext} from './context.js'
import type {PullEngine} from './pull.js'
import {casesFromTrust, runVerify, type VerifyCase, type VerifyReport} from './verify.js'

export interface VerifiedApply {
  installed: boolean
  preflight: VerifyReport
  postflight?: VerifyReport
  rolledBack?: RollbackResult
  apply: Omit<ApplyResult, 'warnings'>
  warnings: string[]
  exitCode: number
}

/** The config the host reads: live for /, a sandbox copy under --root. */
export async function installedContext(root: HostRoot): Promise<VerifyContext> {
  return root.isSandbox ? sandboxContext(root) : liveContext()
}

/**
 * apply --verify: test-pull against the candidate config first and install
 * only when enforcement is confirmed; then verify the installed config and
 * roll back by itself if that fails.
 */
export async function applyVerified(
  options: ApplyOptions & {engines: PullEngine[]; tlsVerify: boolean; extraCases: VerifyCase[]},
): Promise<VerifiedApply> {
  const root = hostRoot(options)
  let preflight: VerifyReport | undefined
  const applied = await applyTrust({
    ...options,
    async gate(prepared) {
      const overrides = new Map(prepared.plan.changes.map((c) => [c.hostPath, c.after]))
      const context = await sandboxContext(root, overrides)
      try {
        const cases = [...casesFromTrust(prepared.trust), ...options.extraCases]
        preflight = await runVerify(cases, options.engines, context, {tlsVerify: options.tlsVerify, root})
      } finally {
        await context.cleanup()
      }

      return preflight.exitCode === 0
    },
  })
  const {prepared, warnings, ...apply} = applied
  if (applied.blocked || !applied.changed) {
    return {installed: false, preflight: preflight!, apply, warnings, exitCode: preflight!.exitCode}
  }

  const context = await installedContext(root)
  let postflight: VerifyReport
  try {
    postflight = await runVerify([...casesFromTrust(prepared.trust), ...options.extraCases], options.engines, context, {tlsVerify: options.tlsVerify, root})
  } finally {
    await context.cleanup()
  }

  if (postflight.exitCode === 0) return {installed: true, preflight: preflight!, postflight, apply, warnings, exitCode: 0}
  const lock = await acquireLock(root.resolve(root.lockPath), options.lockTimeoutMs ?? 60_000)
  try {
    const rolledBack = await rollbackLatest(root, {})
    return {installed: false, preflight: preflight!, postflight, rolledBack, apply, warnings, exitCode: postflight.exitCode}
  } finally {
    await lock.release()
  }
}
