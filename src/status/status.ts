import {access} from 'node:fs/promises'

import {detectEngines, type EngineInfo} from '../host/detect.js'
import {engineLabel, type EngineView, type PolicySource, shadowingPolicies, viewsDiffer} from '../host/engine-view.js'
import {configPathReports, readHostViews, viewWarnings} from '../host/engine-view-read.js'
import {HOST_PATHS, type HostRoot, stateInputs, trustFilePath} from '../host/paths.js'
import {type KnownParses, policyKey, readParseCache} from '../host/parse-cache.js'
import {readHostFile, readRegistriesDir} from '../host/host-files.js'
import type {KeyInfo} from '../keys/types.js'
import type {KeyKind} from '../trustfile/types.js'
import {readBoundedText, TRUST_FILE_LIMIT} from '../fs/read-bounded.js'
import {ImagetrustError} from '../lib/errors.js'
import {allInOrder} from '../lib/in-order.js'
import {ruleBeneath} from '../policy/effective.js'
import {describeOverride, findOverrides, type Override} from '../policy/overrides.js'
import {type DockerReference, parseDockerScope} from '../policy/reference.js'
import type {Policy, PolicyRequirement} from '../policy/types.js'
import type {OwnershipState, PolicyOwnership} from '../host/state.js'
import {resolveLookaside} from '../registries-d/lookup.js'
import {type KnownRegistries, parseRegistriesFile, type RegistriesFile} from '../registries-d/read.js'
import {plainRequirements} from '../explain/words.js'
import {readStamp} from './stamp.js'
import {type Expiring, expiringEntries, isExpired} from '../trustfile/expiry.js'

/**
 * status: what is in force on this host and whose it is. For every policy
 * file an engine reads (system, the user's, CRI-O's global and per-namespace
 * ones): each scope's requirement in plain words, its keys, lookaside or
 * sigstore attachments, its owner, and what shadows or overrides it. Reads
 * only. What the last apply recorded is reused while its inputs are
 * unchanged: the engines' versions, the keys' details and the untils
 * (plan/fingerprint.ts), the policy and registries.d files as parsed
 * (host/parse-cache.ts). So status runs no engine, and parses no key or file,
 * that it does not have to; what it reports is the same either way.
 */
export type Owner = 'imagetrust' | 'foreign' | 'taken over'

export interface StatusKey {
  /** Installed path as policy.json names it, or "keyData". */
  path: string
  installed: boolean
  fingerprints: string[]
  expires: string[]
  userIds: string[]
  /** Present for a sigstore pki requirement's CA files (userIds are then the certificates' subjects). */
  role?: 'ca-roots' | 'ca-intermediates'
  error?: string
}

export interface StatusScope {
  transport: string
  /** The scope key; "" is the transport default. */
  scope: string
  requirement: string
  requirements: PolicyRequirement[]
  keys: StatusKey[]
  lookaside?: string
  sigstoreAttachments?: boolean
  owner: Owner
  /** The broader scope (or default) this one hides for the images it covers. */
  shadows?: string
  /** Foreign scopes that override this owned one, in words. */
  overriddenBy: string[]
  /** The owned rule this foreign scope overrides, in words. */
  overrides?: string
  /** From the trust file: when this scope ends, and why it exists until then. */
  until?: string
  reason?: string
}

export interface StatusTarget {
  kind: 'system' | 'user' | 'crio' | 'crio-namespace' | 'vendor' | 'environment'
  namespace?: string
  file: string
  exists: boolean
  /** Who reads it. */
  readers: string
  /** A file that takes its place for some readers. */
  shadowedBy?: string
  default?: {requirement: string; requirements: PolicyRequirement[]; owner: Owner}
  scopes: StatusScope[]
  error?: string
}

export interface StatusReport {
  targets: StatusTarget[]
  /** Each engine found, as it reads the host. */
  engines: EngineStatus[]
  /** The engines read different policy or registries.d files: each one's view matters. */
  enginesDiffer: boolean
  lastApply: string | null
  lastCheck: string | null
  trustFile: string | null
  /** The trust file's scopes and keys with an until, and whether it has passed (apply then leaves them out). */
  expiring: Array<Expiring & {expired: boolean}>
  warnings: string[]
}

