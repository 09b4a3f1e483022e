import path from 'node:path'

/**
 * Each engine's own view of the host: which policy.json it reads (and the
 * ones it would fall back to) and which registries.d directories it merges,
 * keyed by its containers/image version and by who runs it. Pure functions
 * over a snapshot of the paths that exist, so every command asks the same
 * question the same way. Facts (confirmed with the lab's oracles,
 * test/e2e/engine-view-lab.test.ts):
 * - up to 5.39: explicit path, else $HOME/.config/containers/policy.json if it
 *   exists (root too; no XDG_CONFIG_HOME, no CONTAINERS_POLICY_JSON), else
 *   /etc/containers/policy.json. registries.d: the user's directory if it
 *   exists, else /etc/containers/registries.d; one directory, never merged.
 * - 5.40 (storage/pkg/configfile): explicit path, $CONTAINERS_POLICY_JSON (a
 *   missing file is an error), $XDG_CONFIG_HOME or ~/.config, /etc,
 *   /usr/share. registries.d: every directory merged by file name, a file in a
 *   higher directory replacing a same-named one below.
 */

/** 'assumed': no engine found, so the containers/image version imagetrust assumes. */
export type ViewEngine = 'podman' | 'skopeo' | 'buildah' | 'crio' | 'assumed'

/** Who runs an engine: its uid and the environment the library looks at. */
export interface Runner {
  uid: number
  /** $HOME (or the passwd entry when unset). */
  home: string
  /** $XDG_CONFIG_HOME when set (5.40 reads it, older versions ignore it). */
  xdgConfigHome?: string
  /** $CONTAINERS_POLICY_JSON when set and non-empty (5.40+). */
  policyEnv?: string
  /** Where policyEnv came from, for messages: "the invoking shell", "crio.service". */
  policyEnvSource?: string
}

export interface EngineContext {
  engine: ViewEngine
  /** The tool's own version, for messages. */
  version?: string
  /** The systemd unit this context models (crio.service, podman.service); absent for command-line runs. */
  service?: string
  /** The containers/image [major, minor] it vendors. */
  containersImage: readonly [number, number]
  runner: Runner
  /** An explicit policy path the engine passes to the library (CRI-O's signature_policy). */
  explicitPolicy?: string
  /** CRI-O's signature_policy_dir: per-namespace <dir>/<ns>.json before everything else. */
  namespacePolicyDir?: string
}

/** Which paths exist under --root (symlinks followed) and what each registries.d directory lists. */
export interface PathSnapshot {
  /** Host paths that exist as files. */
  files: ReadonlySet<string>
  /** Host paths that exist as directories, with their *.yaml entry names. */
  dirs: ReadonlyMap<string, readonly string[]>
}

export type PolicySource = 'explicit' | 'environment' | 'user' | 'etc' | 'usr-share'

export interface PolicyCandidate {
  path: string
  source: PolicySource
  exists: boolean
}

export interface PolicyView {
  /** The one file the engine reads; absent when it fails to find one. */
  reads?: string
  source?: PolicySource
  /** Every file it would consider, in lookup order (the first existing one wins). */
  candidates: PolicyCandidate[]
  /** Why the engine fails every pull when no file is found (or the environment names a missing one). */
  error?: string
}

export interface RegistriesDir {
  path: string
  role: 'explicit' | 'user' | 'etc' | 'etc-rootful' | 'etc-rootless' | 'etc-rootless-uid' | 'usr-share' | 'usr-share-rootful' | 'usr-share-rootless' | 'usr-share-rootless-uid'
  exists: boolean
}

export interface RegistriesFileView {
  name: string
  /** The file read for this name. */
  path: string
  /** Same-named files in lower directories that it replaces (5.40+). */
  replaces: string[]
}

export interface RegistriesDView {
  /** 'single': one directory (pre-5.40, or an explicit one); 'by-name': merged, higher directory wins per file name. */
  merge: 'single' | 'by-name'
  /** The directories consulted, lowest precedence first. */
  dirs: RegistriesDir[]
  /** The *.yaml files loaded, in the order the library reads them (by name). */
  files: RegistriesFileView[]
}

