import type {HostFile} from '../host/snapshot.js'
import {ImagetrustError} from '../lib/errors.js'
import {parsePolicy} from '../policy/parse.js'
import {detectIndent, samePolicy, serializePolicy} from '../policy/serialize.js'
import type {Policy, PolicyRequirement} from '../policy/types.js'
import {ownershipOf} from './ownership.js'
import type {FileChange, Owner, PlanInput, PolicyTarget} from './types.js'

/** One managed file at a time: what changes, whether it is ours to change, and what to do with one no longer needed. */

export const FILE_MODE = 0o644

/**
 * Mode and owner are part of a managed file's desired state: key files are
 * 0644 exactly (rootless pulls read them); other files keep the host's mode
 * without group and world write, 0644 when created. Anything writable by
 * others could rewrite what the host trusts.
 */
function attributeDrift(file: HostFile | undefined, kind: FileChange['kind'], owner: Owner | undefined): {mode: number; reasons: FileChange['reasons']} {
  const mode = kind === 'key' || file?.mode === undefined ? FILE_MODE : file.mode & ~0o022
  const reasons: FileChange['reasons'] = []
  if (file?.content && kind !== 'state') {
    if (file.mode !== undefined && file.mode !== mode) reasons.push('mode')
    if (owner && (file.uid !== owner.uid || file.gid !== owner.gid)) reasons.push('owner')
  }

  return {mode, reasons}
}

export function fileChange(file: HostFile | undefined, hostPath: string, kind: FileChange['kind'], after: string | null, owner?: Owner): FileChange | undefined {
  const before = file?.content ? file.content.toString('utf8') : null
  if (after === null) return before === null ? undefined : {hostPath, kind, action: 'delete', before, after, mode: FILE_MODE, reasons: ['extra']}
  const attributes = attributeDrift(file, kind, owner)
  const reasons: FileChange['reasons'] = []
  if (before !== after) reasons.push(kind === 'key' ? (before === null ? 'missing key' : 'changed key') : before === null ? 'missing' : 'content')
  reasons.push(...attributes.reasons)
  if (reasons.length === 0) return undefined
  return {hostPath, kind, action: before === null ? 'create' : 'update', before, after, mode: attributes.mode, owner, reasons}
}

/**
 * A file at a path we would write that is not ours (no state record) and
 * holds something else: someone else's, perhaps used by other rules.
 * Refused, never overwritten; identical content is simply adopted.
 */
export function refuseForeign(input: PlanInput, hostPath: string, file: HostFile | undefined, after: string | null | undefined, what: string): void {
  const current = file?.content?.toString('utf8') ?? null
  if (current === null || after === undefined || after === null || current === after) return
  if (ownershipOf(input.host.state.value, hostPath, current, legacyOwned(input, hostPath)) !== 'foreign') return
  const users = keyUsers(hostPolicies(input), hostPath)
  throw new ImagetrustError(
    `${file!.realPath} already exists and is not imagetrust's (no record in its state file)${users.length > 0 ? `; policy scopes use it: ${users.join(', ')}` : ''}: refusing to overwrite this ${what}`,
    {hint: what === 'key file' ? 'rename the key in the trust file (its name is the file name), or move the file away if nothing needs it' : 'move the file away, or remove the namespace from the trust file'},
  )
}

/** Paths a state file from before digests were kept lists as ours. */
function legacyOwned(input: PlanInput, hostPath: string): boolean {
  const state = input.host.state.value
  return Boolean(state && (state.keyFiles.includes(hostPath) || state.generatedPolicies.includes(hostPath)))
}

/** The rules of these policy files whose requirements name this key file. */
function keyUsers(policies: Iterable<[string, Policy | undefined]>, hostPath: string): string[] {
  const names = (r: PolicyRequirement) => {
    const keyed = r as {keyPath?: string; keyPaths?: string[]}
    return keyed.keyPath === hostPath || Boolean(keyed.keyPaths?.includes(hostPath))
  }

  const users: string[] = []
  for (const [policyPath, policy] of policies) {
    if (policy?.default.some(names)) users.push(`the default in ${policyPath}`)
    for (const transport of policy?.transports ?? []) {
      for (const scope of transport.scopes) if (scope.requirements.some(names)) users.push(`${transport.name}:${scope.scope || '""'} in ${policyPath}`)
    }
  }

  return users
}

const hostPolicies = (input: PlanInput): Array<[string, Policy | undefined]> => [...input.host.policies].map(([p, snapshot]) => [p, snapshot.parsed?.policy])

/**
 * A file we no longer need: deleted when it still holds what we wrote and
 * no planned policy file still names it (an adopted key a foreign rule uses);
 * otherwise left in place, no longer managed.
 */
export function releaseOrDelete(input: PlanInput, hostPath: string, file: HostFile | undefined, kind: FileChange['kind'], warnings: string[], planned: Array<[string, Policy | undefined]> = []): FileChange | undefined {
  const current = file?.content?.toString('utf8') ?? null
  const ownership = ownershipOf(input.host.state.value, hostPath, current, legacyOwned(input, hostPath))
  if (ownership === 'absent') return undefined
  if (ownership !== 'ours') {
    warnings.push(`${file!.realPath} is no longer needed, but it changed since imagetrust wrote it: left in place, and no longer managed`)
    return undefined
  }

  const users = kind === 'key' ? keyUsers(planned, hostPath) : []
  if (users.length > 0) {
    warnings.push(`${file!.realPath} is no longer needed by the trust file, but ${users.join(', ')} still uses it: left in place, and no longer managed`)
    return undefined
  }

  return fileChange(file, hostPath, kind, null)
}

/** Writes a policy file only when its meaning changes; checks the result with the strict parser first. */
export function policyChange(target: PolicyTarget, input: PlanInput, policy: Policy): FileChange | undefined {
  const snapshot = input.host.policies.get(target.hostPath)!
  const attributes = attributeDrift(snapshot.file, 'policy', input.owner)
  const before = snapshot.file.content?.toString('utf8') ?? null
  if (snapshot.parsed && samePolicy(snapshot.parsed.policy, policy)) {
    if (attributes.reasons.length === 0 || before === null) return undefined
    return {hostPath: target.hostPath, kind: 'policy', action: 'update', before, after: before, mode: attributes.mode, owner: input.owner, reasons: attributes.reasons, replacesSymlink: snapshot.file.symlinkTarget !== undefined}
  }

  const after = serializePolicy(policy, before ? detectIndent(before) : 4)
  try {
    parsePolicy(after, `${target.hostPath} (planned)`, {features: input.capabilities.policy})
  } catch (error) {
    throw new ImagetrustError(`refusing to write a policy that containers/image would reject: ${(error as Error).message}`)
  }

  return {
    hostPath: target.hostPath,
    kind: 'policy',
    action: before === null ? 'create' : 'update',
    before,
    after,
    mode: attributes.mode,
    owner: input.owner,
    reasons: [before === null ? 'missing' : 'content', ...attributes.reasons],
    replacesSymlink: snapshot.file.symlinkTarget !== undefined,
  }
}