type CachedKeys = Map<string, KeyInfo[]>

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  )
}

function scopeReference(scope: string): DockerReference | undefined {
  const syntax = parseDockerScope(scope)
  if (typeof syntax === 'string' || syntax.kind === 'wildcard') return undefined
  if (syntax.kind === 'reference') return syntax.ref
  if (syntax.kind === 'namespace') return {domain: syntax.domain, path: syntax.path}
  return {domain: syntax.domain, path: '_'}
}

/**
 * What status learns about the key files of one run, by file: a key named by
 * many scopes is read (and, without check's cache, parsed) once. Each scope
 * gets its own copy.
 */
interface KeyContext {
  cached: CachedKeys
  seen: Map<string, Promise<StatusKey[]>>
}

const copyKey = (key: StatusKey): StatusKey => ({...key, fingerprints: [...key.fingerprints], expires: [...key.expires], userIds: [...key.userIds]})

async function once(keys: KeyContext, id: string, describe: () => Promise<StatusKey[]>): Promise<StatusKey[]> {
  let found = keys.seen.get(id)
  if (!found) keys.seen.set(id, (found = describe()))
  return (await found).map((k) => copyKey(k))
}

async function describeKeys(root: HostRoot, requirements: PolicyRequirement[], keys: KeyContext): Promise<StatusKey[]> {
  const out: StatusKey[] = []
  for (const r of requirements) {
    if (r.type !== 'signedBy' && r.type !== 'sigstoreSigned') continue
    const pki = r.type === 'sigstoreSigned' ? r.pki : undefined
    if (pki) out.push(...(await once(keys, JSON.stringify(['pki', pki.caRootsPath, pki.caIntermediatesPath]), () => describeCaFiles(root, pki))))
    const paths = [...(r.keyPath ? [r.keyPath] : []), ...(r.keyPaths ?? [])]
    for (const p of paths) out.push(...(await once(keys, JSON.stringify([r.type, p]), async () => [await describeKeyFile(root, r.type, p, keys.cached)])))
    if (r.keyData !== undefined) out.push({path: 'keyData', installed: true, fingerprints: [], expires: [], userIds: [], error: 'inline key data (not inspected)'})
  }

  return out
}

const cachedKeyId = (kind: KeyKind, hostPath: string): string => `${kind}:${hostPath}`

/** One key file: installed or not, and its keys, from check's cache when it has them (for a key of the kind the requirement reads), else parsed. */
async function describeKeyFile(root: HostRoot, type: 'signedBy' | 'sigstoreSigned', p: string, cached: CachedKeys): Promise<StatusKey> {
  const file = await readHostFile(root, p)
  const key: StatusKey = {path: p, installed: file.content !== null, fingerprints: [], expires: [], userIds: []}
  if (!file.content) {
    key.error = `${file.realPath} does not exist: every pull under this scope fails`
    return key
  }

  let infos = cached.get(cachedKeyId(type === 'sigstoreSigned' ? 'sigstore' : 'gpg', p))
  if (!infos) {
    try {
      infos = type === 'sigstoreSigned' ? [(await import('../keys/sigstore.js')).checkSigstoreKey(file.content, {name: p}).info] : (await (await import('../keys/gpg.js')).inspectGpgKeys(file.content, {name: p})).keys
    } catch (error) {
      key.error = (error as Error).message
    }
  }

  for (const info of infos ?? []) {
    key.fingerprints.push(info.fingerprint)
    key.expires.push(info.expires ?? 'never')
    key.userIds.push(...info.userIds)
  }

  return key
}