export interface EngineView {
  engine: ViewEngine
  version?: string
  service?: string
  containersImage: string
  runner: {uid: number; home: string; xdgConfigHome?: string; policyEnv?: string; policyEnvSource?: string}
  policy: PolicyView
  registriesD: RegistriesDView
  /** CRI-O only: the directory whose <namespace>.json replaces the policy for that namespace. */
  namespacePolicyDir?: string
}

export const ETC_POLICY = '/etc/containers/policy.json'
export const USR_SHARE_POLICY = '/usr/share/containers/policy.json'
export const ETC_REGISTRIES_D = '/etc/containers/registries.d'
export const USR_SHARE_REGISTRIES_D = '/usr/share/containers/registries.d'

/** containers/image 5.40 moved every lookup to storage/pkg/configfile. */
export function hasConfigfileLookup(cimage: readonly [number, number]): boolean {
  return cimage[0] > 5 || (cimage[0] === 5 && cimage[1] >= 40)
}

/** The user's containers config directory as this version finds it. */
export function userConfigDir(cimage: readonly [number, number], runner: Runner): string {
  if (hasConfigfileLookup(cimage) && runner.xdgConfigHome !== undefined) return path.posix.join(runner.xdgConfigHome, 'containers')
  return path.posix.join(runner.home, '.config/containers')
}

/** The policy files an engine considers, in lookup order; the lookup stops at the first candidate of a "must exist" kind. */
export function policyCandidates(context: EngineContext): Array<{path: string; source: PolicySource}> {
  const {containersImage: cimage, runner} = context
  if (context.explicitPolicy) return [{path: context.explicitPolicy, source: 'explicit'}]
  const modern = hasConfigfileLookup(cimage)
  if (modern && runner.policyEnv) return [{path: runner.policyEnv, source: 'environment'}]
  const user = {path: path.posix.join(userConfigDir(cimage, runner), 'policy.json'), source: 'user' as const}
  const etc = {path: ETC_POLICY, source: 'etc' as const}
  return modern ? [user, etc, {path: USR_SHARE_POLICY, source: 'usr-share'}] : [user, etc]
}

/** The policy file an engine reads, and the ones it would fall back to. */
export function policyView(context: EngineContext, snapshot: PathSnapshot): PolicyView {
  const candidates = policyCandidates(context).map((c) => ({...c, exists: snapshot.files.has(c.path)}))
  const found = candidates.find((c) => c.exists)
  if (found) return {reads: found.path, source: found.source, candidates}
  const first = candidates[0]
  if (first.source === 'explicit' || first.source === 'environment') {
    const why = first.source === 'environment' ? `$CONTAINERS_POLICY_JSON${context.runner.policyEnvSource ? ` (${context.runner.policyEnvSource})` : ''} names` : 'its configured policy'
    return {candidates, error: `${why} ${first.path}, which does not exist: every pull fails`}
  }

  return {candidates, error: `no policy.json at ${candidates.map((c) => c.path).join(', ')}: every pull fails`}
}

/** The registries.d directories an engine consults, lowest precedence first. */
export function registriesDirs(context: EngineContext): Array<Omit<RegistriesDir, 'exists'>> {
  const {containersImage: cimage, runner} = context
  const user = {path: path.posix.join(userConfigDir(cimage, runner), 'registries.d'), role: 'user' as const}
  if (!hasConfigfileLookup(cimage)) return [{path: ETC_REGISTRIES_D, role: 'etc'}, user]
  const dirs: Array<Omit<RegistriesDir, 'exists'>> = []
  for (const [base, prefix] of [['/usr/share/containers', 'usr-share'], ['/etc/containers', 'etc']] as const) {
    dirs.push({path: `${base}/registries.d`, role: prefix})
    if (runner.uid === 0) {
      dirs.push({path: `${base}/registries.rootful.d`, role: `${prefix}-rootful`})
    } else {
      dirs.push({path: `${base}/registries.rootless.d`, role: `${prefix}-rootless`}, {path: `${base}/registries.rootless.d/${runner.uid}`, role: `${prefix}-rootless-uid`})
    }
  }

  return [...dirs, user]
}

