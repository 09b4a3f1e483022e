import {isGeneratedPolicyPath, isKeyFilePath, isRegistriesFilePath, type ManagedPaths} from '../host/managed-paths.js'
import {type JsonNode, parseStrictJson, toValue} from '../policy/json.js'
import type {ForeignEdit} from '../registries-d/merge.js'
import {JsonFields} from './json-fields.js'

/** What imagetrust owns in one policy file. */
export interface PolicyOwnership {
  /** docker scopes that came from the trust file. */
  scopes: string[]
  /** Transports whose "" entry we added to keep local images usable under default: reject. */
  localTransports: string[]
  /** Scopes the host already had when the trust file took them over: put back when they leave the trust file. */
  replaced?: Record<string, unknown[]>
  /**
   * Foreign scopes that overrode an owned rule, taken over with apply --take-over:
   * they carry the rule they hid (`hides`, null for the default) until it leaves
   * the trust file, then get `original` back.
   */
  takenOver?: Record<string, {hides: string | null; original: unknown[]}>
}

/** What imagetrust owns on a host; everything else is left as found. */
export interface OwnershipState {
  version: 1
  /** Per policy file (host path): the system one, CRI-O's signature_policy, a user's. */
  policies: Record<string, PolicyOwnership>
  /** Policy files imagetrust writes whole (CRI-O per-namespace policies). */
  generatedPolicies: string[]
  registriesD: {
    ownedScopes: string[]
    foreignEdits: ForeignEdit[]
    /** System files copied into a new user registries.d, which replaces the system directory. */
    carriedOver: string[]
    /**
     * Same-named copies of vendor files (lower registries.d directories) that
     * replace them for containers/image 5.40 and carry the trust file's
     * sections: regenerated on every apply, deleted when no longer needed.
     */
    overrides?: Array<{file: string; vendor: string}>
  }
  keyFiles: string[]
  /** sha256 of what we last wrote to each file we own whole (keys, imagetrust.yaml, CRI-O namespace policies): ownership is proven, not assumed. */
  files?: Record<string, string>
}

export function emptyState(): OwnershipState {
  return {version: 1, policies: {}, generatedPolicies: [], registriesD: {ownedScopes: [], foreignEdits: [], carriedOver: []}, keyFiles: [], files: {}}
}

export function serializeState(state: OwnershipState): string {
  return JSON.stringify(state, null, 2) + '\n'
}

/**
 * Reads state.json field by field: a wrong type is a located error (file,
 * line, JSON path), and the paths it lists must be ones imagetrust manages,
 * since apply deletes the key files and generated policies it no longer wants.
 */
export function parseState(text: string, file: string, managed: ManagedPaths): OwnershipState {
  const root = parseStrictJson(text, file)
  const fields = new JsonFields(file, 'This is not a state file imagetrust wrote; move it away to let imagetrust adopt the host again.')
  const top = fields.object(root, '$', ['version', 'policies', 'generatedPolicies', 'registriesD', 'keyFiles'])
  const version = top.get('version')!
  if (version.kind !== 'number' || version.value !== 1) fields.fail(version, '$.version', 'version must be 1')
  for (const policy of fields.entries(top.get('policies')!, '$.policies')) checkPolicyOwnership(fields, policy.node, policy.path)
  for (const p of fields.strings(top.get('generatedPolicies')!, '$.generatedPolicies')) {
    if (!isGeneratedPolicyPath(managed, p.value)) fields.fail(p.node, p.path, `${JSON.stringify(p.value)} is not a CRI-O policy imagetrust generates (${managed.generatedPolicyDirs.map((d) => `${d}/*.json`).join(', ')})`)
  }

  for (const p of fields.strings(top.get('keyFiles')!, '$.keyFiles')) {
    if (!isKeyFilePath(managed, p.value)) fields.fail(p.node, p.path, `${JSON.stringify(p.value)} is not in the key directory ${managed.keyDir}`)
  }

  const files = fields.child(top, '$', 'files')
  if (files) {
    for (const digest of fields.entries(files.node, files.path)) {
      if (!/^[0-9a-f]{64}$/.test(fields.string(digest.node, digest.path))) fields.fail(digest.node, digest.path, 'expected a sha256 digest (64 lowercase hex digits)')
    }
  }

  const registries = fields.object(top.get('registriesD')!, '$.registriesD', ['ownedScopes', 'foreignEdits', 'carriedOver'])
  fields.strings(registries.get('ownedScopes')!, '$.registriesD.ownedScopes')
  fields.strings(registries.get('carriedOver')!, '$.registriesD.carriedOver')
  for (const [i, edit] of fields.array(registries.get('foreignEdits')!, '$.registriesD.foreignEdits').entries()) checkForeignEdit(fields, edit, `$.registriesD.foreignEdits[${i}]`)
  const overrides = fields.child(registries, '$.registriesD', 'overrides')
  for (const [i, node] of overrides ? fields.array(overrides.node, overrides.path).entries() : []) {
    const members = fields.object(node, `${overrides!.path}[${i}]`, ['file', 'vendor'])
    const file = members.get('file')!
    if (!isRegistriesFilePath(managed, fields.string(file, `${overrides!.path}[${i}].file`))) fields.fail(file, `${overrides!.path}[${i}].file`, `not a *.yaml file in ${managed.registriesD}`)
    fields.string(members.get('vendor')!, `${overrides!.path}[${i}].vendor`)
  }

  return toValue(root) as unknown as OwnershipState
}

function checkPolicyOwnership(fields: JsonFields, node: JsonNode, path: string): void {
  const members = fields.object(node, path, ['scopes', 'localTransports'])
  fields.strings(members.get('scopes')!, `${path}.scopes`)
  fields.strings(members.get('localTransports')!, `${path}.localTransports`)
  const replaced = fields.child(members, path, 'replaced')
  if (replaced) for (const scope of fields.entries(replaced.node, replaced.path)) fields.array(scope.node, scope.path)
  const takenOver = fields.child(members, path, 'takenOver')
  if (!takenOver) return
  for (const scope of fields.entries(takenOver.node, takenOver.path)) {
    const record = fields.object(scope.node, scope.path, ['hides', 'original'])
    const hides = record.get('hides')!
    if (hides.kind !== 'null') fields.string(hides, `${scope.path}.hides`)
    fields.array(record.get('original')!, `${scope.path}.original`)
  }
}

function checkForeignEdit(fields: JsonFields, node: JsonNode, path: string): void {
  const members = fields.object(node, path, ['file', 'scope', 'previous'])
  fields.string(members.get('file')!, `${path}.file`)
  fields.string(members.get('scope')!, `${path}.scope`)
  for (const value of fields.entries(members.get('previous')!, `${path}.previous`)) {
    if (!['string', 'boolean', 'null'].includes(value.node.kind)) fields.fail(value.node, value.path, `expected a string, true, false or null`)
  }
}