/** A pki requirement's CA files: each certificate's fingerprint, expiry and subject. */
async function describeCaFiles(root: HostRoot, pki: Record<string, string>): Promise<StatusKey[]> {
  const files = [['ca-roots', pki.caRootsPath], ['ca-intermediates', pki.caIntermediatesPath]] as const
  const out: StatusKey[] = []
  for (const [role, p] of files.filter(([, p]) => p !== undefined && p !== '')) {
    const file = await readHostFile(root, p!)
    const key: StatusKey = {path: p!, role, installed: file.content !== null, fingerprints: [], expires: [], userIds: []}
    out.push(key)
    if (!file.content) {
      key.error = `${file.realPath} does not exist: every pull under this scope fails`
      continue
    }

    try {
      // Certificates parse with node built-ins only: no cache needed (the fingerprint's key cache holds roots and intermediates as one).
      const {infos} = (await import('../keys/pki.js')).checkCaCertificates(file.content, {name: p!, where: file.realPath})
      for (const info of infos) {
        key.fingerprints.push(info.fingerprint)
        key.expires.push(info.expires ?? 'never')
        key.userIds.push(...info.userIds)
      }
    } catch (error) {
      key.error = (error as Error).message
    }
  }

  return out
}

function ownerOf(scope: string, ownership: PolicyOwnership | undefined, generated: boolean, ownScopes: Set<string>): Owner {
  if (generated) return 'imagetrust'
  if (!ownership) return 'foreign'
  if (ownership.takenOver?.[scope] || ownership.replaced?.[scope]) return 'taken over'
  return ownScopes.has(scope) ? 'imagetrust' : 'foreign'
}

/** Overrides by the scope that overrides and by the scope it hides: looked up per scope, so never searched. */
function indexOverrides(overrides: Override[]): {by: Map<string, Override>; hiding: Map<string | null, Override[]>} {
  const by = new Map<string, Override>()
  const hiding = new Map<string | null, Override[]>()
  for (const o of overrides) {
    if (!by.has(o.scope)) by.set(o.scope, o)
    const list = hiding.get(o.hides)
    if (list) list.push(o)
    else hiding.set(o.hides, [o])
  }

  return {by, hiding}
}

async function describeTarget(
  root: HostRoot,
  target: Pick<StatusTarget, 'kind' | 'namespace' | 'readers' | 'shadowedBy'> & {hostPath: string},
  context: {state: OwnershipState | null; ownsDefault: boolean; registries: RegistriesFile[]; keys: KeyContext; policies: KnownParses['policies']},
): Promise<StatusTarget> {
  const file = await readHostFile(root, target.hostPath)
  const {hostPath, ...rest} = target
  const out: StatusTarget = {...rest, file: file.realPath, exists: file.content !== null, scopes: []}
  if (!file.content) return out
  let policy: Policy
  try {
    policy = await targetPolicy(file.content.toString('utf8'), file.realPath, context.policies)
  } catch (error) {
    if (!(error instanceof ImagetrustError)) throw error
    out.error = error.message
    return out
  }

  const generated = context.state?.generatedPolicies.includes(hostPath) ?? false
  const ownership = context.state?.policies[hostPath]
  const owned = new Set([...(ownership?.scopes ?? []), ...Object.keys(ownership?.takenOver ?? {})])
  const managed = generated || ownership !== undefined
  const overrides = indexOverrides(managed ? findOverrides(policy, {scopes: owned, ownsDefault: context.ownsDefault}) : [])
  const ownScopes = new Set(ownership?.scopes ?? [])
  out.default = {requirement: plainRequirements(policy.default), requirements: policy.default, owner: managed && context.ownsDefault ? 'imagetrust' : 'foreign'}
  for (const transport of policy.transports ?? []) {
    for (const {scope, requirements} of transport.scopes) {
      const entry: StatusScope = {
        transport: transport.name,
        scope,
        requirement: plainRequirements(requirements),
        requirements,
        keys: await describeKeys(root, requirements, context.keys),
        owner: transport.name === 'docker' ? ownerOf(scope, ownership, generated, ownScopes) : ownership?.localTransports.includes(transport.name) && scope === '' ? 'imagetrust' : 'foreign',
        overriddenBy: [],
      }
      if (transport.name === 'docker') describeDockerScope(entry, policy, context.registries, overrides)
      out.scopes.push(entry)
    }
  }

  return out
}