/** The registries.d files an engine loads, with precedence and merge. */
export function registriesDView(context: EngineContext, snapshot: PathSnapshot): RegistriesDView {
  const dirs = registriesDirs(context).map((d) => ({...d, exists: snapshot.dirs.has(d.path)}))
  if (!hasConfigfileLookup(context.containersImage)) {
    // One directory: the user's when it exists, else /etc's, even when that one is missing.
    const [etc, user] = dirs
    const used = user.exists || snapshot.files.has(user.path) ? user : etc
    return {merge: 'single', dirs: [used], files: listed(snapshot, used.path).map((name) => ({name, path: path.posix.join(used.path, name), replaces: []}))}
  }

  const byName = new Map<string, RegistriesFileView>()
  for (const dir of dirs) {
    for (const name of listed(snapshot, dir.path)) {
      const lower = byName.get(name)
      byName.set(name, {name, path: path.posix.join(dir.path, name), replaces: lower ? [...lower.replaces, lower.path] : []})
    }
  }

  const files = [...byName.values()].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
  return {merge: 'by-name', dirs, files}
}

function listed(snapshot: PathSnapshot, dir: string): readonly string[] {
  return (snapshot.dirs.get(dir) ?? []).filter((n) => n.endsWith('.yaml'))
}

/** One engine's whole view. */
export function engineView(context: EngineContext, snapshot: PathSnapshot): EngineView {
  const {runner} = context
  return {
    engine: context.engine,
    ...(context.version ? {version: context.version} : {}),
    ...(context.service ? {service: context.service} : {}),
    containersImage: context.containersImage.join('.'),
    runner: {uid: runner.uid, home: runner.home, ...optional({xdgConfigHome: runner.xdgConfigHome, policyEnv: runner.policyEnv, policyEnvSource: runner.policyEnvSource})},
    policy: policyView(context, snapshot),
    registriesD: registriesDView(context, snapshot),
    ...(context.namespacePolicyDir ? {namespacePolicyDir: context.namespacePolicyDir} : {}),
  }
}

function optional<T extends Record<string, string | undefined>>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** The snapshot as it will be once files are written (content) or removed (null): what a candidate's engines read. */
export function overlaySnapshot(snapshot: PathSnapshot, changes: ReadonlyMap<string, unknown>): PathSnapshot {
  const files = new Set(snapshot.files)
  const dirs = new Map([...snapshot.dirs].map(([d, names]) => [d, [...names]]))
  for (const [hostPath, content] of changes) {
    const dir = path.posix.dirname(hostPath)
    const name = path.posix.basename(hostPath)
    const names = (dirs.get(dir) ?? []).filter((n) => n !== name)
    if (content === null) files.delete(hostPath)
    else files.add(hostPath)
    if (content !== null && name.endsWith('.yaml')) names.push(name)
    if (dirs.has(dir) || content !== null) dirs.set(dir, names)
  }

  return {files, dirs}
}

/** Every path a set of contexts may look at: what a snapshot must probe. */
export function pathsToProbe(contexts: readonly EngineContext[]): {files: string[]; dirs: string[]} {
  const files = new Set<string>()
  const dirs = new Set<string>()
  for (const context of contexts) {
    for (const c of policyCandidates(context)) files.add(c.path)
    // Pre-5.40 the user's registries.d counts when it exists at all, as a file too.
    for (const d of registriesDirs(context)) {
      dirs.add(d.path)
      files.add(d.path)
    }
  }

  for (const p of [USR_SHARE_POLICY, ETC_POLICY]) files.add(p)
  return {files: [...files].sort(), dirs: [...dirs].sort()}
}

