import type {Capabilities} from '../host/capabilities.js'
import type {EngineInfo} from '../host/detect.js'
import type {EngineView} from '../host/engine-view.js'
import type {HostRoot, Layout} from '../host/paths.js'
import type {HostSnapshot} from '../host/snapshot.js'
import type {LoadedKey} from '../keys/types.js'
import type {Expiring} from '../trustfile/expiry.js'
import type {TrustFile} from '../trustfile/types.js'
import type {Override} from '../policy/overrides.js'
import type {SigningSetup} from './staging.js'
import type {OwnershipState} from '../host/state.js'
import type {RegistriesDirs, RegistriesView} from '../registries-d/layers.js'
import type {ParsedEntry} from '../registries-d/read.js'

export type FileKind = 'policy' | 'registries.d' | 'key' | 'state'
export type FileAction = 'create' | 'update' | 'delete'
export type DriftReason = 'content' | 'missing' | 'missing key' | 'changed key' | 'mode' | 'extra' | 'expired' | 'revoked' | 'unusable key' | 'shadowed' | 'overridden' | 'owner' | 'broken'

/** One file the plan would write or delete, with its content before and after. */
export interface FileChange {
  /** The path as the host sees it (/etc/containers/policy.json). */
  hostPath: string
  kind: FileKind
  action: FileAction
  before: string | null
  after: string | null
  /** Mode for the written file. */
  mode: number
  /** Owner for the written file; absent: kept as found. */
  owner?: {uid: number; gid: number}
  reasons: DriftReason[]
  /** The current file is a symlink; it is replaced by a real file, never written through. */
  replacesSymlink?: boolean
}

export interface Plan {
  changes: FileChange[]
  warnings: string[]
  /** Files that take precedence over the managed ones: pulls do not read what imagetrust manages. */
  shadowedBy: string[]
  /** CRI-O per-namespace policies (host paths) that imagetrust does not generate: pods there never see the trust file. */
  namespaceShadows: Array<{namespace: string; file: string}>
  /** Foreign rules in the planned policy files that decide instead of the trust file's (see policy/overrides). */
  overrides: Array<Override & {policyPath: string}>
  /** Directories of managed files writable by group or others (real paths): anyone there can replace what the host trusts. */
  looseDirs: Array<{path: string; mode: number; kind: FileKind}>
  /** Files (real paths) that make containers/image fail every pull: a dangling registries.d entry, a scope defined twice. */
  broken: Array<{path: string; detail: string}>
  /** About this change rather than the host it leaves: a file created from the default, files carried over, what the engines need afterwards. */
  notes: string[]
  state: OwnershipState
  capabilities: Capabilities
}

/** A policy file the plan writes. */
export interface PolicyTarget {
  hostPath: string
  /** system: /etc/containers/policy.json; user: ~/.config/containers/policy.json; crio: CRI-O's signature_policy; crio-namespace: generated whole. */
  role: 'system' | 'user' | 'crio' | 'crio-namespace'
  namespace?: string
}

/** The shared front half of every command: trust file + host → plan. */
export interface PreparedPlan {
  root: HostRoot
  /** The desired state as of expiry.at: the trust file without its expired entries. */
  trust: TrustFile
  /** Entries with an until: the time the plan is for, the trust file as read, and what had expired by then. */
  expiry: {at: string; source: TrustFile; entries: Expiring[]; expired: Expiring[]}
  keys: LoadedKey[]
  targets: PolicyTarget[]
  plan: Plan
  /** Only on the trust file's signing host. */
  signer?: SigningSetup
  /** The engines found, and each one's view of the host: what the plan was made for. */
  engines: EngineInfo[]
  views: EngineView[]
  /** The EnvironmentFile= files the engines' service units name (host paths): their variables decide what the engines read. */
  serviceFiles: string[]
  /** The registries.d files the plan read, as parsed (host/parse-cache.ts): remembered for status. */
  registriesParsed: Record<string, ParsedEntry>
}

/** Who must own the managed files (root for the system's, the user for --user). */
export interface Owner {
  uid: number
  gid: number
}

/** What plan() reads: the trust file, its keys, and the host as found. */
export interface PlanInput {
  trust: TrustFile
  keys: LoadedKey[]
  host: HostSnapshot
  capabilities: Capabilities
  layout: Layout
  statePath: string
  targets: PolicyTarget[]
  /** Overwrite a policy file that does not parse (it is backed up first). */
  replaceInvalid?: boolean
  /** Foreign scopes to take over (apply --take-over). */
  takeOver?: string[]
  /** Who must own the managed files (root for the system's, the user for --user); undefined: not checked. */
  owner?: Owner
  /** CRI-O per-namespace policy files that imagetrust does not generate. */
  crioNamespacePolicies?: Array<{namespace: string; file: string}>
  /** How the engines here read registries.d, and the directories they consult as found (plan/registries-views). */
  registries?: {views: RegistriesView[]; dirs: RegistriesDirs}
}