/** A target file's policy: from apply's parse cache when it holds this text, else parsed (an ImagetrustError is the target's error). */
async function targetPolicy(text: string, realPath: string, known: KnownParses['policies']): Promise<Policy> {
  return known.get(policyKey(text)) ?? (await import('../policy/parse.js')).parsePolicy(text, realPath).policy
}

/** What a docker scope adds: its lookaside (when signed), the broader rule it shadows, the overrides it takes part in. */
function describeDockerScope(entry: StatusScope, policy: Policy, registries: RegistriesFile[], overrides: ReturnType<typeof indexOverrides>): void {
  const {scope, requirements} = entry
  const ref = scopeReference(scope)
  const signed = requirements.some((r) => r.type === 'signedBy' || r.type === 'sigstoreSigned')
  if (ref && signed) {
    const lookaside = resolveLookaside(registries, ref)
    entry.lookaside = String(lookaside.lookaside.value)
    entry.sigstoreAttachments = lookaside.sigstoreAttachments.value === true
  }

  if (scope !== '') {
    const beneath = ruleBeneath(policy, scope)
    if (beneath) entry.shadows = beneath.scope === null ? 'the default' : beneath.scope === '' ? 'the docker transport default ""' : `scope "${beneath.scope}"`
  }

  const mine = overrides.by.get(scope)
  if (mine) entry.overrides = describeOverride(mine)
  entry.overriddenBy = (overrides.hiding.get(scope) ?? []).map((o) => describeOverride(o))
}