/** Two views differ where an admin must know both: another policy file or other registries.d files. */
export function viewsDiffer(a: EngineView, b: EngineView): boolean {
  const key = (v: EngineView) => JSON.stringify([v.policy.reads ?? v.policy.error, v.registriesD.files.map((f) => f.path)])
  return key(a) !== key(b)
}

/**
 * The policy files some engine reads instead of a managed one: each one shadows
 * the managed files. A file read that is itself managed (CRI-O's
 * signature_policy, when imagetrust writes it) shadows nothing.
 */
export function shadowingPolicies(views: readonly EngineView[], managed: ReadonlySet<string>): Array<{engine: ViewEngine; path: string; source: PolicySource}> {
  const found: Array<{engine: ViewEngine; path: string; source: PolicySource}> = []
  for (const view of views) {
    const {reads, candidates} = view.policy
    const index = reads ? candidates.findIndex((c) => c.path === reads) : candidates.findIndex((c) => c.source === 'environment')
    const read = candidates[index]
    if (!read || managed.has(read.path)) continue
    const managedBelow = candidates.slice(index + 1).some((c) => managed.has(c.path))
    if (managedBelow || read.source === 'environment' || read.source === 'explicit') found.push({engine: view.engine, path: read.path, source: read.source})
  }

  return found
}

/** One config file or directory some engine considers, for detect. */
export interface ConfigFileReport {
  /** A host path (callers map it into --root). */
  path: string
  exists: boolean
  role: string
  /** The engines that read it (a registries.d directory: whose *.yaml they load). */
  readBy: string[]
  /** Set when this file hides a managed one from some reader. */
  shadows?: string
}

const POLICY_ROLES: Record<PolicySource, string> = {
  explicit: "CRI-O's signature_policy",
  environment: 'policy named by $CONTAINERS_POLICY_JSON',
  user: 'per-user policy',
  etc: 'system policy',
  'usr-share': 'vendor policy (read from containers/image 5.40 when /etc has none)',
}

export const engineLabel = (view: Pick<EngineView, 'engine' | 'version' | 'service' | 'containersImage'>): string =>
  `${view.service ?? view.engine}${view.version ? ` ${view.version}` : ''} (containers/image ${view.containersImage})`

/** Every policy file and registries.d directory the engines consider, who reads each, and what shadows the managed ones. */
export function configFiles(views: readonly EngineView[], managed: {policy: string; registriesD: string}): ConfigFileReport[] {
  const reports = new Map<string, ConfigFileReport>()
  const entry = (p: string, exists: boolean, role: string) => reports.get(p) ?? reports.set(p, {path: p, exists, role: p === managed.policy || p === managed.registriesD ? `${role} (managed)` : role, readBy: []}).get(p)!
  for (const view of views) {
    const label = engineLabel(view)
    for (const c of view.policy.candidates) entry(c.path, c.exists, POLICY_ROLES[c.source])
    if (view.policy.reads) entry(view.policy.reads, true, '').readBy.push(label)
    const used = view.registriesD.merge === 'single' ? view.registriesD.dirs : view.registriesD.dirs.filter((d) => d.exists)
    for (const d of view.registriesD.dirs) entry(d.path, d.exists, `registries.d (${d.role})`)
    for (const d of used) entry(d.path, d.exists, '').readBy.push(label)
  }

  for (const shadow of shadowingPolicies(views, new Set([managed.policy]))) {
    const report = reports.get(shadow.path)
    if (report) report.shadows = `${managed.policy}: ${shadow.source === 'environment' ? '$CONTAINERS_POLICY_JSON names it' : 'containers/image reads the user\'s policy.json first, for root too'}`
  }

  for (const view of views) {
    const [used] = view.registriesD.dirs
    if (view.registriesD.merge === 'single' && used.role === 'user') reports.get(used.path)!.shadows = `${managed.registriesD}: before containers/image 5.40 a user registries.d replaces the system directory entirely`
  }

  return [...reports.values()]
}
