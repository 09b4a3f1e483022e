import path from 'node:path'

/** Host paths imagetrust reads and writes; under --root they resolve below it. */
export const HOST_PATHS = {
  policy: '/etc/containers/policy.json',
  registriesD: '/etc/containers/registries.d',
  keyDir: '/etc/pki/containers',
  stateDir: '/var/lib/imagetrust',
  trustFile: '/etc/imagetrust/trust.yaml',
  crioConf: '/etc/crio/crio.conf',
  crioConfD: '/etc/crio/crio.conf.d',
} as const

/** The file imagetrust owns in registries.d. */
export const OWNED_REGISTRIES_FILE = 'imagetrust.yaml'

/**
 * Maps host paths (as written inside config files) to the files this run
 * touches, like `rpm --root`: /etc/x under --root /srv/r is /srv/r/etc/x.
 */
export class HostRoot {
  readonly root: string

  constructor(root = '/') {
    this.root = path.resolve(root)
  }

  resolve(hostPath: string): string {
    return this.root === '/' ? hostPath : path.join(this.root, hostPath)
  }

  get isSandbox(): boolean {
    return this.root !== '/'
  }
}
