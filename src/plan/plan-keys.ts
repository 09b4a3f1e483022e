import type {LoadedKey} from '../keys/types.js'
import type {Policy} from '../policy/types.js'
import {fileChange, refuseForeign, releaseOrDelete} from './plan-files.js'
import type {PlanContext} from './plan-policies.js'
import type {FileChange} from './types.js'

/** The key files the planned policies name: each key, each combined keyring, and the ones no longer needed. */
export interface KeyStage {
  changes: FileChange[]
  /** Host path → content, for every key file the plan keeps. */
  contents: Map<string, string>
}

/** Keys first: policy files point at them. */
export async function planKeyFiles(ctx: PlanContext, combined: Map<string, LoadedKey[]>, planned: Array<[string, Policy | undefined]>): Promise<KeyStage> {
  const {input} = ctx
  const contents = new Map<string, string>(input.keys.map((k) => [k.hostPath, k.content]))
  if (combined.size > 0) {
    const {armorPublicKeys, concat} = await import('../keys/gpg.js')
    for (const [hostPath, keys] of combined) contents.set(hostPath, await armorPublicKeys(concat(keys.map((k) => k.binary!))))
  }

  const changes: FileChange[] = []
  for (const [hostPath, content] of contents) {
    refuseForeign(input, hostPath, input.host.keyFiles.get(hostPath), content, 'key file')
    const change = fileChange(input.host.keyFiles.get(hostPath), hostPath, 'key', content, input.owner)
    if (change) changes.push(change)
  }

  for (const hostPath of ctx.previous.keyFiles.filter((p) => !contents.has(p))) {
    const change = releaseOrDelete(input, hostPath, input.host.keyFiles.get(hostPath), 'key', ctx.warnings, planned)
    if (change) changes.push(change)
  }

  return {changes, contents}
}
