import os from 'node:os'
import path from 'node:path'

import {resolveInRoot} from '../fs/resolve-in-root.js'

/** System paths imagetrust reads and writes; under --root they resolve below it. */
export const HOST_PATHS = {
  policy: '/etc/containers/policy.json',
  registriesD: '/etc/containers/registries.d',
  keyDir: '/etc/pki/containers',
  stateDir: '/var/lib/imagetrust',
  trustFile: '/etc/imagetrust/trust.yaml',
  crioConf: '/etc/crio/crio.conf',
  crioConfD: '/etc/crio/crio.conf.d',
  /** CRI-O 1.28+ default for per-namespace policies. */
  crioPolicyDir: '/etc/crio/policies',
} as const

export {OWNED_REGISTRIES_FILE} from '../registries-d/names.js'

/**
 * Which files a run manages: the system's, or (--user) the invoking user's,
 * which containers/image reads before the system's for that user.
 */
export interface Layout {
  kind: 'system' | 'user'
  policy: string
  registriesD: string
  keyDir: string
  stateDir: string
  trustFile: string
  /** The HOME whose ~/.config/containers files take precedence over the system's. */
  home: string
}

export function systemLayout(home = process.env.HOME ?? os.homedir()): Layout {
  return {kind: 'system', ...HOST_PATHS, home}
}

export function userLayout(home = process.env.HOME ?? os.homedir()): Layout {
  return {
    kind: 'user',
    policy: path.posix.join(home, '.config/containers/policy.json'),
    registriesD: path.posix.join(home, '.config/containers/registries.d'),
    keyDir: path.posix.join(home, '.local/share/imagetrust/keys'),
    stateDir: path.posix.join(home, '.local/state/imagetrust'),
    trustFile: path.posix.join(home, '.config/imagetrust/trust.yaml'),
    home,
  }
}

/**
 * Maps host paths (as written inside config files) to the files this run
 * touches, like `rpm --root`: /etc/x under --root /srv/r is /srv/r/etc/x,
 * resolved in the root (`..` and symlinks never lead out of it).
 */
export class HostRoot {
  readonly root: string
  readonly layout: Layout

  constructor(root = '/', layout: Layout = systemLayout()) {
    this.root = path.resolve(root)
    this.layout = layout
  }

  /** The real path to write (or lstat): directories resolved in the root, a final symlink left as it is. */
  resolve(hostPath: string): string {
    return this.root === '/' ? hostPath : resolveInRoot(this.root, hostPath, {final: 'keep'})
  }

  /** The real path to read: a final symlink followed too, in the root. */
  resolveFull(hostPath: string): string {
    return this.root === '/' ? hostPath : resolveInRoot(this.root, hostPath, {final: 'follow'})
  }

  get isSandbox(): boolean {
    return this.root !== '/'
  }

  get statePath(): string {
    return path.posix.join(this.layout.stateDir, 'state.json')
  }

  get backupDir(): string {
    return path.posix.join(this.layout.stateDir, 'backups')
  }

  get lockPath(): string {
    return path.posix.join(this.layout.stateDir, 'lock')
  }

  /** An apply's intent record: present only while one is writing, or after one was killed (plan/journal). */
  get journalPath(): string {
    return path.posix.join(this.layout.stateDir, 'apply-journal.json')
  }
}

/** The trust file a command uses: --config, or the layout's default under --root. */
export function trustFilePath(options: {root: string; user?: boolean; config?: string}): string {
  const root = hostRoot(options)
  return options.config ?? root.resolveFull(root.layout.trustFile)
}

/** The HostRoot for a command's --root and --user flags. */
export function hostRoot(options: {root: string; user?: boolean}): HostRoot {
  return new HostRoot(options.root, options.user ? userLayout() : systemLayout())
}

/** Where the managed files live: whoever can write there can replace what the host trusts. */
export function managedDirs(layout: Layout): Array<{dir: string; kind: 'policy' | 'registries.d' | 'key'}> {
  return [
    {dir: path.posix.dirname(layout.policy), kind: 'policy'},
    {dir: layout.registriesD, kind: 'registries.d'},
    {dir: layout.keyDir, kind: 'key'},
  ]
}

/**
 * What parseState's verdict on state.json depends on, as real paths: the file,
 * and the CRI-O config that decides which paths it may name (managed-paths.ts).
 */
export function stateInputs(root: HostRoot): {files: string[]; dirs: Array<{dir: string; suffixes: string[]}>} {
  return {files: [root.resolve(root.statePath), root.resolve(HOST_PATHS.crioConf)], dirs: [{dir: root.resolve(HOST_PATHS.crioConfD), suffixes: ['.conf']}]}
}