/** Whether a (validated) trust file sets the default, from its text; undefined when unsure. */
function defaultFromText(text: string): boolean | undefined {
  if (/^\s*[{[]/.test(text)) return undefined // flow style: ask the YAML parser
  const lines = text.split('\n').filter((l) => /^["']?default["']?\s*:/.test(l))
  if (lines.length === 0) return false
  if (lines.length === 1 && /^["']?default["']?\s*:\s*["']?(reject|accept)["']?\s*(#.*)?$/.test(lines[0].trimEnd())) return true
  return undefined
}

export async function hostStatus(root: HostRoot, options: {config?: string; user?: boolean}): Promise<StatusReport> {
  // Independent reads, at once: one's file I/O runs while another parses. They fail as if read one by one.
  const trustRead = readTrustContext(root, options)
  // The parse cache only while the digest apply recorded vouches for it: a hand-edited or damaged one is not read.
  const knownRead = trustRead.then(async (t) => (t.parseCacheVouched ? knownParses(root) : NO_KNOWN_PARSES))
  const [state, trust, systemRegistries, host, known] = await allInOrder([
    trustRead.then(async (t) => readOwnership(root, t.stateValidated)),
    trustRead,
    knownRead.then(async (known) => readRegistriesDir(root, '/etc/containers/registries.d', known.registries)),
    // Unchanged since apply: the engines are the binaries it asked, so their answers are reused, not asked again.
    trustRead.then(async (t) => readHostViews(root, t.engines ?? (await detectEngines()))),
    knownRead,
  ])
  const warnings = [...trust.warnings, ...systemRegistries.warnings]
  // Each registries.d file is parsed once: the system directory's, then those only some engine reads.
  const parsed = new Map(systemRegistries.files.map((f) => [f.hostPath, f]))
  const registriesOf = async (view: EngineView | undefined) => (view ? await loadRegistries(root, view, {parsed, known: known.registries}) : systemRegistries.files)
  const keys = {cached: trust.cached, seen: new Map()}
  const targets = await policyTargets(root, host, {state, ownsDefault: trust.ownsDefault, keys, policies: known.policies}, registriesOf)
  warnings.push(...configPathReports(root, host.views).filter((p) => p.shadows).map((p) => `${p.path} shadows ${p.shadows}`), ...viewWarnings(root, host.views, host.snapshot))
  warnings.push(...targetWarnings(targets))
  const enginesDiffer = host.views.some((v) => viewsDiffer(v, host.views[0]))
  const [lastApply, lastCheck] = await Promise.all([readStamp(root, 'apply'), readStamp(root, 'check')])
  const now = new Date()
  const expiring = trust.expiries.map((e) => ({...e, expired: isExpired(e.until, now)}))
  annotateExpiry(targets, expiring)
  return {targets, engines: host.views.map((v) => engineSummary(root, v)), enginesDiffer, lastApply, lastCheck, trustFile: trust.found, expiring, warnings}
}

/**
 * What imagetrust owns on this host (state.json), or null before the first
 * apply. `validated`: it is as apply wrote and checked it (the fingerprint's
 * reused digest covers it, and the CRI-O config that decides which paths it
 * may name), so plain JSON reads it as parseState would; but a "__proto__"
 * key, which parseState would not keep as a key, is read the long way.
 */
async function readOwnership(root: HostRoot, validated: boolean): Promise<OwnershipState | null> {
  const stateFile = await readHostFile(root, root.statePath)
  if (!stateFile.content) return null
  const text = stateFile.content.toString('utf8')
  if (validated && !text.includes('"__proto__"')) return JSON.parse(text) as OwnershipState
  const [{parseState}, {managedPaths}] = await Promise.all([import('../host/state.js'), import('../host/managed-paths.js')])
  return parseState(text, stateFile.realPath, await managedPaths(root))
}

/** What status needs from the trust file: whether it sets the default, its keys as the last apply saw them, its untils. */
async function readTrustContext(
  root: HostRoot,
  options: {config?: string; user?: boolean},
): Promise<{found: string | null; ownsDefault: boolean; cached: CachedKeys; expiries: Expiring[]; engines?: EngineInfo[]; stateValidated: boolean; parseCacheVouched: boolean; warnings: string[]}> {
  const trustFile = trustFilePath({root: root.root, user: options.user, config: options.config})
  const warnings: string[] = []
  if (!(await exists(trustFile))) return {found: null, ownsDefault: false, cached: new Map(), expiries: [], stateValidated: false, parseCacheVouched: false, warnings}
  // The trust file, its keys, the engines and the state unchanged since the last apply: reuse what it learned about them.
  const [{reusableFingerprint, recordedEngines, reusedCovers, parseCachePath}, {fingerprintContext}] = await Promise.all([import('../plan/fingerprint.js'), import('../plan/fingerprint-inputs.js')])
  const unchanged = await reusableFingerprint(root, trustFile, await fingerprintContext(root))
  // By kind and path: a hand edit of policy.json may name a GPG key file in a sigstore requirement.
  const cached: CachedKeys = unchanged ? new Map(unchanged.keys.filter((k) => k.type !== undefined).map((k) => [cachedKeyId(k.type!, k.hostPath), k.keys])) : new Map()
  const engines = unchanged && recordedEngines(unchanged)
  const stateValidated = unchanged !== undefined && reusedCovers(unchanged, stateInputs(root))
  const parseCacheVouched = unchanged !== undefined && reusedCovers(unchanged, {files: [parseCachePath(root)], dirs: []})
  let expiries = unchanged?.expiries ?? []
  // Unchanged since apply validated it: its top-level default: line is enough, without loading YAML.
  const quick = unchanged ? await readBoundedText(trustFile, TRUST_FILE_LIMIT).then(defaultFromText, () => undefined) : undefined
  // Loaded only when needed: the trust file loader brings the YAML parsers and the validators.
  const ownsDefault =
    quick ??
    (await (await import('../trustfile/load.js')).loadTrustFile(trustFile).then(
      (t) => {
        if (!unchanged) expiries = expiringEntries(t)
        return t.default !== undefined
      },
      (error: Error) => {
        warnings.push(`the trust file cannot be read, so the default's owner is unknown: ${error.message}`)
        return false
      },
    ))
  return {found: trustFile, ownsDefault, cached, expiries, ...(engines ? {engines} : {}), stateValidated, parseCacheVouched, warnings}
}

type TargetContext = Omit<Parameters<typeof describeTarget>[2], 'registries'>

/** Every policy file some engine reads: the system's, each one read instead (user, vendor, environment), CRI-O's. */
async function policyTargets(
  root: HostRoot,
  host: Awaited<ReturnType<typeof readHostViews>>,
  context: TargetContext,
  registriesOf: (view: EngineView | undefined) => Promise<RegistriesFile[]>,
): Promise<StatusTarget[]> {
  const readersOf = (hostPath: string) => host.views.filter((v) => v.policy.reads === hostPath)
  const shadows = shadowingPolicies(host.views, new Set([HOST_PATHS.policy]))
  const systemReaders = readersOf(HOST_PATHS.policy)
  const systemReaderWords = systemReaders.length > 0 ? systemReaders.map((v) => engineLabel(v)).join(', ') : 'no engine here (another file takes its place)'
  const system = {kind: 'system' as const, hostPath: HOST_PATHS.policy, readers: systemReaderWords, shadowedBy: shadows[0] ? root.resolve(shadows[0].path) : undefined}
  const targets = [await describeTarget(root, system, {...context, registries: await registriesOf(systemReaders[0] ?? host.views[0])})]
  const others = [...new Set(host.views.map((v) => v.policy.reads).filter((p): p is string => p !== undefined && p !== HOST_PATHS.policy))]
  for (const other of others.filter((p) => p !== host.crio?.signaturePolicy)) {
    const readers = readersOf(other)
    const kind = KIND_OF_SOURCE[readers[0].policy.source!]
    targets.push(await describeTarget(root, {kind, hostPath: other, readers: readers.map((v) => engineLabel(v)).join(', ')}, {...context, registries: await registriesOf(readers[0])}))
  }

  const crio = host.crio
  if (!crio || (crio.effectivePolicy === '/etc/containers/policy.json' && crio.namespaces.length === 0)) return targets
  const crioContext = {...context, registries: await registriesOf(host.views.find((v) => v.engine === 'crio'))}
  if (crio.effectivePolicy !== '/etc/containers/policy.json') {
    targets.push(await describeTarget(root, {kind: 'crio', hostPath: crio.effectivePolicy, readers: 'CRI-O (signature_policy), pulls without a namespace policy'}, crioContext))
  }

  for (const ns of crio.namespaces) {
    targets.push(await describeTarget(root, {kind: 'crio-namespace', namespace: ns.namespace, hostPath: ns.file, readers: `CRI-O pulls in Kubernetes namespace ${ns.namespace}`}, crioContext))
  }

  return targets
}

/** What the targets themselves warn about: unreadable files, overrides, key problems. */
function targetWarnings(targets: StatusTarget[]): string[] {
  const warnings: string[] = []
  for (const t of targets) {
    if (t.error) warnings.push(t.error)
    for (const s of t.scopes) {
      if (s.overrides) warnings.push(`${t.file}: ${s.overrides}`)
      for (const k of s.keys) if (k.error) warnings.push(`${t.file}: scope "${s.scope}": ${k.error}`)
    }
  }

  return warnings
}

/** The until and reason of the trust file's scopes, on the scopes imagetrust wrote. */
function annotateExpiry(targets: StatusTarget[], expiring: Expiring[]): void {
  const scopes = new Map(expiring.filter((e) => e.what === 'scope').map((e) => [e.name, e]))
  for (const t of targets) {
    for (const s of t.scopes) {
      const e = s.transport === 'docker' && s.owner !== 'foreign' ? scopes.get(s.scope) : undefined
      if (e) Object.assign(s, {until: e.until}, e.reason === undefined ? {} : {reason: e.reason})
    }
  }
}

/** The kind of status target a policy file some engine reads is, by why it reads it. */
const KIND_OF_SOURCE: Record<PolicySource, StatusTarget['kind']> = {explicit: 'crio', environment: 'environment', user: 'user', etc: 'system', 'usr-share': 'vendor'}

const NO_KNOWN_PARSES: KnownParses = {registries: new Map(), policies: new Map()}

/** The policy and registries.d files as apply parsed them, when it left them for status (plan/fingerprint-inputs.ts). */
async function knownParses(root: HostRoot): Promise<KnownParses> {
  const {parseCachePath} = await import('../plan/fingerprint.js')
  return readParseCache(parseCachePath(root))
}

/**
 * The registries.d files a view loads. `parsed` holds the ones this run
 * already read (by host path), and keeps the new ones; a text in `known` is
 * not parsed again.
 */
async function loadRegistries(root: HostRoot, view: EngineView, {parsed, known}: {parsed: Map<string, RegistriesFile>; known: KnownRegistries}): Promise<RegistriesFile[]> {
  const files: RegistriesFile[] = []
  for (const f of view.registriesD.files) {
    const seen = parsed.get(f.path)
    if (seen) {
      files.push(seen)
      continue
    }

    const file = await readHostFile(root, f.path)
    if (!file.content) continue
    const read = (await parseRegistriesFile(f.name, f.path, file.content.toString('utf8'), file.realPath, known)).file
    parsed.set(f.path, read)
    files.push(read)
  }

  return files
}

/** One engine's view, for status --json: what it reads, as real paths. */
export interface EngineStatus {
  engine: string
  version?: string
  service?: string
  containersImage: string
  policy: string | null
  policyError?: string
  registriesD: string[]
}

function engineSummary(root: HostRoot, view: EngineView): EngineStatus {
  return {
    engine: view.engine,
    ...(view.version ? {version: view.version} : {}),
    ...(view.service ? {service: view.service} : {}),
    containersImage: view.containersImage,
    policy: view.policy.reads ? root.resolve(view.policy.reads) : null,
    ...(view.policy.error ? {policyError: view.policy.error} : {}),
    registriesD: view.registriesD.files.map((f) => root.resolve(f.path)),
  }
}

export function renderStatus(report: StatusReport): string {
  const lines: string[] = []
  for (const t of report.targets) {
    lines.push(`${t.kind}${t.namespace ? ` ${t.namespace}` : ''}: ${t.file}${t.exists ? '' : ' (absent: every pull is refused)'}`)
    lines.push(`  read by ${t.readers}`)
    if (t.shadowedBy) lines.push(`  SHADOWED by ${t.shadowedBy} for the users whose HOME has it`)
    if (t.error) lines.push(`  ERROR: ${t.error}`)
    if (t.default) lines.push(`  default: ${t.default.requirement}  [${t.default.owner}]`)
    const rows = t.scopes.map((s) => [`${s.transport === 'docker' ? '' : `${s.transport}:`}${s.scope === '' ? '""' : s.scope}`, s.owner, s.requirement])
    const width = [0, 1].map((i) => Math.max(0, ...rows.map((r) => r[i].length)))
    for (const [i, s] of t.scopes.entries()) {
      lines.push(`  ${rows[i][0].padEnd(width[0])}  ${rows[i][1].padEnd(width[1])}  ${rows[i][2]}`)
      for (const k of s.keys) {
        const label = k.role === undefined ? 'key' : k.role === 'ca-roots' ? 'CA roots' : 'CA intermediates'
        lines.push(`      ${label} ${k.path}: ${k.error ?? k.fingerprints.map((f, j) => `${f}${k.role ? ` ${k.userIds[j]}` : ''} (expires ${k.expires[j]})`).join(', ')}`)
      }
      if (s.until) lines.push(`      until ${s.until}${s.reason ? `: ${s.reason}` : ''}`)
      if (s.lookaside) lines.push(`      ${s.sigstoreAttachments ? 'sigstore attachments on; ' : ''}lookaside ${s.lookaside}`)
      if (s.overrides) lines.push(`      OVERRIDES: ${s.overrides}`)
      for (const o of s.overriddenBy) lines.push(`      OVERRIDDEN: ${o}`)
    }
  }

  for (const e of report.expiring) lines.push(`${e.what} "${e.name}" ${e.expired ? 'EXPIRED on' : 'until'} ${e.until}${e.reason ? `: ${e.reason}` : ''}${e.expired ? ' (left out by apply)' : ''}`)
  lines.push(`last apply: ${report.lastApply ?? 'never recorded'}; last check: ${report.lastCheck ?? 'never recorded'}`)
  return lines.join('\n')
}
